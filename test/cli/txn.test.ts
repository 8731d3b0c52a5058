import { afterEach, expect, it } from 'vitest';
import { run as txn } from '../../src/cli/commands/txn.js';
import { connect, type WeirClient } from '../../src/client/index.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { cliIo as io } from '../support/cli-io.js';

let tb: TestBroker | undefined;
let client: WeirClient | undefined;
afterEach(async () => {
  client?.destroy();
  await tb?.stop();
  tb = undefined;
});


it('weir txn list / commit / rollback against a real broker', async () => {
  tb = await startTestBroker();
  client = await connect(tb.url);
  await client.createTopic('cli', { partitions: 2 });
  const a = await client.beginTransaction('cli', { producerGroup: 'ops' });
  await a.produce([{ key: 'k', value: 'a1' }, { key: 'j', value: 'a2' }]);
  const b = await client.beginTransaction('cli', { producerGroup: 'ops' });
  await b.produce([{ value: 'b1' }]);

  let t = io();
  expect(await txn(['list', '--url', tb.url], t)).toBe(0);
  expect(t.out()).toMatch(new RegExp(`^txn ${a.id} topic cli group ops state open messages 2 age-ms \\d+ decided-by -\ntxn ${b.id} topic cli group ops state open messages 1 age-ms \\d+ decided-by -\n$`));

  t = io();
  expect(await txn(['commit', String(a.id), '--url', tb.url], t)).toBe(0);
  expect(t.out()).toBe(`committed ${a.id}\n`);
  t = io();
  expect(await txn(['rollback', String(b.id), '--url', tb.url], t)).toBe(0);
  expect(t.out()).toBe(`rolled_back ${b.id}\n`);

  t = io();
  expect(await txn(['list', '--url', tb.url], t)).toBe(0);
  expect(t.out()).toBe('');
  t = io();
  expect(await txn(['list', '--all', '--topic', 'cli', '--url', tb.url], t)).toBe(0);
  expect(t.out()).toMatch(new RegExp(`^txn ${a.id} .* state committed messages 2 .* decided-by admin\ntxn ${b.id} .* state rolled_back messages 1 .* decided-by admin\n$`));

  const seen = [];
  for (let p = 0; p < 2; p++) seen.push(...(await client.fetch('cli', p, 0)).messages.map((m) => new TextDecoder().decode(m.value)));
  expect(seen.sort()).toEqual(['a1', 'a2']);

  t = io();
  expect(await txn(['commit', String(b.id), '--url', tb.url], t)).toBe(1);
  expect(t.err()).toMatch(/TXN_ALREADY_DECIDED/);
  t = io();
  expect(await txn(['commit', 'x', '--url', tb.url], t)).toBe(2);
  t = io();
  expect(await txn(['frobnicate'], t)).toBe(2);
});
