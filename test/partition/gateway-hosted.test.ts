/**
 * Partition actors on the gateway's thread (actorHost 'gateway'): a real broker on 127.0.0.1 with
 * real logs, clients through the SDK and raw frames. What a user relies on is the same as on worker
 * threads: every acknowledged message stored once at its offset, per-key order, long polls and
 * subscriptions answered, a crash answered (retryably) and a restart replaying the log; plus what only this host can get wrong: an output ring that fills while a core steps (the
 * gateway drains it in the middle of the step), and a log written here that opens on a worker.
 */
import { expect, it } from 'vitest';
import { readMessages } from '../../src/protocol/batch-reader.js';
import { BatchBuilder } from '../../src/protocol/batch-builder.js';
import { brokerFixture, startTestBroker } from '../support/broker.js';
import { RawClient, readPartition } from '../support/raw-client.js';
import { payload, sameBytes, until } from '../support/payload.js';
import { tmpDir } from '../support/tmp-dir.js';

const fx = brokerFixture();
const client = fx.client;


it('produces and delivers on the gateway thread: every message once, in order per key, at its acknowledged offset, bytes intact', async () => {
  fx.tb = await startTestBroker({ fsync: 'never', actorHost: 'gateway' });
  const admin = await client(fx.tb.url);
  await admin.createTopic('inline', { partitions: 8 });
  expect(() => fx.tb!.broker.partitionActor('inline', 0).worker).toThrow(/gateway's thread/);

  const PRODUCERS = 2;
  const PER = 10_000;
  const got = new Map<string, { partition: number; offset: number }>(); // "p:seq" → where it was delivered
  const lastSeqByKey = new Map<string, number>();
  let orderViolations = 0;
  let mismatches = 0;
  const consumer = await client(fx.tb.url);
  // Subscribed before anything is produced: its fetches wait at the log end (parked) and are
  // answered from the steps that append.
  await consumer.subscribe('inline', { group: 'g', from: 'earliest' }, (m) => {
    const p = m.value[0]!;
    const seq = m.value[1]! | (m.value[2]! << 8);
    const key = m.key!;
    const prev = lastSeqByKey.get(key);
    if (prev !== undefined && prev >= seq) orderViolations++;
    lastSeqByKey.set(key, seq);
    if (!sameBytes(m.value.subarray(3), payload(p, seq, 97))) mismatches++;
    got.set(`${p}:${seq}`, { partition: m.partition, offset: m.offset });
  });

  const acked = new Map<string, { partition: number; offset: number }>();
  await Promise.all(
    Array.from({ length: PRODUCERS }, async (_, p) => {
      const c = await client(fx.tb!.url);
      for (let start = 0; start < PER; start += 250) {
        const msgs = Array.from({ length: 250 }, (_, i) => {
          const seq = start + i;
          const value = new Uint8Array(100);
          value[0] = p;
          value[1] = seq & 0xff;
          value[2] = seq >> 8;
          value.set(payload(p, seq, 97), 3);
          return { key: `p${p}-k${seq % 50}`, value };
        });
        const acks = await c.produce('inline', msgs);
        acks.forEach((a, i) => acked.set(`${p}:${start + i}`, a));
      }
    }),
  );
  expect(acked.size).toBe(PRODUCERS * PER);
  await until(() => got.size === PRODUCERS * PER, 20_000, 'every message to be delivered');
  expect(orderViolations).toBe(0);
  expect(mismatches).toBe(0);
  for (const [id, where] of acked) expect(got.get(id), id).toEqual(where);
  // Offsets are dense per partition: 0..n-1, nothing stored twice.
  const perPartition = new Map<number, number[]>();
  for (const w of acked.values()) (perPartition.get(w.partition) ?? perPartition.set(w.partition, []).get(w.partition)!).push(w.offset);
  for (const offsets of perPartition.values()) {
    offsets.sort((a, b) => a - b);
    expect(offsets).toEqual(offsets.map((_, i) => i));
  }
});

it('a long poll at the log end is answered by the next produce, and at its deadline when nothing comes', async () => {
  fx.tb = await startTestBroker({ fsync: 'never', actorHost: 'gateway' });
  const raw = await RawClient.connect(fx.tb.url);
  await raw.request({ op: 'create_topic', topic: 'poll', partitions: 1 });
  const t0 = Date.now();
  const empty = await raw.request({ op: 'fetch', topic: 'poll', partition: 0, offset: 0, maxWaitMs: 150 });
  expect(empty).toMatchObject({ op: 'result', next: 0 });
  expect(Date.now() - t0).toBeGreaterThanOrEqual(140); // answered by the core's deadline (the host's timer)
  const waiting = raw.request({ op: 'fetch', topic: 'poll', partition: 0, offset: 0, maxWaitMs: 10_000 });
  const b = new BatchBuilder();
  b.add(null, payload(1, 1, 40));
  await raw.request({ op: 'produce', topic: 'poll', partition: 0, records: b.take() });
  const r = await waiting;
  expect(r).toMatchObject({ op: 'result', next: 1 });
  const [m] = readMessages('poll', 0, r.records as Uint8Array);
  expect(sameBytes(m!.value, payload(1, 1, 40))).toBe(true);
  raw.close();
});

it('drains a full output ring in the middle of a step: four subscribers behind 16 KiB rings each get every message in order', async () => {
  fx.tb = await startTestBroker({ fsync: 'never', actorHost: 'gateway', ringBytes: 16 * 1024 });
  const admin = await client(fx.tb.url);
  await admin.createTopic('narrow', { partitions: 1 });
  const TOTAL = 6_000;
  const seen = [0, 0, 0, 0];
  const bad = [0, 0, 0, 0];
  for (let g = 0; g < 4; g++) {
    const c = await client(fx.tb.url);
    await c.subscribe('narrow', { group: `g${g}`, from: 'earliest' }, (m) => {
      if (m.offset !== seen[g] || !sameBytes(m.value, payload(5, m.offset, 200))) bad[g]!++;
      seen[g]!++;
    });
  }
  // One step answers four standing fetches (up to a quarter of the ring each) plus the acks: more
  // than the ring holds, so the core waits for output space, which on this thread means the gateway
  // takes the answers now.
  for (let start = 0; start < TOTAL; start += 30) {
    const msgs = Array.from({ length: 30 }, (_, i) => ({ value: payload(5, start + i, 200) }));
    const acks = await admin.produce('narrow', msgs);
    expect(acks[0]!.offset).toBe(start);
  }
  await until(() => seen.every((n) => n === TOTAL), 20_000, 'all four subscribers to catch up');
  expect(bad).toEqual([0, 0, 0, 0]);
});

it('a crash answers every request with its ack or PARTITION_UNAVAILABLE (retryable); the supervisor replays the log and every acknowledged record is there', async () => {
  // A backoff long enough that the requests sent right after the crash reach a partition still
  // down on a loaded machine (the test process may be descheduled for tens of ms).
  fx.tb = await startTestBroker({ fsync: 'never', actorHost: 'gateway', restartBackoff: { initialMs: 500, maxMs: 1_000 } });
  const raw = await RawClient.connect(fx.tb.url);
  await raw.request({ op: 'create_topic', topic: 'crashy', partitions: 2 });
  const produce = (i: number): Promise<Record<string, unknown>> => {
    const b = new BatchBuilder();
    for (let j = 0; j < 100; j++) b.add(null, payload(i, j, 80));
    return raw.request({ op: 'produce', topic: 'crashy', partition: 1, records: b.take() }, 30_000);
  };
  const first = await Promise.all(Array.from({ length: 50 }, (_, i) => produce(i)));
  expect(first.every((r) => r.op === 'result')).toBe(true);

  const before = fx.tb.broker.partitionActor('crashy', 1);
  let exit: { normal: boolean; reason: Error | null } | undefined;
  before.onExit((e) => (exit = e));
  before.crash('throw');
  await until(() => !before.available, 5_000, 'the crash');
  // Sent while the partition restarts (backoff ≥ 400 ms, then the replay): the first are refused.
  const second = await Promise.all(Array.from({ length: 150 }, (_, i) => produce(50 + i)));
  expect(exit).toMatchObject({ normal: false, reason: { code: 'CHILD_CRASHED' } });
  const failed = second.filter((r) => r.op === 'error');
  expect(failed.length).toBeGreaterThan(0);
  for (const f of failed) expect(f).toMatchObject({ code: 'PARTITION_UNAVAILABLE', retryable: true });

  await fx.tb.broker.waitHealthy();
  const after = fx.tb.broker.partitionActor('crashy', 1);
  expect(after).not.toBe(before);
  const log = await readPartition(fx.tb.url, 'crashy', 1);
  let ackedRecords = 0;
  for (const [i, r] of [...first, ...second].entries()) {
    if (r.op !== 'result') continue;
    const [[p, base, count]] = r.parts as Array<[number, number, number]>;
    expect(p).toBe(1);
    for (let k = 0; k < count; k++) {
      const stored = log.get(base + k);
      expect(stored, `acked offset ${base + k}`).toBeDefined();
      expect(sameBytes(stored!.value, payload(i, k, 80))).toBe(true);
    }
    ackedRecords += count;
  }
  // Nothing refused was stored, nothing acknowledged was lost.
  expect(log.size).toBe(ackedRecords);
  // The restarted actor appends after its replayed log.
  const next = await produce(999);
  expect(next).toMatchObject({ op: 'result' });
  expect((next.parts as Array<[number, number, number]>)[0]![1]).toBe(ackedRecords);
  raw.close();
});

it('a log written on the gateway thread reopens on worker threads and back, after graceful stops', async () => {
  const data = tmpDir('weir-host-switch-');
  fx.defer(data.cleanup);
  const produceSome = async (url: string, from: number): Promise<void> => {
    const c = await client(url);
    const acks = await c.produce('moves', Array.from({ length: 500 }, (_, i) => ({ key: `k${(from + i) % 7}`, value: payload(3, from + i, 60) })));
    expect(acks).toHaveLength(500);
  };
  for (const [round, actorHost] of (['gateway', 'threads', 'gateway'] as const).entries()) {
    fx.tb = await startTestBroker({ dataDir: data.dir, fsync: 'never', actorHost });
    if (round === 0) await (await client(fx.tb.url)).createTopic('moves', { partitions: 3 });
    await produceSome(fx.tb.url, round * 500);
    await fx.closeClients();
    await fx.tb.stop({ keepData: true });
    fx.tb = undefined;
  }
  fx.tb = await startTestBroker({ dataDir: data.dir, fsync: 'never', actorHost: 'gateway' });
  const values: Uint8Array[] = [];
  for (let p = 0; p < 3; p++) for (const m of (await readPartition(fx.tb.url, 'moves', p)).values()) values.push(m.value);
  expect(values).toHaveLength(1500);
  const expected = new Set(Array.from({ length: 1500 }, (_, s) => Buffer.from(payload(3, s, 60)).toString('hex')));
  for (const v of values) expect(expected.delete(Buffer.from(v).toString('hex'))).toBe(true);
});

it('fetches answered at once (long poll 0) do not starve the gateway: each turn flushes a bounded number of times', async () => {
  // With longPollMs 0 a caught-up subscription's fetch is answered empty in the step that reads it,
  // and its answer asks again: on this thread that cycle would never give the sockets a turn.
  fx.tb = await startTestBroker({ fsync: 'never', actorHost: 'gateway', gateway: { longPollMs: 0 } });
  const admin = await client(fx.tb.url);
  await admin.createTopic('eager', { partitions: 2 });
  let got = 0;
  const consumer = await client(fx.tb.url);
  await consumer.subscribe('eager', { from: 'earliest' }, () => void got++);
  for (let i = 0; i < 20; i++) {
    const acks = await admin.produce('eager', Array.from({ length: 50 }, (_, j) => ({ key: `k${j}`, value: payload(i, j, 30) })));
    expect(acks).toHaveLength(50);
  }
  await until(() => got === 1000, 10_000, 'all 1000 messages to be delivered');
});
