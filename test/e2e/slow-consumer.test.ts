import { afterAll, beforeAll, expect, it } from 'vitest';
import { connect, type WeirClient } from '../../src/client/index.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { RawClient } from '../support/raw-client.js';
import { until } from '../support/payload.js';

let tb: TestBroker;
const clients: WeirClient[] = [];
beforeAll(async () => {
  tb = await startTestBroker({ gateway: { maxBufferedBytes: 1 << 20, maxFetchBytes: 256 * 1024 } });
});
afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await tb?.stop();
});

it('a slow consumer neither slows a fast one on another partition nor grows broker memory without bound', async () => {
  const producer = await connect(tb.url);
  clients.push(producer);
  await producer.createTopic('flow', { partitions: 2 });
  const value = new Uint8Array(1000).fill(7);
  const N = 30_000; // 30 MB per partition
  for (let i = 0; i < N; i += 1000) {
    await Promise.all([
      producer.produce('flow', Array.from({ length: 1000 }, () => ({ value })), { partition: 0 }),
      producer.produce('flow', Array.from({ length: 1000 }, () => ({ value })), { partition: 1 }),
    ]);
  }

  // A consumer that grants plenty of credit on partition 0 but stops reading its socket.
  const stalled = await RawClient.connect(tb.url);
  const s = await stalled.request({ op: 'subscribe', topic: 'flow', from: { offsets: { '0': 0, '1': N } }, credits: 1_000_000 });
  expect(s.op).toBe('result');
  await stalled.waitFor((f) => f.op === 'deliver');
  (stalled.ws as unknown as { _socket: { pause(): void } })._socket.pause();

  // A slow SDK consumer granting little credit, on partition 0 too.
  let slowCount = 0;
  const slow = await connect(tb.url);
  clients.push(slow);
  await slow.subscribe('flow', { from: { offsets: { '0': 0, '1': N } }, credits: 5 }, async () => {
    slowCount++;
    await new Promise((r) => setTimeout(r, 20));
  });

  // A fast consumer on partition 1.
  let fastCount = 0;
  const fast = await connect(tb.url);
  clients.push(fast);
  await fast.subscribe('flow', { from: { offsets: { '0': N, '1': 0 } }, credits: 2000 }, async () => {
    fastCount++;
  });
  await until(() => fastCount === N, 60_000, `fast consumer to read ${N} (has ${fastCount})`);
  // The fast consumer read all of its partition while the slow one had handled only a few.
  expect(slowCount).toBeLessThan(N / 10);

  // The stalled connection holds a bounded amount of broker memory, far less than the 30 MB it asked for.
  await new Promise((r) => setTimeout(r, 500));
  const stats = tb.broker.gatewayStats();
  expect(stats.maxConnectionBufferedBytes).toBeLessThan(8 * 1024 * 1024);
  stalled.close();
});
