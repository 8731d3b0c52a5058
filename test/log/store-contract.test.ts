/**
 * The partition store contract (src/log/store.ts), run against every implementation: the file store
 * PartitionLog and the memory store MemoryLog (after nats-server's testAllStoreAllPermutations).
 * Expected stored bytes are computed independently (stampBatch: the producer's bytes with offset,
 * timestamp and CRC stamped), so every read is checked byte for byte. A file store is also reopened
 * where the contract says what survives; a memory store does not outlive its object (fresh per test).
 * The last test runs one seeded workload against both and asserts that they answer alike.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { PartitionLog, type PartitionStore } from '../../src/log/index.js';
import { MemoryLog, type MemoryLogOptions } from '../../src/log/internal.js';
import { BatchBuilder } from '../../src/protocol/batch-builder.js';
import { readU32 } from '../../src/protocol/record.js';
import { flipByte, partitionRecords } from '../support/damage.js';
import { cleanupTmpDirs, expectBytes, parseStored, prng, readAll, readThrough, stampBatch, tmpDir } from './helpers.js';

/** A store under test: the contract plus the segment listing both implementations offer. */
type Store = PartitionStore & { segmentBaseOffsets(): number[] };
type Opts = Partial<MemoryLogOptions>;

interface StoreKind {
  open(opts?: Opts): Store;
  /** Open the same store again after close() or destroy(); null when it does not outlive its object. */
  reopen: ((store: Store) => Store) | null;
  /** Make the durable record at `offset` fail its checks (as a changed byte on disk would). */
  damage(store: Store, offset: number): void;
}

const opened: PartitionStore[] = [];
afterEach(() => {
  for (const s of opened.splice(0)) s.destroy();
  cleanupTmpDirs();
});

const fileDirs = new Map<PartitionStore, { dir: string; opts: Opts }>();
afterEach(() => fileDirs.clear());
function openFile(dir: string, opts: Opts): Store {
  const store = PartitionLog.open({ fsync: { mode: 'never' }, ...opts, dir });
  fileDirs.set(store, { dir, opts });
  opened.push(store);
  return store;
}

const kinds: Array<[string, StoreKind]> = [
  [
    'file',
    {
      open: (opts = {}) => openFile(tmpDir(), opts),
      reopen: (store) => {
        const { dir, opts } = fileDirs.get(store)!;
        return openFile(dir, opts);
      },
      damage: (store, offset) => {
        const rec = partitionRecords(fileDirs.get(store)!.dir).find((r) => r.offset === offset)!;
        flipByte(rec.file, rec.valueAt);
      },
    },
  ],
  [
    'memory',
    {
      open: (opts = {}) => {
        const store = new MemoryLog({ fsync: { mode: 'never' }, ...opts });
        opened.push(store);
        return store;
      },
      reopen: null,
      damage: (store, offset) => (store as MemoryLog).simulateDamage(offset, offset + 1),
    },
  ],
];

/** A batch whose size depends only on `count` and `valueSize`: fixed-width keys, no headers. */
function uniformBatch(first: number, count: number, valueSize = 40): Uint8Array {
  const b = new BatchBuilder();
  for (let i = first; i < first + count; i++) b.add(`k${String(i).padStart(6, '0')}`, new Uint8Array(valueSize).fill(i & 0xff));
  return b.take();
}

/** The stored records (bytes) a batch becomes at `base` with `timestamp`: the oracle. */
function storedRecords(batch: Uint8Array, base: number, timestamp: number): Uint8Array[] {
  const b = stampBatch(batch, base, timestamp);
  const out: Uint8Array[] = [];
  for (let at = 0; at < b.length; at += 4 + readU32(b, at)) out.push(b.subarray(at, at + 4 + readU32(b, at)));
  return out;
}

/** Append (and by default flush) a uniform batch; returns what it must be stored as. */
function put(store: Store, count: number, valueSize = 40, flush = true): Uint8Array[] {
  const batch = uniformBatch(store.nextOffset, count, valueSize);
  const { baseOffset, timestamp } = store.append(batch, 0, batch.length, count);
  if (flush) store.flush();
  return storedRecords(batch, baseOffset, timestamp);
}

function concat(parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** The error `fn` throws. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('did not throw');
}

describe.each(kinds)('PartitionStore contract: %s', (_name, kind) => {
  it('append, flush, read: consecutive offsets, the stamped bytes exactly, readable only after flush', () => {
    let t = 1_700_000_000_000;
    const store = kind.open({ now: () => t });
    expect(store.recovery).toMatchObject({ truncatedBytes: 0, truncatedAtOffset: null, damage: [] });
    expect([store.logStartOffset, store.durableOffset, store.nextOffset]).toEqual([0, 0, 0]);

    const b1 = uniformBatch(0, 10, 100);
    const src = b1.slice();
    expect(store.append(b1, 0, b1.length, 10)).toEqual({ baseOffset: 0, timestamp: t });
    expect(b1).toEqual(src); // the caller's bytes are not stamped
    expect([store.durableOffset, store.nextOffset]).toEqual([0, 10]);
    // Group commit: nothing is visible before the flush.
    expect(store.read(0, 1 << 20, 100)).toMatchObject({ count: 0, nextOffset: 0, lost: null });
    expect(store.offsetForTimestamp(0)).toBe(0);
    expect(() => store.read(1, 1 << 20, 100)).toThrow(expect.objectContaining({ code: 'OFFSET_OUT_OF_RANGE' }));
    expect(store.flush()).toBe(10);
    expect(store.flush()).toBe(10); // nothing buffered: nothing to do

    // A sub-range of a larger buffer.
    t += 5;
    const b2 = uniformBatch(10, 5, 3);
    const padded = new Uint8Array(b2.length + 20);
    padded.set(b2, 7);
    expect(store.append(padded, 7, 7 + b2.length, 5)).toEqual({ baseOffset: 10, timestamp: t });
    expect(store.flush()).toBe(15);

    const r = store.read(0, 1 << 20, 1000);
    expect(r).toMatchObject({ count: 15, nextOffset: 15, lost: null });
    expect(Buffer.isBuffer(r.records)).toBe(true);
    expect(r.records.byteOffset).toBe(0);
    expectBytes(r.records, concat([...storedRecords(b1, 0, t - 5), ...storedRecords(b2, 10, t)]));
    expect(parseStored(r.records).every((rec) => rec.valid)).toBe(true);
    expect(store.read(15, 1 << 20, 1000)).toMatchObject({ count: 0, nextOffset: 15, lost: null });
  });

  it('timestamps are log-append time, one per append, and never go backwards even if the clock does', () => {
    let t = 5000;
    const store = kind.open({ now: () => t });
    const b = uniformBatch(0, 2);
    expect(store.append(b, 0, b.length, 2).timestamp).toBe(5000);
    t = 1000;
    expect(store.append(b, 0, b.length, 2).timestamp).toBe(5000);
    t = 6000.7;
    expect(store.append(b, 0, b.length, 2).timestamp).toBe(6000);
    store.flush();
    expect(parseStored(store.read(0, 1 << 20, 100).records).map((r) => r.timestamp)).toEqual([5000, 5000, 5000, 5000, 6000, 6000]);
  });

  it('refuses a range that is not `count` whole records with LOG_BAD_ARGUMENT and stays unchanged', () => {
    const store = kind.open();
    const b = uniformBatch(0, 3);
    for (const [start, end, count] of [[0, b.length, 2], [0, b.length - 1, 3], [0, 0, 0], [0, b.length, 4], [-1, b.length, 3], [0, b.length + 1, 3]] as const) {
      expect(thrown(() => store.append(b, start, end, count))).toMatchObject({ code: 'LOG_BAD_ARGUMENT', retryable: false });
    }
    expect(store.nextOffset).toBe(0);
    const stored = put(store, 3);
    expect(store.durableOffset).toBe(3);
    expectBytes(store.read(0, 1 << 20, 10).records, concat(stored));
  });

  it('read limits: maxRecords, maxBytes, always one whole record however large, and into', () => {
    const store = kind.open();
    const stored = put(store, 20, 64);
    const size = stored[0]!.length; // uniform
    expect(store.read(0, 1 << 20, 3)).toMatchObject({ count: 3, nextOffset: 3 });
    expect(store.read(5, 3 * size - 1, 100)).toMatchObject({ count: 2, nextOffset: 7 });
    expect(store.read(5, 3 * size - 1, 100).records.length).toBe(2 * size);
    expect(store.read(5, 3 * size, 100).count).toBe(3);
    expect(store.read(5, 1, 100).count).toBe(1);
    expect(store.read(5, 0, 0).count).toBe(1);
    expect(store.read(19, 1 << 20, 100)).toMatchObject({ count: 1, nextOffset: 20 });
    // A record larger than maxBytes (and than any read-ahead) comes back whole.
    const huge = put(store, 1, 300_000);
    const tail = put(store, 3, 8);
    const r = store.read(20, 100, 100);
    expect(r.count).toBe(1);
    expectBytes(r.records, huge[0]!);
    expectBytes(store.read(21, 100, 100).records, tail[0]!);
    expect(readAll(store, 0, 50).map((rec) => rec.offset)).toEqual(Array.from({ length: 24 }, (_, i) => i));
    // Into a caller's buffer when the records fit: a view of it.
    const into = new Uint8Array(1 << 16);
    const v = store.read(2, 4 * size, 100, into);
    expect(v.count).toBe(4);
    expect(v.records.buffer).toBe(into.buffer);
    expectBytes(v.records, concat(stored.slice(2, 6)));
    const tooSmall = new Uint8Array(10);
    const w = store.read(2, 4 * size, 100, tooSmall);
    expect(w.records.buffer).not.toBe(tooSmall.buffer);
    expectBytes(w.records, concat(stored.slice(2, 6)));
  });

  it('a read ends at its segment; a batch never splits across segments; the next read continues', () => {
    const one = uniformBatch(0, 4).length;
    const store = kind.open({ segmentBytes: Math.floor(2.5 * one) }); // two batches per segment
    const stored: Uint8Array[] = [];
    for (let i = 0; i < 5; i++) stored.push(...put(store, 4, 40, i % 2 === 0));
    store.flush();
    expect(store.segmentBaseOffsets()).toEqual([0, 8, 16]);
    expect(store.read(0, 1 << 20, 1000)).toMatchObject({ count: 8, nextOffset: 8 });
    expect(store.read(6, 1 << 20, 1000)).toMatchObject({ count: 2, nextOffset: 8 });
    expect(store.read(8, 1 << 20, 1000)).toMatchObject({ count: 8, nextOffset: 16 });
    let all: Uint8Array = new Uint8Array(0);
    for (let at = 0; at < store.durableOffset; ) {
      const r = store.read(at, 1 << 20, 1000);
      all = concat([all, r.records]);
      at = r.nextOffset;
    }
    expectBytes(all, concat(stored));
    // A batch larger than a segment goes whole into a segment of its own.
    const big = put(store, 12);
    expect(store.segmentBaseOffsets()).toEqual([0, 8, 16, 20]);
    expectBytes(store.read(20, 1 << 20, 1000).records, concat(big));
  });

  it('refuses offsets outside [logStartOffset, durableOffset] with OFFSET_OUT_OF_RANGE and details', () => {
    const store = kind.open();
    put(store, 5);
    put(store, 5, 40, false); // buffered, not durable
    for (const bad of [6, 10, -1, 0.5, Number.NaN]) {
      expect(thrown(() => store.read(bad, 100, 1))).toMatchObject({ code: 'OFFSET_OUT_OF_RANGE', retryable: false, details: { start: 0, end: 5 } });
    }
    expect(thrown(() => store.read(6, 100, 1))).toMatchObject({ details: { offset: 6, start: 0, end: 5 } });
  });

  it('offsetForTimestamp: the first durable record at or after ts, across segments', () => {
    let t = 1_000_000;
    const one = uniformBatch(0, 3, 30).length;
    const store = kind.open({ now: () => t, segmentBytes: 4 * one });
    const tsOf: number[] = [];
    for (let i = 0; i < 60; i++) {
      t += i % 4 === 0 ? 0 : 10; // some equal timestamps in a row
      const b = uniformBatch(store.nextOffset, 3, 30);
      const { timestamp } = store.append(b, 0, b.length, 3);
      tsOf.push(timestamp, timestamp, timestamp);
      if (i % 5 === 4) store.flush();
    }
    expect(store.segmentBaseOffsets().length).toBeGreaterThan(3);
    const oracle = (q: number): number => {
      const i = tsOf.findIndex((x) => x >= q);
      return i < 0 ? store.durableOffset : i;
    };
    for (let q = tsOf[0]! - 20; q <= tsOf[tsOf.length - 1]! + 20; q += 3) expect(store.offsetForTimestamp(q)).toBe(oracle(q));
    expect(store.offsetForTimestamp(Number.MAX_SAFE_INTEGER)).toBe(180);
    // Buffered records are not found.
    t += 1000;
    put(store, 1, 40, false);
    expect(store.offsetForTimestamp(t)).toBe(180);
  });

  it('destroy drops buffered records, as a crash would; flushed ones stay', () => {
    const store = kind.open();
    const stored = put(store, 5);
    put(store, 5, 40, false);
    expect(store.nextOffset).toBe(10);
    store.destroy();
    store.destroy(); // idempotent
    expect([store.durableOffset, store.nextOffset]).toEqual([5, 5]);
    expect(thrown(() => store.read(0, 1, 1))).toMatchObject({ code: 'LOG_CLOSED' });
    if (kind.reopen === null) return;
    const again = kind.reopen(store);
    expect([again.durableOffset, again.nextOffset]).toEqual([5, 5]);
    expect(again.recovery.truncatedBytes).toBe(0);
    expectBytes(again.read(0, 1 << 20, 100).records, concat(stored));
  });

  it('close flushes and syncs, is idempotent, and every later call throws LOG_CLOSED', () => {
    const store = kind.open();
    const stored = [...put(store, 5), ...put(store, 4, 40, false)];
    store.close();
    store.close();
    expect([store.durableOffset, store.nextOffset, store.syncedOffset]).toEqual([9, 9, 9]);
    const b = uniformBatch(0, 1);
    for (const call of [() => store.read(0, 1, 1), () => store.append(b, 0, b.length, 1), () => store.flush(), () => store.offsetForTimestamp(0), () => store.applyRetention(), () => store.maybeSync()]) {
      expect(thrown(call)).toMatchObject({ code: 'LOG_CLOSED' });
    }
    store.releaseIdle(); // no-ops
    store.destroy();
    if (kind.reopen === null) return;
    const again = kind.reopen(store);
    expect([again.logStartOffset, again.durableOffset, again.nextOffset]).toEqual([0, 9, 9]);
    expectBytes(again.read(0, 1 << 20, 100).records, concat(stored));
    const more = put(again, 2);
    expectBytes(again.read(0, 1 << 20, 100).records, concat([...stored, ...more]));
  });

  it('a damaged record is reported lost, never served; reads before and after it go on', () => {
    const store = kind.open();
    const stored: Uint8Array[] = [];
    for (let i = 0; i < 4; i++) stored.push(...put(store, 5));
    kind.damage(store, 7);
    // A read from before it ends before it.
    const before = store.read(4, 1 << 20, 100);
    expect(before).toMatchObject({ count: 3, nextOffset: 7, lost: null });
    expectBytes(before.records, concat(stored.slice(4, 7)));
    expect(store.read(7, 1 << 20, 100)).toMatchObject({ count: 0, nextOffset: 8, lost: { from: 7, to: 8 } });
    expectBytes(store.read(8, 1 << 20, 100).records, concat(stored.slice(8)));
    const through = readThrough(store, 0);
    expect(through.lost).toEqual([{ from: 7, to: 8 }]);
    expect(through.records.map((r) => r.offset)).toEqual([...Array.from({ length: 7 }, (_, i) => i), ...Array.from({ length: 12 }, (_, i) => 8 + i)]);
    // Appends go on past it.
    const more = put(store, 2);
    expectBytes(store.read(20, 1 << 20, 100).records, concat(more));
  });

  it('retention by bytes: deletes whole oldest segments, never the active one, and moves logStartOffset', () => {
    const one = uniformBatch(0, 4, 60).length;
    const store = kind.open({ segmentBytes: 2 * one, retentionBytes: 5 * one });
    const stored: Uint8Array[] = [];
    for (let i = 0; i < 9; i++) stored.push(...put(store, 4, 60)); // segments of 2 batches: 4 full, 1 with one batch
    expect(store.segmentBaseOffsets()).toEqual([0, 8, 16, 24, 32]);
    // 9 batches stored, at most 5 kept: the two oldest segments (4 batches) go, 5 batches stay.
    expect(store.applyRetention()).toBe(2);
    expect(store.segmentBaseOffsets()).toEqual([16, 24, 32]);
    expect(store.logStartOffset).toBe(16);
    expect(thrown(() => store.read(15, 100, 1))).toMatchObject({ code: 'OFFSET_OUT_OF_RANGE', details: { offset: 15, start: 16, end: 36 } });
    expectBytes(concat(readAll(store, 16).map((r) => stored[r.offset]!)), concat(stored.slice(16)));
    expect(store.applyRetention()).toBe(0);
    // retentionBytes 0 keeps only the active segment.
    const tight = kind.open({ segmentBytes: 2 * one, retentionBytes: 0 });
    for (let i = 0; i < 5; i++) put(tight, 4, 60);
    expect(tight.applyRetention()).toBe(2);
    expect([tight.logStartOffset, tight.durableOffset]).toEqual([16, 20]);
    if (kind.reopen === null) return;
    store.close();
    expect(kind.reopen(store).logStartOffset).toBe(16);
  });

  it('retention by age: segments whose newest record is older than now - retentionMs; an expired active one is rolled first', () => {
    let t = 10_000;
    const one = uniformBatch(0, 3, 40).length;
    const store = kind.open({ segmentBytes: 2 * one, retentionMs: 1000, segmentMs: 1e12, now: () => t });
    for (let i = 0; i < 10; i++) {
      t += 100; // batch i at 10_100 + 100 i, two per segment
      put(store, 3);
    }
    expect(store.segmentBaseOffsets()).toEqual([0, 6, 12, 18, 24]);
    // now 11_500: keep segments with a record at or after 10_500 (batch 4 on, from segment 12).
    expect(store.applyRetention(11_500)).toBe(2);
    expect(store.logStartOffset).toBe(12);
    expect(store.offsetForTimestamp(0)).toBe(12);
    // Everything expired: the active segment is rolled first and goes too; an empty one is left.
    expect(store.applyRetention(1e15)).toBe(3);
    expect(store.segmentBaseOffsets()).toEqual([30]);
    expect([store.logStartOffset, store.durableOffset, store.nextOffset]).toEqual([30, 30, 30]);
    expect(store.read(30, 100, 100)).toMatchObject({ count: 0, nextOffset: 30 });
    put(store, 3);
    expect(store.read(30, 1 << 20, 100)).toMatchObject({ count: 3, nextOffset: 33 });
  });

  it('segmentMs rolls a busy active segment once its first record is that old, so age retention can trim it', () => {
    let t = 0;
    const store = kind.open({ retentionMs: 10_000, segmentMs: 1000, now: () => t });
    put(store, 2);
    t = 999;
    put(store, 2);
    expect(store.applyRetention(999)).toBe(0);
    expect(store.segmentBaseOffsets()).toEqual([0]);
    expect(store.applyRetention(1000)).toBe(0); // rolled, nothing old enough to delete
    expect(store.segmentBaseOffsets()).toEqual([0, 4]);
    t = 1500;
    put(store, 1);
    expect(store.applyRetention(11_000)).toBe(1); // the first segment's newest record (999) is older than 1000
    expect(store.logStartOffset).toBe(4);
  });

  it("fsync 'always': every flush is synced", () => {
    const store = kind.open({ fsync: { mode: 'always' } });
    put(store, 10);
    put(store, 10);
    expect([store.durableOffset, store.syncedOffset]).toEqual([20, 20]);
    expect(store.maybeSync(1e15)).toBe(false);
    expect(store.syncDueAt()).toBe(Infinity);
  });

  it("fsync 'interval': maybeSync syncs once intervalMs passed with something unsynced; syncDueAt says when", () => {
    let t = 0;
    const store = kind.open({ fsync: { mode: 'interval', intervalMs: 100 }, now: () => t });
    expect(store.maybeSync(500)).toBe(false); // nothing written
    expect(store.syncDueAt()).toBe(Infinity);
    put(store, 10);
    put(store, 10);
    expect(store.syncedOffset).toBe(0);
    expect(store.syncDueAt()).toBe(100);
    expect(store.maybeSync(99)).toBe(false);
    expect(store.maybeSync(100)).toBe(true);
    expect(store.syncedOffset).toBe(20);
    expect(store.syncDueAt()).toBe(Infinity);
    expect(store.maybeSync(1000)).toBe(false); // nothing new
    t = 130;
    put(store, 10);
    expect(store.syncDueAt()).toBe(200); // 100 ms after the last sync, not after the write
    expect(store.maybeSync(150)).toBe(false);
    t = 200;
    expect(store.maybeSync()).toBe(true); // the injected clock
    expect(store.syncedOffset).toBe(30);
    put(store, 1, 40, false);
    expect(store.syncDueAt()).toBe(Infinity); // buffered records are not due: they are not written
  });

  it("fsync 'never': only close() syncs", () => {
    const store = kind.open();
    put(store, 10);
    expect(store.maybeSync(1e15)).toBe(false);
    expect(store.syncDueAt()).toBe(Infinity);
    expect(store.syncedOffset).toBe(0);
    put(store, 5, 40, false);
    store.close();
    expect(store.syncedOffset).toBe(15);
  });

  it('releaseIdle gives back buffers and fds; the next call takes them again', () => {
    const store = kind.open();
    const stored = put(store, 5);
    store.releaseIdle();
    expect(store.heldResources()).toEqual({ bytes: 0, fds: 0 });
    expectBytes(store.read(0, 1 << 20, 100).records, concat(stored));
    store.releaseIdle();
    stored.push(...put(store, 3, 40, false));
    store.releaseIdle(); // records buffered: keeps them
    expect(store.heldResources().bytes).toBeGreaterThan(0);
    expect(store.flush()).toBe(8);
    store.releaseIdle();
    expect(store.heldResources()).toEqual({ bytes: 0, fds: 0 });
    stored.push(...put(store, 2));
    expectBytes(store.read(0, 1 << 20, 100).records, concat(stored));
  });

  it('rejects bad options with LOG_BAD_ARGUMENT', () => {
    for (const bad of [{ fsync: { mode: 'sometimes' } as never }, { segmentBytes: 0 }, { fsync: { mode: 'interval' as const, intervalMs: -1 } }, { retentionBytes: 1.5 }, { segmentMs: 0 }]) {
      expect(thrown(() => kind.open(bad))).toMatchObject({ code: 'LOG_BAD_ARGUMENT' });
    }
  });

  it('seeded random workload: appends, flushes, reads, retention and idle releases agree with the oracle', () => {
    for (const seed of [1, 2, 3]) {
      const rnd = prng(seed);
      let t = 1_000_000;
      const store = kind.open({ segmentBytes: 500 + Math.floor(rnd() * 5000), retentionBytes: 20_000, now: () => t });
      const stored: Uint8Array[] = [];
      for (let step = 0; step < 300; step++) {
        const x = rnd();
        t += Math.floor(rnd() * 3);
        if (x < 0.55) {
          stored.push(...put(store, 1 + Math.floor(rnd() * 8), 1 + Math.floor(rnd() * 300), false));
        } else if (x < 0.75) {
          expect(store.flush()).toBe(stored.length);
        } else if (x < 0.95) {
          if (store.durableOffset > store.logStartOffset) {
            const at = store.logStartOffset + Math.floor(rnd() * (store.durableOffset - store.logStartOffset));
            const r = store.read(at, Math.floor(rnd() * 2000), 1 + Math.floor(rnd() * 20));
            expect(r.count).toBeGreaterThan(0);
            expectBytes(r.records, concat(stored.slice(at, at + r.count)));
          }
        } else if (x < 0.98) {
          store.applyRetention(t);
        } else store.releaseIdle();
      }
      store.flush();
      expectBytes(concat(readAll(store, store.logStartOffset, 999).map((r) => stored[r.offset]!)), concat(stored.slice(store.logStartOffset)));
    }
  });
});

it('the memory store answers a seeded workload exactly as the file store does', () => {
  const [, file] = kinds[0]!;
  const [, memory] = kinds[1]!;
  for (const seed of [11, 12]) {
    const rnd = prng(seed);
    let t = 5_000_000;
    const opts: Opts = { segmentBytes: 400 + Math.floor(rnd() * 3000), retentionBytes: 15_000, retentionMs: 2000, now: () => t };
    const stores = [file.open(opts), memory.open(opts)];
    const answers = (f: (s: Store) => unknown): unknown[] => stores.map((s) => {
      try {
        const v = f(s);
        return typeof v === 'object' && v !== null && 'records' in v ? { ...v, records: Buffer.from((v as { records: Uint8Array }).records).toString('hex') } : v;
      } catch (err) {
        return { code: (err as { code?: unknown }).code, details: (err as { details?: unknown }).details };
      }
    });
    const same = (f: (s: Store) => unknown): void => {
      const [a, b] = answers(f);
      expect(b).toEqual(a);
    };
    for (let step = 0; step < 400; step++) {
      const x = rnd();
      t += Math.floor(rnd() * 40);
      if (x < 0.45) {
        const count = 1 + Math.floor(rnd() * 6);
        const batch = uniformBatch(step, count, Math.floor(rnd() * 200));
        same((s) => s.append(batch, 0, batch.length, count));
      } else if (x < 0.65) same((s) => s.flush());
      else if (x < 0.85) {
        const at = Math.floor(rnd() * (stores[0]!.durableOffset + 3)) - 1;
        const maxBytes = Math.floor(rnd() * 1500);
        const maxRecords = Math.floor(rnd() * 10);
        same((s) => s.read(at, maxBytes, maxRecords));
      } else if (x < 0.92) {
        const ts = t - Math.floor(rnd() * 3000);
        same((s) => s.offsetForTimestamp(ts));
      } else same((s) => s.applyRetention(t));
      same((s) => [s.logStartOffset, s.durableOffset, s.nextOffset, s.segmentBaseOffsets()]);
    }
  }
});
