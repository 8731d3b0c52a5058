// Partition actors on worker threads here (actorHost 'threads'): these tests kill a partition's thread.
import { afterEach, expect, it } from 'vitest';
import { connect, type WeirClient } from '../../src/client/index.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { RawClient, readPartition } from '../support/raw-client.js';
import { payload, sameBytes, until } from '../support/payload.js';

let tb: TestBroker | undefined;
let client: WeirClient | undefined;
afterEach(async () => {
  await client?.close().catch(() => undefined);
  await tb?.stop();
  tb = undefined;
  client = undefined;
});


for (const how of ['terminate', 'throw', 'oom'] as const) {
  it(`restarts a partition actor killed by ${how} mid-stream; every acknowledged message survives, in order`, async () => {
    tb = await startTestBroker({ actorHost: 'threads', fsync: 'never', restartBackoff: { initialMs: 20, maxMs: 200 } });
    client = await connect(tb.url);
    await client.createTopic('crash', { partitions: 4 });
    const restarts: number[] = [];
    const acked: Array<{ seq: number; partition: number; offset: number; key: string }> = [];
    const TOTAL = 20_000;
    const BATCH = 200;
    let crashed = false;
    for (let start = 0; start < TOTAL; start += BATCH) {
      const msgs: Array<{ key: string; value: Uint8Array }> = [];
      for (let seq = start; seq < start + BATCH; seq++) msgs.push({ key: `key-${seq % 64}`, value: payload(7, seq, 64) });
      // One request at a time keeps per-key order across the SDK's retries.
      const acks = await client.produce('crash', msgs);
      acks.forEach((a, i) => acked.push({ seq: start + i, partition: a.partition, offset: a.offset, key: msgs[i]!.key }));
      if (!crashed && start >= TOTAL / 3) {
        crashed = true;
        const actor = tb.broker.partitionActor('crash', 1);
        actor.onExit(() => restarts.push(Date.now()));
        if (how === 'terminate') void actor.worker.terminate();
        else actor.crash(how);
      }
    }
    expect(acked.length).toBe(TOTAL);
    await until(() => restarts.length === 1, 10_000, 'the crash to be observed');
    await tb.broker.waitHealthy();
    expect(tb.broker.partitionActor('crash', 1).available).toBe(true);
    expect(tb.broker.partitionActor('crash', 1)).not.toBe(undefined);

    const logs = await Promise.all([0, 1, 2, 3].map((p) => readPartition(tb!.url, 'crash', p)));
    const lastOffsetByKey = new Map<string, number>();
    for (const a of acked) {
      const stored = logs[a.partition]!.get(a.offset);
      expect(stored, `acked ${a.partition}/${a.offset}`).toBeDefined();
      expect(stored!.key).toBe(a.key);
      expect(sameBytes(stored!.value, payload(7, a.seq, 64))).toBe(true);
      const prev = lastOffsetByKey.get(a.key);
      if (prev !== undefined) expect(a.offset).toBeGreaterThan(prev);
      lastOffsetByKey.set(a.key, a.offset);
    }
    // The restarted actor serves new writes after its replayed log.
    const after = await client.produce('crash', [{ key: 'key-1', value: 'after' }]);
    expect(after[0]!.offset).toBeGreaterThanOrEqual(Math.max(...logs[after[0]!.partition]!.keys()) + 1);
  });
}

it('answers every request in flight on a dying partition, with PARTITION_UNAVAILABLE (retryable) or its ack', async () => {
  tb = await startTestBroker({ actorHost: 'threads', fsync: 'never', restartBackoff: { initialMs: 50, maxMs: 200 } });
  const raw = await RawClient.connect(tb.url);
  await raw.request({ op: 'create_topic', topic: 'inflight', partitions: 2 });
  const { BatchBuilder } = await import('../../src/protocol/batch-builder.js');
  const answers: Array<Promise<Record<string, unknown>>> = [];
  for (let i = 0; i < 200; i++) {
    const b = new BatchBuilder();
    for (let j = 0; j < 200; j++) b.add(null, payload(i, j, 100));
    answers.push(raw.request({ op: 'produce', topic: 'inflight', partition: 1, records: b.take() }, 30_000));
    if (i === 100) void tb.broker.partitionActor('inflight', 1).worker.terminate();
  }
  const results = await Promise.all(answers);
  const acked = results.filter((r) => r.op === 'result');
  const failed = results.filter((r) => r.op === 'error');
  expect(acked.length + failed.length).toBe(200);
  expect(failed.length).toBeGreaterThan(0);
  for (const f of failed) expect(f).toMatchObject({ code: 'PARTITION_UNAVAILABLE', retryable: true });
  await tb.broker.waitHealthy();
  const log = await readPartition(tb.url, 'inflight', 1);
  for (const r of acked) {
    const [[p, base, count]] = r.parts as Array<[number, number, number]>;
    expect(p).toBe(1);
    for (let k = 0; k < count; k++) expect(log.has(base + k), `acked offset ${base + k}`).toBe(true);
  }
  raw.close();
});

it('restarts every actor of a shared thread when it dies; each hosted partition keeps what it acknowledged', async () => {
  tb = await startTestBroker({ actorHost: 'threads', fsync: 'never', actorsPerThread: 4, restartBackoff: { initialMs: 20, maxMs: 200 } });
  client = await connect(tb.url);
  await client.createTopic('shared', { partitions: 8 });
  const hosted = [0, 1, 2, 3].map((p) => tb!.broker.partitionActor('shared', p));
  expect(new Set(hosted.map((a) => a.worker)).size).toBe(1); // one thread hosts partitions 0-3
  expect(tb.broker.partitionActor('shared', 4).worker).not.toBe(hosted[0]!.worker);
  const acked: Array<{ seq: number; partition: number; offset: number }> = [];
  for (let start = 0; start < 8000; start += 400) {
    const msgs = Array.from({ length: 400 }, (_, i) => ({ key: `k${(start + i) % 97}`, value: payload(9, start + i, 50) }));
    const acks = await client.produce('shared', msgs);
    acks.forEach((a, i) => acked.push({ seq: start + i, ...a }));
    if (start === 4000) void hosted[2]!.worker.terminate();
  }
  await tb.broker.waitHealthy();
  for (const p of [0, 1, 2, 3]) expect(tb.broker.partitionActor('shared', p)).not.toBe(hosted[p]); // all replaced
  const logs = await Promise.all(Array.from({ length: 8 }, (_, p) => readPartition(tb!.url, 'shared', p)));
  for (const a of acked) {
    const stored = logs[a.partition]!.get(a.offset);
    expect(stored, `acked ${a.partition}/${a.offset}`).toBeDefined();
    expect(sameBytes(stored!.value, payload(9, a.seq, 50))).toBe(true);
  }
});
