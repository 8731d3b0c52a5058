import fs from 'node:fs';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { connect } from '../../src/client/index.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { tmpDir } from '../support/tmp-dir.js';
import { RawClient } from '../support/raw-client.js';
import { readMessages } from '../../src/protocol/batch-reader.js';

let tb: TestBroker | undefined;
const tmp = tmpDir('weir-torn-');
afterEach(async () => {
  await tb?.stop({ keepData: true });
  tmp.cleanup();
});

it('cuts a torn last record at restart and continues from the last good offset', async () => {
  tb = await startTestBroker({ dataDir: tmp.dir });
  let client = await connect(tb.url);
  await client.createTopic('torn', { partitions: 1 });
  const acks = await client.produce('torn', Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, value: `value-${i}` })));
  expect(acks.map((a) => a.offset)).toEqual(Array.from({ length: 100 }, (_, i) => i));
  await client.close();
  await tb.stop({ keepData: true });

  const dir = path.join(tmp.dir, 'topics', 'torn', '0');
  const segment = fs.readdirSync(dir).filter((f) => f.endsWith('.log')).sort().at(-1)!;
  const file = path.join(dir, segment);
  fs.truncateSync(file, fs.statSync(file).size - 5);

  tb = await startTestBroker({ dataDir: tmp.dir });
  const raw = await RawClient.connect(tb.url);
  const d = await raw.request({ op: 'describe_topic', topic: 'torn' });
  expect((d.offsets as Array<{ end: number }>)[0]!.end).toBe(99);
  const f = await raw.request({ op: 'fetch', topic: 'torn', partition: 0, offset: 0, maxRecords: 1000 });
  const msgs = readMessages('torn', 0, f.records as Uint8Array);
  expect(msgs.length).toBe(99);
  msgs.forEach((m, i) => {
    expect(m.offset).toBe(i);
    expect(new TextDecoder().decode(m.value)).toBe(`value-${i}`);
  });
  raw.close();
  client = await connect(tb.url);
  const next = await client.produce('torn', [{ key: 'k99', value: 'again' }]);
  expect(next[0]).toEqual({ partition: 0, offset: 99 });
  await client.close();
});
