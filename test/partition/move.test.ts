/**
 * Moving a topic's partition actors between the gateway's thread and worker threads
 * (Broker.moveTopic, and `actorHost: 'auto'`, which moves by load): a real broker on 127.0.0.1,
 * clients through the SDK. What a user relies on across a move: no request fails or is retried,
 * every acknowledged message is stored once at its offset and delivered, in order per key.
 */
import { expect, it } from 'vitest';
import { brokerFixture, startTestBroker } from '../support/broker.js';
import { payload, sameBytes, until } from '../support/payload.js';
import { readPartition } from '../support/raw-client.js';
import { record } from '../supervisor/helpers.js';

const fx = brokerFixture();
const client = fx.client;

interface Move {
  topic: string;
  from: string;
  to: string;
  ms: number;
}
/** What is published on a diagnostics channel during this test. */
function recorded<T>(channel: string): T[] {
  const r = record<T>(channel);
  fx.defer(r.stop);
  return r.messages;
}
const recordMoves = (): Move[] => recorded<Move>('weir:partition:move');

/**
 * Produce `seq`-numbered 100-byte messages on 40 keys (one key per producer connection, several
 * requests of each in flight, so a move always finds some) until stop(), and check what was delivered.
 */
async function load(url: string, topic: string) {
  const PRODUCERS = 4;
  const producers = await Promise.all(Array.from({ length: PRODUCERS }, () => client(url)));
  const consumer = await client(url);
  const got = new Map<number, { partition: number; offset: number }>();
  const lastByKey = new Map<string, number>();
  let orderViolations = 0;
  let mismatches = 0;
  await consumer.subscribe(topic, { group: 'g', from: 'earliest' }, (m) => {
    const seq = new DataView(m.value.buffer, m.value.byteOffset).getUint32(0, true);
    const prev = lastByKey.get(m.key!);
    if (prev !== undefined && prev >= seq) orderViolations++;
    lastByKey.set(m.key!, seq);
    if (!sameBytes(m.value.subarray(4), payload(1, seq, 96))) mismatches++;
    got.set(seq, { partition: m.partition, offset: m.offset });
  });
  const acked = new Map<number, { partition: number; offset: number }>();
  let stopping = false;
  let next = 0;
  // Producer j sends the keys k ≡ j (mod PRODUCERS), so each key's order is one connection's order.
  const send = async (j: number): Promise<void> => {
    while (!stopping) {
      const base = next;
      next += 100;
      const msgs = Array.from({ length: 100 }, (_, i) => {
        const seq = base + i;
        const value = new Uint8Array(100);
        new DataView(value.buffer).setUint32(0, seq, true);
        value.set(payload(1, seq, 96), 4);
        return { key: `k${((seq % 10) * PRODUCERS + j) % 40}`, value };
      });
      const acks = await producers[j]!.produce(topic, msgs);
      acks.forEach((a, i) => acked.set(base + i, a));
    }
  };
  // Several batches of each producer in flight at once.
  const running = Promise.all(producers.flatMap((_, j) => [send(j), send(j), send(j)]));
  return {
    retries: () => producers.reduce((n, p) => n + p.stats().retries, 0),
    acked,
    /**
     * `exact`: also require per-key order and offsets 0..n-1 per partition. After a crash the SDK
     * resends what was in flight (at-least-once): a resent batch may be stored twice, or after a
     * later one of the same key (docs: maxInFlightRequests 1 keeps order across retries).
     */
    async stop(exact = true): Promise<void> {
      stopping = true;
      await running;
      await until(() => got.size === acked.size, 20_000, 'every acknowledged message to be delivered');
      if (exact) expect(orderViolations).toBe(0);
      expect(mismatches).toBe(0);
      for (const [seq, where] of acked) expect(got.get(seq), String(seq)).toEqual(where);
      if (!exact) return;
      const perPartition = new Map<number, number[]>();
      for (const w of acked.values()) (perPartition.get(w.partition) ?? perPartition.set(w.partition, []).get(w.partition)!).push(w.offset);
      for (const offsets of perPartition.values()) {
        offsets.sort((a, b) => a - b);
        expect(offsets).toEqual(offsets.map((_, i) => i)); // dense: nothing lost, nothing twice
      }
    },
  };
}

it('moves a topic from the gateway thread to worker threads and back while it is produced and consumed: no request fails or is retried, nothing lost or stored twice', async () => {
  fx.tb = await startTestBroker({ fsync: 'never', actorHost: 'gateway' });
  const moves = recordMoves();
  const admin = await client(fx.tb.url);
  await admin.createTopic('moving', { partitions: 4 });
  const before = [0, 1, 2, 3].map((p) => fx.tb!.broker.partitionActor('moving', p));
  expect(before.map((a) => a.host)).toEqual(['gateway', 'gateway', 'gateway', 'gateway']);

  const l = await load(fx.tb.url, 'moving');
  await until(() => l.acked.size > 2_000, 10_000, 'some traffic before the first move');
  for (const to of ['threads', 'gateway', 'threads', 'gateway', 'threads'] as const) {
    const sizeBefore = l.acked.size;
    expect(await fx.tb.broker.moveTopic('moving', to)).toBe(true);
    expect(fx.tb.broker.hostOf('moving')).toBe(to);
    for (let p = 0; p < 4; p++) {
      const a = fx.tb.broker.partitionActor('moving', p);
      expect(a).toBe(before[p]); // the same actor, rehosted: its waiters were kept
      expect(a.host).toBe(to);
    }
    expect((await admin.describeTopic('moving')).offsets.map((o) => o.host)).toEqual([to, to, to, to]);
    await until(() => l.acked.size > sizeBefore + 1_000, 10_000, `traffic after the move to ${to}`);
  }
  expect(await fx.tb.broker.moveTopic('moving', 'threads')).toBe(false); // already there
  await l.stop();
  expect(l.retries()).toBe(0);
  expect(moves.map((m) => m.to)).toEqual(['threads', 'gateway', 'threads', 'gateway', 'threads']);

  // What the logs hold after the moves is what was acknowledged, and it survives a restart.
  const perPartition = [0, 0, 0, 0];
  for (const a of l.acked.values()) perPartition[a.partition]!++;
  await fx.tb.stop({ keepData: true });
  fx.tb = await startTestBroker({ dataDir: fx.tb.dir, fsync: 'never', actorHost: 'threads' });
  for (let p = 0; p < 4; p++) expect((await readPartition(fx.tb.url, 'moving', p)).size).toBe(perPartition[p]);
});

it('a move whose new threads fail to start falls back to the old host with the held requests: none fails, nothing lost or stored twice', async () => {
  // 4 partitions, 2 per thread: the thread of partitions 0-1 starts (its actors serve for a moment),
  // the one of 2-3 fails; both go back and the topic stays on the gateway's thread.
  fx.tb = await startTestBroker({ fsync: 'never', actorHost: 'gateway', actorsPerThread: 2 });
  const moves = recordMoves();
  const admin = await client(fx.tb.url);
  await admin.createTopic('fallback', { partitions: 4 });
  const l = await load(fx.tb.url, 'fallback');
  await until(() => l.acked.size > 2_000, 10_000, 'some traffic before the move');
  const started = recorded<{ id: string }>('weir:child:start');
  process.env.WEIR_TEST_FAIL_THREAD_START = 'fallback/2';
  fx.defer(() => delete process.env.WEIR_TEST_FAIL_THREAD_START);
  await expect(fx.tb.broker.moveTopic('fallback', 'threads')).resolves.toBe(false);
  // The thread of 0-1 started and was undone; then the four gateway-hosted children.
  expect(started.map((m) => m.id)).toEqual(['fallback/0-1', 'fallback/0', 'fallback/1', 'fallback/2', 'fallback/3']);
  expect(fx.tb.broker.hostOf('fallback')).toBe('gateway');
  expect((await admin.describeTopic('fallback')).offsets.map((o) => o.host)).toEqual(['gateway', 'gateway', 'gateway', 'gateway']);
  expect(moves.map((m) => [m.from, m.to])).toEqual([['gateway', 'gateway']]);
  const sizeBefore = l.acked.size;
  await until(() => l.acked.size > sizeBefore + 1_000, 10_000, 'traffic after the failed move');

  // The next move, with the threads able to start, goes through.
  delete process.env.WEIR_TEST_FAIL_THREAD_START;
  await expect(fx.tb.broker.moveTopic('fallback', 'threads')).resolves.toBe(true);
  expect(fx.tb.broker.hostOf('fallback')).toBe('threads');
  const sizeAfter = l.acked.size;
  await until(() => l.acked.size > sizeAfter + 1_000, 10_000, 'traffic on the threads');
  await l.stop();
  expect(l.retries()).toBe(0);
});

it('a partition that crashes after a move is restarted on its new host and replays its log', async () => {
  fx.tb = await startTestBroker({ fsync: 'never', actorHost: 'gateway', restartBackoff: { initialMs: 20, maxMs: 100 } });
  const c = await client(fx.tb.url);
  await c.createTopic('crashy', { partitions: 2 });
  await c.produce('crashy', Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, value: payload(2, i, 50) })));
  await fx.tb.broker.moveTopic('crashy', 'threads');
  const moved = fx.tb.broker.partitionActor('crashy', 0);
  await moved.worker.terminate();
  await until(() => fx.tb!.broker.partitionActor('crashy', 0) !== moved && fx.tb!.broker.partitionActor('crashy', 0).available, 10_000, 'the restart');
  expect(fx.tb.broker.partitionActor('crashy', 0).host).toBe('threads');
  await c.produce('crashy', Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, value: payload(2, 100 + i, 50) })));
  let total = 0;
  for (let p = 0; p < 2; p++) total += (await readPartition(fx.tb.url, 'crashy', p)).size;
  expect(total).toBe(200);
});

it('queue-mode consumers keep receiving and acknowledging across moves: every message handled once', async () => {
  fx.tb = await startTestBroker({ fsync: 'never', actorHost: 'gateway' });
  const admin = await client(fx.tb.url);
  await admin.createTopic('jobs', { partitions: 4 });
  const handled = new Map<string, number>();
  for (let i = 0; i < 2; i++) {
    const c = await client(fx.tb.url);
    await c.subscribe('jobs', { mode: 'queue', group: 'workers', prefetch: 50 }, (m) => {
      const v = new TextDecoder().decode(m.value);
      handled.set(v, (handled.get(v) ?? 0) + 1);
    });
  }
  const TOTAL = 6_000;
  const producing = (async () => {
    for (let i = 0; i < TOTAL; i += 200) {
      await admin.produce('jobs', Array.from({ length: 200 }, (_, j) => ({ key: `k${(i + j) % 64}`, value: String(i + j) })));
    }
  })();
  for (const to of ['threads', 'gateway', 'threads'] as const) {
    await until(() => handled.size > 0, 10_000, 'deliveries');
    await fx.tb.broker.moveTopic('jobs', to);
  }
  await producing;
  await until(() => handled.size === TOTAL, 20_000, 'every job handled');
  await new Promise((r) => setTimeout(r, 300)); // a redelivery would show up as a second count
  expect([...handled.values()].filter((n) => n !== 1)).toEqual([]);
});

it('a partition whose thread dies while its topic moves is started anew on the new host, and loses nothing it acknowledged', async () => {
  // One thread per partition: the move stops partition 0's thread first, and partition 1's thread
  // is killed meanwhile (its supervisor schedules a restart, which the move then takes over).
  fx.tb = await startTestBroker({ fsync: 'never', actorHost: 'threads', actorsPerThread: 1, restartBackoff: { initialMs: 20, maxMs: 100 } });
  await (await client(fx.tb.url)).createTopic('crash-moving', { partitions: 2 });
  const l = await load(fx.tb.url, 'crash-moving');
  await until(() => l.acked.size > 2_000, 10_000, 'some traffic');
  const [kept, killed] = [0, 1].map((p) => fx.tb!.broker.partitionActor('crash-moving', p));
  const moving = fx.tb.broker.moveTopic('crash-moving', 'gateway');
  await killed!.worker.terminate();
  await moving;
  await fx.tb.broker.waitHealthy();
  expect(fx.tb.broker.partitionActor('crash-moving', 0)).toBe(kept); // moved with what it held
  expect(fx.tb.broker.partitionActor('crash-moving', 1)).not.toBe(killed); // died: a new actor
  for (let p = 0; p < 2; p++) expect(fx.tb.broker.partitionActor('crash-moving', p).host).toBe('gateway');
  const sizeBefore = l.acked.size;
  await until(() => l.acked.size > sizeBefore + 2_000, 10_000, 'traffic after the move');
  await l.stop(false); // the SDK resent what the dead thread had in flight (see stop())
});

it('a broker closed while a topic moves stops cleanly, and its logs hold everything acknowledged', async () => {
  fx.tb = await startTestBroker({ fsync: 'never', actorHost: 'gateway' });
  const c = await client(fx.tb.url);
  await c.createTopic('closing', { partitions: 2 });
  const acks = await c.produce('closing', Array.from({ length: 500 }, (_, i) => ({ key: `k${i}`, value: payload(3, i, 50) })));
  const moving = fx.tb.broker.moveTopic('closing', 'threads').catch(() => false);
  await c.close();
  await fx.tb.stop({ keepData: true });
  await moving;
  fx.tb = await startTestBroker({ dataDir: fx.tb.dir, fsync: 'never' });
  let total = 0;
  for (let p = 0; p < 2; p++) total += (await readPartition(fx.tb.url, 'closing', p)).size;
  expect(total).toBe(acks.length);
});

it("actorHost 'auto' starts a topic on the gateway's thread, moves it to worker threads while it is busy and back once it is quiet", async () => {
  fx.tb = await startTestBroker({
    fsync: 'never',
    actorHost: 'auto',
    // Scaled down so a test sees both moves within seconds: any traffic makes the gateway "busy".
    placement: { sampleMs: 100, busyUtilization: 0.05, busySamples: 2, hotRecordsPerSec: 2_000, coldRecordsPerSec: 100, coldSamples: 5, idleUtilization: 0.04 },
  });
  const moves = recordMoves();
  await (await client(fx.tb.url)).createTopic('auto', { partitions: 4 });
  expect(fx.tb.broker.hostOf('auto')).toBe('gateway');
  const l = await load(fx.tb.url, 'auto');
  await until(() => fx.tb!.broker.hostOf('auto') === 'threads', 15_000, 'the busy topic to move to worker threads');
  expect(fx.tb.broker.partitionActor('auto', 0).host).toBe('threads');
  await l.stop();
  await until(() => fx.tb!.broker.hostOf('auto') === 'gateway', 15_000, 'the quiet topic to move back');
  expect(fx.tb.broker.partitionActor('auto', 0).host).toBe('gateway');
  expect(moves.filter((m) => m.topic === 'auto').map((m) => m.to).slice(0, 2)).toEqual(['threads', 'gateway']);
  expect(l.retries()).toBe(0);
});

it("actorHost 'auto' with fsync always also starts a topic on the gateway's thread and moves it to worker threads once busy, failing nothing", async () => {
  fx.tb = await startTestBroker({
    fsync: 'always',
    actorHost: 'auto',
    placement: { sampleMs: 100, busyUtilization: 0.05, busySamples: 2, hotRecordsPerSec: 2_000, coldRecordsPerSec: 100, coldSamples: 1_000, idleUtilization: 0.04 },
  });
  await (await client(fx.tb.url)).createTopic('durable', { partitions: 2 });
  expect(fx.tb.broker.hostOf('durable')).toBe('gateway');
  expect(fx.tb.broker.partitionActor('durable', 1).host).toBe('gateway');
  const l = await load(fx.tb.url, 'durable');
  await until(() => fx.tb!.broker.hostOf('durable') === 'threads', 15_000, 'the busy topic to move to worker threads');
  expect(fx.tb.broker.partitionActor('durable', 1).host).toBe('threads');
  const sizeBefore = l.acked.size;
  await until(() => l.acked.size > sizeBefore + 1_000, 10_000, 'traffic after the move');
  await l.stop();
  expect(l.retries()).toBe(0);
});

it("actorHost 'auto' moves a quiet topic whose partitions take much of the gateway's thread (fdatasyncs under fsync always), and keeps it on threads longer", async () => {
  fx.tb = await startTestBroker({
    fsync: 'always',
    actorHost: 'auto',
    // No rate counts as hot here; any time spent stepping the partitions' cores does.
    placement: { sampleMs: 100, busyUtilization: 0.01, busySamples: 2, hotRecordsPerSec: 1e9, hotGatewayMsPerSec: 0.01, coldRecordsPerSec: 100_000, coldSamples: 1, coldSamplesAfterSlow: 1_000, idleUtilization: 0.005 },
  });
  const moves = recordMoves();
  const c = await client(fx.tb.url);
  await c.createTopic('syncing', { partitions: 2 });
  expect(fx.tb.broker.hostOf('syncing')).toBe('gateway');
  let stop = false;
  let acked = 0;
  const producing = (async () => {
    for (let i = 0; !stop; i++) {
      await c.produce('syncing', [{ key: `k${i % 7}`, value: payload(9, i, 100) }]);
      acked++;
    }
  })();
  await until(() => fx.tb!.broker.hostOf('syncing') === 'threads', 15_000, 'the topic to move to worker threads for its time on the gateway');
  stop = true;
  await producing;
  expect(moves.map((m) => [m.topic, m.to])).toEqual([['syncing', 'threads']]);
  // Quiet now, and coldSamples is 1: a topic moved for its rate would come back within a few samples.
  await new Promise((r) => setTimeout(r, 1_000));
  expect(fx.tb.broker.hostOf('syncing')).toBe('threads');
  expect((await readPartition(fx.tb.url, 'syncing', 0)).size + (await readPartition(fx.tb.url, 'syncing', 1)).size).toBe(acked);
});
