/** The producer state table (pure) and its store (snapshot + replay of a real log in a temp dir). */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ProducerStateTable } from '../../src/partition/producer-state.js';
import { PRODUCER_SNAPSHOT_FILE, ProducerStateStore, replay } from '../../src/partition/producer-state-store.js';
import { markIdempotent, withProducerHeaders } from '../../src/core/producer-batch.js';
import { PartitionLog, type PartitionStore } from '../../src/log/index.js';
import { MemoryLog } from '../../src/log/internal.js';
import { BatchBuilder } from '../../src/protocol/batch-builder.js';
import { RecordIndex, scanBatch } from '../../src/protocol/record.js';
import { jsonPayload, parseJsonPayload, readSnapshotSync, writeSnapshotSync } from '../../src/journal/index.js';
import { tmpDir } from '../support/tmp-dir.js';

/** The JSON a producer-state snapshot file holds (undefined when there is none or it is damaged). */
function snapshotIn(file: string): unknown {
  const r = readSnapshotSync(file);
  return r.kind === 'ok' ? parseJsonPayload(r.payload) : undefined;
}

describe('ProducerStateTable', () => {
  it('accepts a new producer at sequence 0 only, then exactly the next sequence', () => {
    const t = new ProducerStateTable();
    expect(t.check(7, 3, 1)).toEqual({ kind: 'out_of_order', expected: 0 });
    expect(t.check(7, 0, 5)).toEqual({ kind: 'append' });
    t.record(7, 0, 5, 100);
    t.commit();
    expect(t.check(7, 5, 2)).toEqual({ kind: 'append' });
    expect(t.check(7, 6, 2)).toEqual({ kind: 'out_of_order', expected: 5 });
    expect(t.check(7, 0, 5)).toEqual({ kind: 'duplicate', baseOffset: 100, count: 5 });
    expect(t.check(7, 0, 4)).toEqual({ kind: 'out_of_order', expected: 5 }); // same start, other count
    expect(t.check(7, 2, 1)).toEqual({ kind: 'out_of_order', expected: 5 }); // inside a batch
    expect(t.check(8, 0, 1)).toEqual({ kind: 'append' }); // producers are independent
  });

  it('remembers the last `window` batches; older ones are DUPLICATE_SEQUENCE (too_old)', () => {
    const t = new ProducerStateTable({ window: 10, maxProducers: 100 });
    for (let i = 0; i < 25; i++) {
      t.record(1, i * 2, 2, 1000 + i * 2);
      t.commit();
    }
    expect(t.batchesOf(1).length).toBe(10);
    for (let i = 15; i < 25; i++) expect(t.check(1, i * 2, 2)).toEqual({ kind: 'duplicate', baseOffset: 1000 + i * 2, count: 2 });
    expect(t.check(1, 28, 2)).toEqual({ kind: 'too_old', oldest: 30 });
    expect(t.check(1, 0, 2)).toEqual({ kind: 'too_old', oldest: 30 });
  });

  it('rollback forgets what was recorded since the last commit (a failed flush)', () => {
    const t = new ProducerStateTable();
    t.record(1, 0, 3, 0);
    t.commit();
    t.record(1, 3, 3, 3);
    t.record(2, 0, 1, 6);
    expect(t.check(1, 3, 3).kind).toBe('duplicate');
    t.rollback();
    expect(t.check(1, 3, 3)).toEqual({ kind: 'append' });
    expect(t.size).toBe(1);
    expect(t.check(2, 0, 1)).toEqual({ kind: 'append' });
  });

  it('evicts the least recently appending producer beyond maxProducers', () => {
    const t = new ProducerStateTable({ window: 10, maxProducers: 2 });
    t.record(1, 0, 1, 0);
    t.record(2, 0, 1, 1);
    t.record(1, 1, 1, 2); // 1 is now the most recent
    t.record(3, 0, 1, 3);
    t.commit();
    expect(t.size).toBe(2);
    expect(t.batchesOf(2)).toEqual([]);
    expect(t.batchesOf(1).length).toBe(2);
  });

  it('round-trips through JSON and refuses malformed snapshots', () => {
    const t = new ProducerStateTable();
    t.record(9, 0, 4, 40);
    t.record(9, 4, 1, 50);
    t.commit();
    const u = new ProducerStateTable();
    u.load(JSON.parse(JSON.stringify(t.toJSON())));
    expect(u.check(9, 4, 1)).toEqual({ kind: 'duplicate', baseOffset: 50, count: 1 });
    expect(u.check(9, 5, 1)).toEqual({ kind: 'append' });
    expect(() => new ProducerStateTable().load([[1, [[5, 2, 0]]]])).toThrow();
    expect(() => new ProducerStateTable().load({})).toThrow();
  });
});

describe('ProducerStateStore', () => {
  const tmps: Array<{ cleanup(): void }> = [];
  afterEach(() => {
    for (const t of tmps.splice(0)) t.cleanup();
  });

  function openLog(dir: string): PartitionLog {
    return PartitionLog.open({ dir, fsync: { mode: 'never' }, segmentBytes: 4096 });
  }

  /** Append a batch as the gateway would write it (idempotent or plain) and flush. */
  function append(log: PartitionStore, count: number, idem?: { producerId: number; sequence: number }): number {
    const b = new BatchBuilder();
    for (let i = 0; i < count; i++) b.add(null, `v${i}`.padEnd(100, '.'), { 'weir-producer-id': '999' });
    let records = b.take();
    const index = new RecordIndex();
    scanBatch(records, index, { maxRecordBytes: 1 << 20, maxRecords: 10_000 });
    if (idem) {
      records = withProducerHeaders(records, count, idem);
      scanBatch(records, index, { maxRecordBytes: 1 << 20, maxRecords: 10_000 });
      markIdempotent(records);
    }
    const { baseOffset } = log.append(records, 0, records.length, count);
    log.flush();
    return baseOffset;
  }

  it('rebuilds from the log alone (no snapshot), across several segments; plain records with look-alike headers are ignored', () => {
    const tmp = tmpDir('weir-pstate-');
    tmps.push(tmp);
    const log = openLog(tmp.dir);
    const bases: number[] = [];
    for (let i = 0; i < 30; i++) {
      append(log, 3); // plain, with a forged weir-producer-id header
      bases.push(append(log, 2, { producerId: 5, sequence: i * 2 }));
    }
    expect(log.segmentBaseOffsets().length).toBeGreaterThan(3);
    const store = new ProducerStateStore(tmp.dir);
    const r = store.recover(log);
    expect(r.snapshotUsed).toBe(false);
    expect(r.replayedBatches).toBe(30);
    expect(r.table.size).toBe(1);
    expect(r.table.check(5, 58, 2)).toEqual({ kind: 'duplicate', baseOffset: bases[29], count: 2 });
    expect(r.table.check(5, 60, 2)).toEqual({ kind: 'append' });
    expect(r.table.check(999, 0, 1)).toEqual({ kind: 'append' }); // the forged id is unknown
    log.close();
  });

  it('the replay skips offsets lost to damage and goes on after them: the damaged batch is not remembered, later ones are', () => {
    const log = new MemoryLog({ fsync: { mode: 'never' } });
    const bases = [0, 1, 2, 3].map((i) => append(log, 2, { producerId: 5, sequence: i * 2 }));
    expect(bases).toEqual([0, 2, 4, 6]);
    log.simulateDamage(2, 4); // the second batch
    const table = new ProducerStateTable();
    expect(replay(log, table, 0, log.durableOffset)).toBe(3);
    expect(table.check(5, 0, 2)).toEqual({ kind: 'duplicate', baseOffset: 0, count: 2 });
    expect(table.check(5, 4, 2)).toEqual({ kind: 'duplicate', baseOffset: 4, count: 2 });
    expect(table.check(5, 6, 2)).toEqual({ kind: 'duplicate', baseOffset: 6, count: 2 });
    expect(table.check(5, 8, 2)).toEqual({ kind: 'append' });
    log.destroy();
  });

  it('starts the replay at the snapshot; a snapshot past the log end loses the batches beyond it', () => {
    const tmp = tmpDir('weir-pstate-');
    tmps.push(tmp);
    let log = openLog(tmp.dir);
    for (let i = 0; i < 5; i++) append(log, 1, { producerId: 1, sequence: i });
    const store = new ProducerStateStore(tmp.dir);
    const first = store.recover(log); // writes a snapshot at the end (5)
    expect(first.replayedBatches).toBe(5);
    const snapEnd = log.durableOffset;
    append(log, 1, { producerId: 1, sequence: 5 });
    log.close();
    log = openLog(tmp.dir);
    const second = new ProducerStateStore(tmp.dir).recover(log);
    expect(second.snapshotUsed).toBe(true);
    expect(second.replayedFrom).toBe(snapEnd);
    expect(second.replayedBatches).toBe(1);
    expect(second.table.check(1, 6, 1)).toEqual({ kind: 'append' });
    expect(second.table.check(1, 0, 1)).toEqual({ kind: 'duplicate', baseOffset: 0, count: 1 });
    // A snapshot claiming more than the log holds (the log lost its unsynced tail): its batches
    // past the log end are dropped, and nothing is replayed.
    const file = path.join(tmp.dir, PRODUCER_SNAPSHOT_FILE);
    writeSnapshotSync(file, jsonPayload({ version: 1, offset: 1000, producers: [[1, [[0, 99, 0]]]] }), { mode: 'never' });
    const third = new ProducerStateStore(tmp.dir).recover(log);
    expect(third.snapshotUsed).toBe(true);
    expect(third.replayedBatches).toBe(0);
    expect(third.table.check(1, 0, 1)).toEqual({ kind: 'append' });
    log.close();
  });
  /** Cut the newest segment file `bytes` short, as a power loss would (recovery then truncates). */
  function tearTail(dir: string, bytes: number): void {
    const segment = fs.readdirSync(dir).filter((f) => f.endsWith('.log')).sort().at(-1)!;
    const file = path.join(dir, segment);
    fs.truncateSync(file, fs.statSync(file).size - bytes);
  }

  it('a batch torn by a power loss is not remembered (replay): its resend is appended, not acknowledged as a duplicate', () => {
    const tmp = tmpDir('weir-pstate-');
    tmps.push(tmp);
    let log = openLog(tmp.dir);
    const store = new ProducerStateStore(tmp.dir);
    store.recover(log);
    store.beginTracking(new ProducerStateTable(), log.nextOffset);
    append(log, 1, { producerId: 3, sequence: 0 });
    append(log, 3, { producerId: 3, sequence: 1 }); // offsets 1..3
    log.close();
    tearTail(tmp.dir, 50); // the last record (offset 3) is cut short; offsets 1 and 2 survive
    log = openLog(tmp.dir);
    expect(log.durableOffset).toBe(3);
    const r = new ProducerStateStore(tmp.dir).recover(log);
    expect(r.table.check(3, 0, 1)).toEqual({ kind: 'duplicate', baseOffset: 0, count: 1 });
    expect(r.table.check(3, 1, 3)).toEqual({ kind: 'append' });
    expect(r.table.torn).toEqual({ producerId: 3, firstSeq: 1, count: 3, baseOffset: 1, survived: 2 });
    log.close();
  });

  it('a snapshot past the log end is loaded without a replay, minus the batches the cut reached', () => {
    const tmp = tmpDir('weir-pstate-');
    tmps.push(tmp);
    let log = openLog(tmp.dir);
    for (let i = 0; i < 4; i++) append(log, 2, { producerId: 8, sequence: i * 2 }); // offsets 0..7
    log.close();
    // A snapshot written as of offset 8, then the log lost the second half of its last batch.
    writeSnapshotSync(path.join(tmp.dir, PRODUCER_SNAPSHOT_FILE), jsonPayload({ version: 1, offset: 8, producers: [[8, [[0, 1, 0], [2, 3, 2], [4, 5, 4], [6, 7, 6]]]] }), { mode: 'never' });
    tearTail(tmp.dir, 50);
    log = openLog(tmp.dir);
    expect(log.durableOffset).toBe(7);
    const r = new ProducerStateStore(tmp.dir).recover(log);
    expect(r.snapshotUsed).toBe(true);
    expect(r.replayedBatches).toBe(0);
    expect(r.table.check(8, 4, 2)).toEqual({ kind: 'duplicate', baseOffset: 4, count: 2 });
    expect(r.table.check(8, 6, 2)).toEqual({ kind: 'append' });
    expect(r.table.torn).toEqual({ producerId: 8, firstSeq: 6, count: 2, baseOffset: 6, survived: 1 });
    log.close();
  });

  it('a partition that never had an idempotent batch replays nothing and writes no snapshot after its "none" marker', () => {
    const tmp = tmpDir('weir-pstate-');
    tmps.push(tmp);
    const file = path.join(tmp.dir, PRODUCER_SNAPSHOT_FILE);
    let log = openLog(tmp.dir);
    const store = new ProducerStateStore(tmp.dir, 0);
    expect(store.recover(log).tracking).toBe(false); // brand-new log: "none", written once
    expect(snapshotIn(file)).toEqual({ version: 1, none: true });
    const marked = fs.statSync(file).mtimeMs;
    for (let i = 0; i < 20; i++) append(log, 3);
    const table = new ProducerStateTable();
    store.maybeSnapshot(table, log.durableOffset, Date.now() + 60_000);
    store.write(table, log.durableOffset);
    expect(fs.statSync(file).mtimeMs).toBe(marked);
    log.close();
    log = openLog(tmp.dir);
    const again = new ProducerStateStore(tmp.dir).recover(log);
    expect(again).toMatchObject({ tracking: false, replayedBatches: 0, replayedFrom: 60 });
    // The first idempotent append records where to replay from, durably, before it is made.
    const tracked = new ProducerStateStore(tmp.dir);
    tracked.recover(log);
    tracked.beginTracking(again.table, log.nextOffset);
    append(log, 2, { producerId: 4, sequence: 0 });
    log.close();
    log = openLog(tmp.dir);
    const third = new ProducerStateStore(tmp.dir).recover(log);
    expect(third).toMatchObject({ tracking: true, snapshotUsed: true, replayedFrom: 60, replayedBatches: 1 });
    expect(third.table.check(4, 0, 2)).toEqual({ kind: 'duplicate', baseOffset: 60, count: 2 });
    log.close();
  });

  it('opens the unframed producer-state.json of a data directory from before once, and moves it to a snapshot file', () => {
    const tmp = tmpDir('weir-pstate-');
    tmps.push(tmp);
    let log = openLog(tmp.dir);
    for (let i = 0; i < 2; i++) append(log, 2, { producerId: 5, sequence: i * 2 }); // offsets 0..3
    append(log, 1); // a plain record: offset 4
    log.close();
    // What the store wrote before snapshot files: the JSON alone.
    const legacy = path.join(tmp.dir, 'producer-state.json');
    fs.rmSync(path.join(tmp.dir, PRODUCER_SNAPSHOT_FILE), { force: true });
    fs.writeFileSync(legacy, JSON.stringify({ version: 1, offset: 4, producers: [[5, [[0, 1, 0], [2, 3, 2]]]] }));
    log = openLog(tmp.dir);
    const r = new ProducerStateStore(tmp.dir).recover(log);
    expect(r).toMatchObject({ tracking: true, snapshotUsed: true, replayedFrom: 4, replayedBatches: 0 });
    expect(r.table.check(5, 2, 2)).toEqual({ kind: 'duplicate', baseOffset: 2, count: 2 });
    expect(fs.existsSync(legacy)).toBe(false);
    expect(snapshotIn(path.join(tmp.dir, PRODUCER_SNAPSHOT_FILE))).toMatchObject({ version: 1, offset: 5 });
    log.close();
  });

  it('a log without any snapshot file (an older version) is replayed whole once', () => {
    const tmp = tmpDir('weir-pstate-');
    tmps.push(tmp);
    let log = openLog(tmp.dir);
    append(log, 2);
    append(log, 2, { producerId: 6, sequence: 0 });
    log.close();
    fs.rmSync(path.join(tmp.dir, PRODUCER_SNAPSHOT_FILE), { force: true });
    log = openLog(tmp.dir);
    const r = new ProducerStateStore(tmp.dir).recover(log);
    expect(r).toMatchObject({ tracking: true, snapshotUsed: false, replayedFrom: 0, replayedBatches: 1 });
    log.close();
  });
});
