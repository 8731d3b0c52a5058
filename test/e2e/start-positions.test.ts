import { afterAll, beforeAll, expect, it } from 'vitest';
import { connect, type WeirClient } from '../../src/client/index.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { until } from '../support/payload.js';

let tb: TestBroker;
let c: WeirClient;
beforeAll(async () => {
  tb = await startTestBroker();
  c = await connect(tb.url);
  await c.createTopic('pos', { partitions: 1 });
});
afterAll(async () => {
  await c?.close();
  await tb?.stop();
});

it('subscribes from a timestamp, from an offset, and from latest', async () => {
  await c.produce('pos', Array.from({ length: 10 }, (_, i) => ({ value: `early-${i}` })));
  await new Promise((r) => setTimeout(r, 30));
  const cut = Date.now();
  await new Promise((r) => setTimeout(r, 30));
  const late = await c.produce('pos', Array.from({ length: 5 }, (_, i) => ({ value: `late-${i}` })));
  expect(late[0]!.offset).toBe(10);

  const fromTime: string[] = [];
  const s1 = await c.subscribe('pos', { from: { timestamp: cut } }, async (m) => {
    expect(m.timestamp).toBeGreaterThanOrEqual(cut);
    fromTime.push(new TextDecoder().decode(m.value));
  });
  await until(() => fromTime.length === 5, 10_000, 'messages after the timestamp');
  expect(fromTime).toEqual(['late-0', 'late-1', 'late-2', 'late-3', 'late-4']);

  const fromOffset: number[] = [];
  const s2 = await c.subscribe('pos', { from: { offset: 12 } }, async (m) => void fromOffset.push(m.offset));
  await until(() => fromOffset.length === 3, 10_000, 'offsets 12..14');
  expect(fromOffset).toEqual([12, 13, 14]);

  const fromLatest: string[] = [];
  const s3 = await c.subscribe('pos', { from: 'latest' }, async (m) => void fromLatest.push(new TextDecoder().decode(m.value)));
  await new Promise((r) => setTimeout(r, 100));
  await c.produce('pos', [{ value: 'newest' }]);
  await until(() => fromLatest.length === 1, 10_000, 'the newest message');
  expect(fromLatest).toEqual(['newest']);
  await Promise.all([s1.close(), s2.close(), s3.close()]);
});
