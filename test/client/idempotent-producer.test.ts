/**
 * The SDK's idempotent producer against a real broker: resends after a lost connection, a
 * partition-actor crash and a broker restart are acknowledged with the original offsets, and every
 * message is stored exactly once.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type Ack, type WeirClient } from '../../src/client/index.js';
import { keyPartition } from '../../src/client/idempotent-producer.js';
import { readMessages } from '../../src/protocol/batch-reader.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { RawClient } from '../support/raw-client.js';
import { until } from '../support/payload.js';
import { flakySockets } from '../support/flaky-socket.js';
import { BatchBuilder } from '../../src/protocol/batch-builder.js';
import { BINDINGS_FILE } from '../../src/features/producers/bindings-log.js';
import { PRODUCERS_DIR } from '../../src/features/producers/feature.js';

let tb: TestBroker | undefined;
const clients: WeirClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await tb?.stop();
  tb = undefined;
});

async function client(url: string, options: Parameters<typeof connect>[1] = {}): Promise<WeirClient> {
  const c = await connect(url, { idempotent: true, ...options });
  clients.push(c);
  return c;
}

/** Every stored message of a topic: value → [partition, offset] (asserting no value appears twice). */
async function stored(url: string, topic: string, partitions: number): Promise<Map<string, [number, number]>> {
  const raw = await RawClient.connect(url);
  const out = new Map<string, [number, number]>();
  try {
    for (let p = 0; p < partitions; p++) {
      let offset = 0;
      for (;;) {
        const r = await raw.request({ op: 'fetch', topic, partition: p, offset, maxRecords: 10_000 });
        if (r.op !== 'result') throw new Error(`fetch failed: ${String(r.code)}`);
        const msgs = readMessages(topic, p, r.records as Uint8Array);
        if (msgs.length === 0) break;
        for (const m of msgs) {
          const v = new TextDecoder().decode(m.value);
          if (out.has(v)) throw new Error(`message ${v} is stored twice: at ${String(out.get(v))} and ${p}/${m.offset}`);
          out.set(v, [p, m.offset]);
        }
        offset = r.next as number;
      }
    }
  } finally {
    raw.close();
  }
  return out;
}

async function logEnd(url: string, topic: string, partition: number): Promise<number> {
  const raw = await RawClient.connect(url);
  try {
    const r = await raw.request({ op: 'describe_topic', topic });
    return (r.offsets as Array<{ partition: number; end: number }>)[partition]!.end;
  } finally {
    raw.close();
  }
}

function expectAcksMatch(all: Map<string, [number, number]>, values: string[], acks: Ack[]): void {
  values.forEach((v, i) => expect(all.get(v), v).toEqual([acks[i]!.partition, acks[i]!.offset]));
}

describe('idempotent producer (SDK)', () => {
  it('partitions by key like the broker and stores every message once, in order per partition', async () => {
    tb = await startTestBroker();
    const c = await client(tb.url, { batchMessages: 50 });
    await c.createTopic('keys', { partitions: 4 });
    const values: string[] = [];
    const calls: Array<Promise<Ack[]>> = [];
    for (let i = 0; i < 40; i++) {
      const msgs = Array.from({ length: 25 }, (_, j) => ({ key: `k${(i * 25 + j) % 13}`, value: `v${i * 25 + j}` }));
      values.push(...msgs.map((m) => m.value));
      calls.push(c.produce('keys', msgs));
    }
    const acks = (await Promise.all(calls)).flat();
    acks.forEach((a, i) => expect(a.partition).toBe(keyPartition(`k${i % 13}`, 4)));
    const all = await stored(tb.url, 'keys', 4);
    expect(all.size).toBe(1000);
    expectAcksMatch(all, values, acks);
    // Per partition, offsets follow produce order.
    for (let p = 0; p < 4; p++) {
      const offsets = acks.filter((a) => a.partition === p).map((a) => a.offset);
      expect(offsets).toEqual([...offsets].sort((x, y) => x - y));
    }
    // A plain produce of the same key lands on the same partition (the gateway's partitioner).
    const plain = await connect(tb.url);
    clients.push(plain);
    const [ack] = await plain.produce('keys', [{ key: 'k5', value: 'plain' }]);
    expect(ack!.partition).toBe(keyPartition('k5', 4));
  });

  it('resends its last 10 batches after a reconnect: same offsets, each message stored once', async () => {
    tb = await startTestBroker();
    const flaky = flakySockets();
    const c = await client(tb.url, { WebSocket: flaky.Ctor, batchMessages: 5, maxInFlightRequests: 10, lingerMs: 0, reconnectDelayMs: 20 });
    await c.createTopic('resend', { partitions: 1 });
    const values: string[] = [];
    const send = (i: number): Promise<Ack[]> => {
      const msgs = Array.from({ length: 5 }, (_, j) => ({ value: `m${i * 5 + j}` }));
      values.push(...msgs.map((m) => m.value));
      return c.produce('resend', msgs);
    };
    const firstAcks = (await Promise.all(Array.from({ length: 10 }, (_, i) => send(i)))).flat();
    const framesBefore = c.stats().produceFrames;
    // The broker writes the next 10 batches, but their answers are lost with the connection.
    flaky.current.swallow = true;
    const pending = Array.from({ length: 10 }, (_, i) => send(10 + i));
    await until(() => flaky.current.swallowed >= 10, 10_000, 'the broker to answer the 10 batches');
    expect(await logEnd(tb.url, 'resend', 0)).toBe(100);
    flaky.current.drop();
    const lateAcks = (await Promise.all(pending)).flat();
    expect(flaky.sockets.length).toBe(2); // reconnected once
    expect(c.stats().produceFrames).toBeGreaterThanOrEqual(framesBefore + 20); // every batch went twice
    expect(lateAcks.map((a) => a.offset)).toEqual(Array.from({ length: 50 }, (_, i) => 50 + i));
    expect(await logEnd(tb.url, 'resend', 0)).toBe(100);
    const all = await stored(tb.url, 'resend', 1);
    expect(all.size).toBe(100);
    expectAcksMatch(all, values, [...firstAcks, ...lateAcks]);
  });

  it('stores each message once across a partition-actor crash mid-stream', async () => {
    tb = await startTestBroker({ actorHost: 'threads', fsync: 'never', restartBackoff: { initialMs: 20, maxMs: 200 } });
    const c = await client(tb.url, { batchMessages: 20, maxInFlightRequests: 8 });
    await c.createTopic('crash', { partitions: 2 });
    const values: string[] = [];
    const calls: Array<Promise<Ack[]>> = [];
    let exits = 0;
    for (let i = 0; i < 300; i++) {
      const msgs = Array.from({ length: 20 }, (_, j) => ({ key: `key-${(i * 20 + j) % 31}`, value: `c${i * 20 + j}` }));
      values.push(...msgs.map((m) => m.value));
      calls.push(c.produce('crash', msgs));
      if (i === 100) {
        const actor = tb.broker.partitionActor('crash', 1);
        actor.onExit(() => exits++);
        void actor.worker.terminate();
      }
      if (i % 20 === 0) await new Promise((r) => setImmediate(r));
    }
    const acks = (await Promise.all(calls)).flat();
    expect(exits).toBe(1);
    expect(c.stats().retries).toBeGreaterThan(0); // batches in flight at the crash were resent
    const all = await stored(tb.url, 'crash', 2); // throws on a duplicate
    expect(all.size).toBe(6000);
    expectAcksMatch(all, values, acks);
  });

  it('resends batches whose answers were lost to a partition actor restarted after a crash: original offsets', async () => {
    tb = await startTestBroker({ actorHost: 'threads', fsync: 'never', restartBackoff: { initialMs: 20, maxMs: 200 } });
    const flaky = flakySockets();
    const c = await client(tb.url, { WebSocket: flaky.Ctor, batchMessages: 3, maxInFlightRequests: 10, lingerMs: 0, reconnectDelayMs: 20 });
    await c.createTopic('crash2', { partitions: 1 });
    const values: string[] = [];
    const send = (i: number): Promise<Ack[]> => {
      const msgs = Array.from({ length: 3 }, (_, j) => ({ value: `x${i * 3 + j}` }));
      values.push(...msgs.map((m) => m.value));
      return c.produce('crash2', msgs);
    };
    const firstAcks = (await Promise.all(Array.from({ length: 4 }, (_, i) => send(i)))).flat();
    flaky.current.swallow = true;
    const pending = Array.from({ length: 10 }, (_, i) => send(4 + i));
    await until(() => flaky.current.swallowed >= 10, 10_000, 'the broker to answer the 10 batches');
    let exits = 0;
    const actor = tb.broker.partitionActor('crash2', 0);
    actor.onExit(() => exits++);
    await actor.worker.terminate();
    await until(() => exits === 1, 10_000, 'the crash to be observed');
    await tb.broker.waitHealthy();
    flaky.current.drop();
    const lateAcks = (await Promise.all(pending)).flat();
    expect(lateAcks.map((a) => a.offset)).toEqual(Array.from({ length: 30 }, (_, i) => 12 + i));
    const all = await stored(tb.url, 'crash2', 1);
    expect(all.size).toBe(42);
    expectAcksMatch(all, values, [...firstAcks, ...lateAcks]);
  });

  it('after a batch fails for good, rejects the later batches of that partition and continues under a new producer id', async () => {
    tb = await startTestBroker({ ringBytes: 64 * 1024 }); // an idempotent batch must fit half a ring entry
    const c = await client(tb.url, { batchBytes: 256 * 1024, lingerMs: 5 });
    await c.createTopic('fatal', { partitions: 1 });
    const [a] = await c.produce('fatal', [{ value: 'before' }]);
    expect(a!.offset).toBe(0);
    const big = c.produce('fatal', Array.from({ length: 10 }, (_, i) => ({ value: `big${i}`.padEnd(10_000, '.') })));
    await expect(big).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    const [b] = await c.produce('fatal', [{ value: 'after' }]);
    expect(b!.offset).toBe(1);
    const raw = await RawClient.connect(tb.url);
    const r = await raw.request({ op: 'fetch', topic: 'fatal', partition: 0, offset: 0 });
    raw.close();
    const msgs = readMessages('fatal', 0, r.records as Uint8Array);
    expect(msgs.map((m) => new TextDecoder().decode(m.value))).toEqual(['before', 'after']);
    const ids = msgs.map((m) => m.headers['weir-producer-id']);
    expect(ids[1]).not.toBe(ids[0]); // a fresh id, starting again at sequence 0
    expect(msgs[1]!.headers['weir-sequence']).toBe('0');
  });

  it('waits for queue space (maxQueuedBytes) and still stores every message once, in call order', async () => {
    tb = await startTestBroker();
    const c = await client(tb.url, { maxQueuedBytes: 4096, batchMessages: 10, maxInFlightRequests: 2 });
    await c.createTopic('pressure', { partitions: 1 });
    const calls: Array<Promise<Ack[]>> = [];
    let maxQueued = 0;
    let maxWaiting = 0;
    const sample = (): void => {
      const st = c.stats();
      maxQueued = Math.max(maxQueued, st.queuedBytes);
      maxWaiting = Math.max(maxWaiting, st.waitingProducers);
    };
    for (let i = 0; i < 200; i++) {
      calls.push(c.produce('pressure', [{ value: `p${i}`.padEnd(200, '.') }]).finally(sample));
    }
    const acks = (await Promise.all(calls)).flat();
    expect(maxQueued).toBeGreaterThan(0);
    expect(maxQueued).toBeLessThanOrEqual(4096); // accepted bytes stay within the budget
    expect(maxWaiting).toBeGreaterThan(0); // calls did wait for space
    expect(acks.map((a) => a.offset)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect((await stored(tb.url, 'pressure', 1)).size).toBe(200);
  });

  it('resends across a broker restart on the same data directory: same offsets, nothing stored twice', async () => {
    tb = await startTestBroker();
    const dir = tb.dir;
    const flaky = flakySockets();
    const c = await client(tb.url, { WebSocket: flaky.Ctor, batchMessages: 4, maxInFlightRequests: 10, lingerMs: 0, reconnectDelayMs: 50 });
    await c.createTopic('restart', { partitions: 1 });
    const values: string[] = [];
    const send = (i: number): Promise<Ack[]> => {
      const msgs = Array.from({ length: 4 }, (_, j) => ({ value: `r${i * 4 + j}` }));
      values.push(...msgs.map((m) => m.value));
      return c.produce('restart', msgs);
    };
    const firstAcks = (await Promise.all(Array.from({ length: 5 }, (_, i) => send(i)))).flat();
    flaky.current.swallow = true;
    const pending = Array.from({ length: 10 }, (_, i) => send(5 + i));
    await until(() => flaky.current.swallowed >= 10, 10_000, 'the broker to answer the 10 batches');
    await tb.stop({ keepData: true });
    tb = await startTestBroker({ dataDir: dir });
    flaky.redirect = tb.url;
    const lateAcks = (await Promise.all(pending)).flat();
    expect(lateAcks.map((a) => a.offset)).toEqual(Array.from({ length: 40 }, (_, i) => 20 + i));
    const all = await stored(tb.url, 'restart', 1);
    expect(all.size).toBe(60);
    expectAcksMatch(all, values, [...firstAcks, ...lateAcks]);
    // And it keeps going under the same producer id.
    const [more] = await c.produce('restart', [{ value: 'after' }]);
    expect(more!.offset).toBe(60);
  });
  it('settles a resend older than the partition remembers (DUPLICATE_SEQUENCE) as stored, offset unknown, instead of failing it', async () => {
    tb = await startTestBroker();
    const flaky = flakySockets();
    // 40 one-message batches in flight: more than the 32 batches a partition remembers per producer.
    const c = await client(tb.url, { WebSocket: flaky.Ctor, batchMessages: 1, maxInFlightRequests: 40, lingerMs: 0, reconnectDelayMs: 20 });
    await c.createTopic('old', { partitions: 1 });
    expect(await c.produce('old', [{ value: 'first' }])).toEqual([{ partition: 0, offset: 0 }]); // id and topic known
    flaky.current.swallow = true;
    const values = Array.from({ length: 40 }, (_, i) => `o${i}`);
    const pending = values.map((value) => c.produce('old', [{ value }]));
    await until(() => flaky.current.swallowed >= 40, 10_000, 'the broker to answer the 40 batches');
    flaky.current.drop();
    const acks = (await Promise.all(pending)).flat();
    for (let i = 0; i < 8; i++) expect(acks[i]).toEqual({ partition: 0, offset: -1, duplicate: true });
    expect(acks.slice(8).map((a) => a.offset)).toEqual(Array.from({ length: 32 }, (_, i) => 9 + i));
    const all = await stored(tb.url, 'old', 1);
    expect(all.size).toBe(41);
    // The stream goes on under the same producer: the next message follows in order.
    const [next] = await c.produce('old', [{ value: 'after' }]);
    expect(next).toEqual({ partition: 0, offset: 41 });
  });

  it('sends ttl / expiresAt as time headers and refuses delayed messages with BAD_REQUEST', async () => {
    tb = await startTestBroker();
    const c = await client(tb.url);
    await c.createTopic('timed', { partitions: 1 });
    await expect(c.produce('timed', [{ value: 'a' }, { value: 'b', delay: 1000 }])).rejects.toMatchObject({ code: 'BAD_REQUEST', details: { field: 'delay', index: 1 } });
    await expect(c.produce('timed', [{ value: 'c', deliverAt: new Date(Date.now() + 60_000) }])).rejects.toMatchObject({ code: 'BAD_REQUEST', details: { field: 'deliverAt', index: 0 } });
    await expect(c.produce('timed', [{ value: 'd', ttl: -5 }])).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    const expiresAt = Date.now() + 3_600_000;
    const acks = await c.produce('timed', [{ value: 'ttl', ttl: 60_000 }, { value: 'expires', expiresAt }]);
    expect(acks).toEqual([{ partition: 0, offset: 0 }, { partition: 0, offset: 1 }]);
    const raw = await RawClient.connect(tb.url);
    try {
      const r = await raw.request({ op: 'fetch', topic: 'timed', partition: 0, offset: 0, maxRecords: 10 });
      const msgs = readMessages('timed', 0, r.records as Uint8Array);
      expect(msgs.map((m) => new TextDecoder().decode(m.value))).toEqual(['ttl', 'expires']);
      expect(msgs[0]!.headers['weir-ttl']).toBe('60000');
      expect(msgs[1]!.headers['weir-expires-at']).toBe(String(expiresAt));
    } finally {
      raw.close();
    }
  });
  it('streams of several partitions share a small in-flight byte budget: each waits for answers, none stalls', async () => {
    tb = await startTestBroker();
    const c = await client(tb.url, { maxInFlightBytes: 4096, batchMessages: 4, lingerMs: 0 });
    await c.createTopic('budget', { partitions: 8 });
    const values = Array.from({ length: 400 }, (_, i) => `b${i}-`.padEnd(300, '.'));
    const acks = (await Promise.all(values.map((value, i) => c.produce('budget', [{ key: `k${i % 23}`, value }])))).flat();
    const all = await stored(tb.url, 'budget', 8);
    expect(all.size).toBe(400);
    expectAcksMatch(all, values, acks);
  });
  it('keeps its producer id to itself: another connection\'s batch under it is refused and the client\'s next batch is stored at its own offset', async () => {
    tb = await startTestBroker();
    const c = await client(tb.url, { lingerMs: 0 });
    await c.createTopic('mine', { partitions: 1 });
    expect(await c.produce('mine', [{ value: 'one' }])).toEqual([{ partition: 0, offset: 0 }]);
    const raw = await RawClient.connect(tb.url);
    try {
      const first = await raw.request({ op: 'fetch', topic: 'mine', partition: 0, offset: 0 });
      const pid = Number(readMessages('mine', 0, first.records as Uint8Array)[0]!.headers['weir-producer-id']);
      const b = new BatchBuilder();
      b.add(null, 'forged', null);
      const forged = await raw.request({ op: 'produce', topic: 'mine', partition: 0, producerId: pid, sequence: 1, records: b.take() });
      expect(forged).toMatchObject({ op: 'error', code: 'PRODUCER_ID_NOT_OWNED' });
    } finally {
      raw.close();
    }
    expect(await c.produce('mine', [{ value: 'two' }])).toEqual([{ partition: 0, offset: 1 }]);
    expect([...(await stored(tb.url, 'mine', 1)).keys()]).toEqual(['one', 'two']);
  });

  it('fails unanswered batches with PRODUCER_ID_NOT_OWNED when a restarted broker no longer knows its id, then goes on under a new one', async () => {
    tb = await startTestBroker();
    const dir = tb.dir;
    const flaky = flakySockets();
    const c = await client(tb.url, { WebSocket: flaky.Ctor, lingerMs: 0, reconnectDelayMs: 50 });
    await c.createTopic('forgotten', { partitions: 1 });
    expect(await c.produce('forgotten', [{ value: 'before' }])).toEqual([{ partition: 0, offset: 0 }]);
    flaky.current.swallow = true;
    const unanswered = c.produce('forgotten', [{ value: 'unanswered' }]);
    await until(() => flaky.current.swallowed >= 1, 10_000, 'the broker to answer the batch');
    await tb.stop({ keepData: true });
    fs.rmSync(path.join(dir, PRODUCERS_DIR, BINDINGS_FILE)); // as if its binding was lost
    tb = await startTestBroker({ dataDir: dir });
    flaky.redirect = tb.url;
    // It was stored, but the client cannot tell: resending under another id could store it twice.
    await expect(unanswered).rejects.toMatchObject({ code: 'PRODUCER_ID_NOT_OWNED' });
    expect(await c.produce('forgotten', [{ value: 'after' }])).toEqual([{ partition: 0, offset: 2 }]);
    const all = await stored(tb.url, 'forgotten', 1);
    expect([...all.keys()]).toEqual(['before', 'unanswered', 'after']);
  });
});
