/**
 * A client that stops reading its socket costs the broker a bounded amount of memory: deliveries
 * and fetch answers stop at the connection's buffered-bytes bound (maxBufferedBytes), and a socket
 * that stays over it for slowConsumerCloseMs is closed with 1008 / SLOW_CONSUMER. The bound is
 * checked on the gateway's own accounting (gatewayStats: uWS's unsent bytes + the connection's
 * outbox), not on RSS. Credit, which counts records, is clamped to MAX_CREDITS.
 */
import diagnostics_channel from 'node:diagnostics_channel';
import { expect, it } from 'vitest';
import { brokerFixture, startTestBroker } from '../support/broker.js';
import { RawClient, type Frame } from '../support/raw-client.js';
import { until } from '../support/payload.js';
import { flakySockets } from '../support/flaky-socket.js';
import type { WeirClientError } from '../../src/client/index.js';

const BOUND = 1 << 20;
const FETCH = 256 * 1024;
/** One deliver or fetch answer: at most maxFetchBytes of records plus its CBOR envelope. */
const FRAME = FETCH + 4096;

const fx = brokerFixture();

/** Stop reading the socket (the kernel buffers fill, then the broker's). */
function pause(c: RawClient): void {
  c.ws.pause();
}

async function produceMiB(url: string, topic: string, partitions: number, mib: number, valueBytes = 4096): Promise<void> {
  const producer = await fx.client(url);
  const value = new Uint8Array(valueBytes).fill(7);
  const perBatch = Math.max(1, Math.floor((256 * 1024) / valueBytes));
  const batches = Math.ceil((mib * 1024 * 1024) / (perBatch * valueBytes));
  for (let b = 0; b < batches; b += partitions) {
    await Promise.all(
      Array.from({ length: partitions }, (_, p) => producer.produce(topic, Array.from({ length: perBatch }, () => ({ value })), { partition: p })),
    );
  }
}

it('ten subscribers that never read, with credit 10^9, hold at most the bound plus one frame each while a producer writes', async () => {
  const tb = (fx.tb = await startTestBroker({ gateway: { maxBufferedBytes: BOUND, maxFetchBytes: FETCH, slowConsumerCloseMs: 600_000 } }));
  const admin = await fx.client(tb.url);
  await admin.createTopic('flood', { partitions: 4 });
  await produceMiB(tb.url, 'flood', 4, 8);

  const stalled: RawClient[] = [];
  for (let i = 0; i < 10; i++) {
    const c = await RawClient.connect(tb.url);
    fx.defer(() => c.close());
    const r = await c.request({ op: 'subscribe', topic: 'flood', from: 'earliest', credits: 1_000_000_000 });
    expect(r.op).toBe('result');
    pause(c);
    stalled.push(c);
  }

  let maxSeen = 0;
  const sampler = setInterval(() => {
    maxSeen = Math.max(maxSeen, tb.broker.gatewayStats().maxConnectionBufferedBytes);
  }, 5);
  try {
    // 40 MiB more while they stall: standing fetches keep being answered with new data.
    await produceMiB(tb.url, 'flood', 4, 40);
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    clearInterval(sampler);
  }
  const stats = tb.broker.gatewayStats();
  maxSeen = Math.max(maxSeen, stats.maxConnectionBufferedBytes);
  // The broker did reach the bound (the stall was real) and never went past it by more than a frame.
  expect(maxSeen).toBeGreaterThan(BOUND / 2);
  expect(maxSeen).toBeLessThanOrEqual(BOUND + FRAME);
  expect(stats.bufferedBytes).toBeLessThanOrEqual(10 * (BOUND + FRAME));
});

it('closes a subscriber that stays over its bound for slowConsumerCloseMs with 1008 SLOW_CONSUMER', async () => {
  const tb = (fx.tb = await startTestBroker({ gateway: { maxBufferedBytes: BOUND, maxFetchBytes: FETCH, slowConsumerCloseMs: 300 } }));
  const admin = await fx.client(tb.url);
  await admin.createTopic('slow', { partitions: 2 });
  await produceMiB(tb.url, 'slow', 2, 24);

  const events: Array<{ conn: number; bufferedBytes: number; overMs: number }> = [];
  const onSlow = (m: unknown): void => void events.push(m as (typeof events)[number]);
  diagnostics_channel.subscribe('weir:gateway:slow-consumer', onSlow);
  fx.defer(() => diagnostics_channel.unsubscribe('weir:gateway:slow-consumer', onSlow));

  // A reader on the same broker: it keeps its connection (it reads).
  const reader = await RawClient.connect(tb.url);
  fx.defer(() => reader.close());
  expect((await reader.request({ op: 'subscribe', topic: 'slow', from: 'earliest', credits: 100 })).op).toBe('result');

  const c = await RawClient.connect(tb.url);
  fx.defer(() => c.close());
  expect((await c.request({ op: 'subscribe', topic: 'slow', from: 'earliest', credits: 1_000_000_000 })).op).toBe('result');
  pause(c);

  const before = tb.broker.gatewayStats().connections;
  await until(() => events.length > 0, 20_000, 'the broker to close the stalled subscriber');
  expect(events[0]!.overMs).toBeGreaterThanOrEqual(300);
  expect(events[0]!.bufferedBytes).toBeGreaterThan(BOUND);
  expect(events).toHaveLength(1);
  c.ws.resume(); // read the backlog, then the close frame
  const closed = await c.waitClose(20_000);
  expect(closed.code).toBe(1008);
  expect(closed.reason.startsWith('SLOW_CONSUMER:')).toBe(true);
  expect(reader.closed).toBeNull();
  expect(tb.broker.gatewayStats().connections).toBe(before - 1);
});

it('a client pipelining fetches without reading gets THROTTLED instead of growing broker memory', async () => {
  const tb = (fx.tb = await startTestBroker({ gateway: { maxBufferedBytes: BOUND, maxFetchBytes: FETCH, slowConsumerCloseMs: 600_000 } }));
  const admin = await fx.client(tb.url);
  await admin.createTopic('fetched', { partitions: 1 });
  await produceMiB(tb.url, 'fetched', 1, 2);

  const c = await RawClient.connect(tb.url);
  fx.defer(() => c.close());
  pause(c);
  const N = 200; // 200 × 256 KiB = 50 MiB of answers if nothing stopped them
  for (let id = 1; id <= N; id++) c.send({ op: 'fetch', id, topic: 'fetched', partition: 0, offset: 0, maxBytes: FETCH });

  let maxSeen = 0;
  for (let i = 0; i < 100; i++) {
    maxSeen = Math.max(maxSeen, tb.broker.gatewayStats().maxConnectionBufferedBytes);
    await new Promise((r) => setTimeout(r, 10));
  }
  expect(maxSeen).toBeLessThanOrEqual(BOUND + FRAME);

  c.ws.resume();
  const answers: Frame[] = [];
  for (let id = 1; id <= N; id++) answers.push(await c.waitFor((f) => f.id === id, 20_000));
  const throttled = answers.filter((f) => f.op === 'error' && f.code === 'THROTTLED');
  const results = answers.filter((f) => f.op === 'result');
  expect(results.length).toBeGreaterThan(0);
  expect(throttled.length).toBeGreaterThan(0);
  expect(results.length + throttled.length).toBe(N);
  expect(throttled.every((f) => f.retryable === true)).toBe(true);
  // Once the client reads again, fetches are served again.
  expect((await c.request({ op: 'fetch', topic: 'fetched', partition: 0, offset: 0, maxBytes: FETCH })).op).toBe('result');
});

it('an SDK subscriber closed as a slow consumer reconnects and receives every message exactly once, in order', async () => {
  const tb = (fx.tb = await startTestBroker({ gateway: { maxBufferedBytes: BOUND, maxFetchBytes: FETCH, slowConsumerCloseMs: 300 } }));
  const admin = await fx.client(tb.url);
  await admin.createTopic('resume', { partitions: 2 });

  const flaky = flakySockets();
  const consumer = await fx.client(tb.url, { WebSocket: flaky.Ctor, reconnectDelayMs: 10 });
  const disconnects: WeirClientError[] = [];
  consumer.on('disconnect', (e) => void disconnects.push(e));
  const got = new Map<number, Array<{ offset: number; value: string }>>([[0, []], [1, []]]);
  let total = 0;
  const decoder = new TextDecoder();
  await consumer.subscribe('resume', { from: 'earliest', credits: 2000 }, (m) => {
    got.get(m.partition)!.push({ offset: m.offset, value: decoder.decode(m.value.subarray(0, 12)) });
    total++;
  });
  flaky.current.pause();

  // 2 × 3000 messages of 4 KiB: far more than the bound and the kernel's socket buffers.
  const producer = await fx.client(tb.url);
  const N = 3000;
  for (let i = 0; i < N; i += 100) {
    await Promise.all(
      [0, 1].map((p) =>
        producer.produce('resume', Array.from({ length: 100 }, (_, j) => {
          const v = new Uint8Array(4096);
          v.set(new TextEncoder().encode(`p${p}-${String(i + j).padStart(9, '0')}`));
          return { value: v };
        }), { partition: p }),
      ),
    );
  }
  await until(() => tb.broker.gatewayStats().connections === 2, 20_000, 'the broker to close the stalled consumer');
  flaky.current.resume();
  await until(() => total >= 2 * N, 60_000, `every message (have ${total})`);
  await new Promise((r) => setTimeout(r, 200)); // and no duplicates after them
  expect(disconnects.some((e) => e.details?.closeCode === 1008 && String(e.details?.reason).startsWith('SLOW_CONSUMER:'))).toBe(true);
  for (const p of [0, 1]) {
    const list = got.get(p)!;
    expect(list).toHaveLength(N);
    list.forEach((m, i) => {
      expect(m.offset).toBe(i);
      expect(m.value).toBe(`p${p}-${String(i).padStart(9, '0')}`);
    });
  }
});

it('clamps credit to MAX_CREDITS: a subscription with 2^32 credits receives messages', async () => {
  const tb = (fx.tb = await startTestBroker());
  const producer = await fx.client(tb.url);
  await producer.createTopic('credit', { partitions: 1 });
  await producer.produce('credit', Array.from({ length: 5 }, (_, i) => ({ value: `m${i}` })));
  const c = await RawClient.connect(tb.url);
  fx.defer(() => c.close());
  const s = await c.request({ op: 'subscribe', topic: 'credit', from: 'earliest', credits: 2 ** 32 });
  expect(s.op).toBe('result');
  const d = await c.waitFor((f) => f.op === 'deliver' && f.sub === s.sub, 5_000);
  expect(d.count).toBe(5);
  // `credit` adding past the maximum is clamped too, not refused.
  c.send({ op: 'credit', sub: s.sub, partition: 0, credits: 2 ** 40 });
  await producer.produce('credit', [{ value: 'more' }]);
  const d2 = await c.waitFor((f) => f.op === 'deliver' && f.sub === s.sub, 5_000);
  expect(d2.count).toBe(1);
  expect(c.frames.filter((f) => f.op === 'error')).toEqual([]);
});

it('the SDK refuses a credit window above MAX_CREDITS', async () => {
  const tb = (fx.tb = await startTestBroker());
  const consumer = await fx.client(tb.url);
  await consumer.createTopic('window', { partitions: 1 });
  await expect(consumer.subscribe('window', { credits: 2_000_000 }, () => undefined)).rejects.toMatchObject({ code: 'BAD_REQUEST', details: { field: 'credits' } });
});
