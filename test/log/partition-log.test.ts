/**
 * The file store's own behaviour: its files, segment naming, index, write-buffer reads and reopen.
 * What every partition store must do (offsets, timestamps, read limits, range errors, fsync
 * bookkeeping, retention) is in store-contract.test.ts, run against this log and MemoryLog.
 */
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { PartitionLog, type LogOptions } from '../../src/log/index.js';
import { readU32 } from '../../src/protocol/record.js';
import { INDEX_ENTRY_BYTES } from '../../src/log/sparse-index.js';
import {
  cleanupTmpDirs,
  filePath,
  listDir,
  logFiles,
  makeBatch,
  parseStored,
  prng,
  producerBodies,
  readAll,
  tmpDir,
  type ParsedRecord,
  expectBytes,
} from './helpers.js';

afterEach(cleanupTmpDirs);

const opened: PartitionLog[] = [];
afterEach(() => {
  for (const l of opened.splice(0)) l.destroy();
});

function open(opts: Partial<LogOptions> & { dir: string }): PartitionLog {
  const log = PartitionLog.open({ fsync: { mode: 'never' }, ...opts });
  opened.push(log);
  return log;
}

/** Append `batches` batches of `perBatch` messages; returns every producer body in offset order. */
function fill(log: PartitionLog, batches: number, perBatch: number, valueSize = 64, flushEvery = 1): Uint8Array[] {
  const bodies: Uint8Array[] = [];
  for (let i = 0; i < batches; i++) {
    const b = makeBatch(log.nextOffset, perBatch, valueSize);
    log.append(b.bytes, 0, b.bytes.length, b.count);
    bodies.push(...producerBodies(b.bytes));
    if ((i + 1) % flushEvery === 0) log.flush();
  }
  log.flush();
  return bodies;
}

function expectSequence(recs: ParsedRecord[], from: number, bodies: Uint8Array[]): void {
  expect(recs.length).toBe(bodies.length - from);
  let prevTs = -1;
  recs.forEach((r, i) => {
    expect(r.offset).toBe(from + i);
    expect(r.valid).toBe(true);
    expect(r.timestamp).toBeGreaterThanOrEqual(prevTs);
    prevTs = r.timestamp;
    expectBytes(r.body, bodies[from + i]!);
  });
}

describe('PartitionLog: append / flush / read', () => {
  it('round trips: consecutive offsets, non-decreasing timestamps, valid CRCs, same bytes', () => {
    let t = 1_700_000_000_000;
    const log = open({ dir: tmpDir(), now: () => t });
    expect(log.recovery).toMatchObject({ segments: 1, nextOffset: 0, logStartOffset: 0, truncatedBytes: 0, truncatedAtOffset: null });
    const b1 = makeBatch(0, 10, 100);
    const src = b1.bytes.slice();
    const r1 = log.append(b1.bytes, 0, b1.bytes.length, 10);
    expect(r1).toEqual({ baseOffset: 0, timestamp: 1_700_000_000_000 });
    expect(b1.bytes).toEqual(src); // the caller's bytes are not stamped
    expect(log.nextOffset).toBe(10);
    expect(log.durableOffset).toBe(0);
    expect(log.bufferedRecords).toBe(10);
    expect(log.read(0, 1 << 20, 100)).toMatchObject({ count: 0, nextOffset: 0 }); // not durable yet
    expect(log.flush()).toBe(10);
    expect(log.bufferedBytes).toBe(0);
    t += 5;

    // a sub-range of a larger buffer
    const b2 = makeBatch(10, 5, 3);
    const padded = new Uint8Array(b2.bytes.length + 20);
    padded.set(b2.bytes, 7);
    expect(log.append(padded, 7, 7 + b2.bytes.length, 5).baseOffset).toBe(10);
    log.flush();

    const all = log.read(0, 1 << 20, 1000);
    expect(all.count).toBe(15);
    expect(all.nextOffset).toBe(15);
    expect(Buffer.isBuffer(all.records)).toBe(true);
    expect(all.records.byteOffset).toBe(0);
    expectSequence(parseStored(all.records), 0, [...producerBodies(b1.bytes), ...producerBodies(b2.bytes)]);
    const ts = parseStored(all.records).map((r) => r.timestamp);
    expect(new Set(ts.slice(0, 10)).size).toBe(1); // one timestamp per append
    expect(ts[10]).toBe(1_700_000_000_005);
    // the file holds exactly the same bytes
    expect(new Uint8Array(fs.readFileSync(filePath(log['dir' as never] as string, '00000000000000000000.log')))).toEqual(
      new Uint8Array(all.records),
    );
  });

  it('reads across segment boundaries; batches never split; segments are named by base offset', () => {
    const dir = tmpDir();
    const log = open({ dir, segmentBytes: 2000, indexIntervalBytes: 256 });
    const bodies = fill(log, 60, 7, 40, 3); // ~7*90 B per batch, 3 batches per flush
    expect(log.durableOffset).toBe(420);
    const bases = log.segmentBaseOffsets();
    expect(bases.length).toBeGreaterThan(10);
    expect(bases.every((b) => b % 7 === 0)).toBe(true); // rolls only between batches
    expect(logFiles(dir)).toEqual(bases.map((b) => String(b).padStart(20, '0') + '.log'));
    for (const name of logFiles(dir)) {
      const bytes = new Uint8Array(fs.readFileSync(filePath(dir, name)));
      expect(bytes.length).toBeLessThanOrEqual(2000);
      expect(parseStored(bytes)[0]!.offset).toBe(Number(name.slice(0, 20)));
    }
    // sequential, small reads
    expectSequence(readAll(log, 0, 300, 1000), 0, bodies);
    // every offset by random access (index + scan, no sequential hint)
    const rnd = prng(7);
    const order = Array.from({ length: 420 }, (_, i) => i).sort(() => rnd() - 0.5);
    for (const o of order) {
      const r = log.read(o, 1, 1);
      expect(r.count).toBe(1);
      const [rec] = parseStored(r.records);
      expect(rec!.offset).toBe(o);
      expect(rec!.body).toEqual(bodies[o]);
    }
  });

  it('a single batch larger than segmentBytes goes whole into an empty segment', () => {
    const dir = tmpDir();
    const log = open({ dir, segmentBytes: 1000 });
    const small = makeBatch(0, 2, 10);
    log.append(small.bytes, 0, small.bytes.length, 2);
    const big = makeBatch(2, 40, 100); // ~5.8 KB
    log.append(big.bytes, 0, big.bytes.length, 40);
    log.append(small.bytes, 0, small.bytes.length, 2);
    log.flush();
    expect(log.segmentBaseOffsets()).toEqual([0, 2, 42]);
    expect(fs.statSync(filePath(dir, '00000000000000000002.log')).size).toBe(big.bytes.length);
    expect(readAll(log, 0).map((r) => r.offset)).toEqual(Array.from({ length: 44 }, (_, i) => i));

    // first batch of a fresh log, then two huge ones in one flush: one segment each, none empty
    const fresh = open({ dir: tmpDir(), segmentBytes: 1000 });
    for (let i = 0; i < 3; i++) fresh.append(big.bytes, 0, big.bytes.length, 40);
    fresh.flush();
    expect(fresh.segmentBaseOffsets()).toEqual([0, 40, 80]);
    expect(readAll(fresh, 0).length).toBe(120);
  });

  it('honours maxBytes and maxRecords, and always returns at least one whole record', () => {
    const log = open({ dir: tmpDir(), indexIntervalBytes: 64 });
    const bodies = fill(log, 1, 20, 64);
    const sizeOf = (o: number) => 4 + readU32(log.read(o, 1, 1).records, 0);
    expect(log.read(0, 1 << 20, 3).count).toBe(3);
    const two = sizeOf(5) + sizeOf(6);
    expect(log.read(5, two + sizeOf(7) - 1, 100)).toMatchObject({ count: 2, nextOffset: 7 });
    expect(log.read(5, two + sizeOf(7) - 1, 100).records.length).toBe(two);
    expect(log.read(5, two, 100).count).toBe(2);
    expect(log.read(5, two + sizeOf(7), 100).count).toBe(3);
    expect(log.read(5, 1, 100).count).toBe(1);
    expect(log.read(5, 0, 0).count).toBe(1);
    expect(log.read(19, 1 << 20, 100)).toMatchObject({ count: 1, nextOffset: 20 });
    expect(log.read(20, 1 << 20, 100)).toMatchObject({ count: 0, nextOffset: 20 });
    // a record larger than maxBytes (and than the scratch buffer) still comes back whole
    const huge = makeBatch(20, 1, 300_000);
    log.append(huge.bytes, 0, huge.bytes.length, 1);
    const tail = makeBatch(21, 3, 8);
    log.append(tail.bytes, 0, tail.bytes.length, 3);
    log.flush();
    const r = log.read(20, 100, 100);
    expect(r.count).toBe(1);
    expectBytes(parseStored(r.records)[0]!.body, producerBodies(huge.bytes)[0]!);
    expect(log.read(21, 100, 100).count).toBe(1); // located past the huge record via the index
    expectSequence(readAll(log, 0, 50), 0, [...bodies, ...producerBodies(huge.bytes), ...producerBodies(tail.bytes)]);
  });

  it('offsetForTimestamp finds the first record at or after ts (index + scan, across segments)', () => {
    let t = 1_000_000;
    const log = open({ dir: tmpDir(), now: () => t, segmentBytes: 1500, indexIntervalBytes: 200 });
    const tsOf: number[] = [];
    for (let i = 0; i < 80; i++) {
      t += i % 4 === 0 ? 0 : 10; // some equal timestamps in a row
      const b = makeBatch(log.nextOffset, 3, 30);
      const { timestamp } = log.append(b.bytes, 0, b.bytes.length, 3);
      tsOf.push(timestamp, timestamp, timestamp);
      if (i % 5 === 4) log.flush();
    }
    log.flush();
    expect(log.segmentBaseOffsets().length).toBeGreaterThan(3);
    const oracle = (q: number) => {
      const i = tsOf.findIndex((x) => x >= q);
      return i < 0 ? log.durableOffset : i;
    };
    for (let q = tsOf[0]! - 20; q <= tsOf[tsOf.length - 1]! + 20; q += 3) expect(log.offsetForTimestamp(q)).toBe(oracle(q));
    expect(log.offsetForTimestamp(0)).toBe(0);
    expect(log.offsetForTimestamp(Number.MAX_SAFE_INTEGER)).toBe(240);
    // buffered records are not visible
    t += 1000;
    const b = makeBatch(240, 1);
    log.append(b.bytes, 0, b.bytes.length, 1);
    expect(log.offsetForTimestamp(t)).toBe(240);
  });

  it('close then reopen gives the same nextOffset and data, and appends continue', () => {
    const dir = tmpDir();
    const log = open({ dir, segmentBytes: 3000 });
    const bodies = fill(log, 20, 10, 50);
    const b = makeBatch(200, 4);
    log.append(b.bytes, 0, b.bytes.length, 4); // close() flushes it
    bodies.push(...producerBodies(b.bytes));
    const lastTs = log.append(makeBatch(204, 1).bytes, 0, makeBatch(204, 1).bytes.length, 1).timestamp;
    bodies.push(...producerBodies(makeBatch(204, 1).bytes));
    log.close();
    log.close(); // idempotent
    expect(() => log.read(0, 1, 1)).toThrow(expect.objectContaining({ code: 'LOG_CLOSED' }));
    expect(() => log.append(b.bytes, 0, b.bytes.length, 4)).toThrow(expect.objectContaining({ code: 'LOG_CLOSED' }));

    const again = open({ dir, segmentBytes: 3000, now: () => 0 });
    expect(again.recovery).toMatchObject({ nextOffset: 205, logStartOffset: 0, truncatedBytes: 0, truncatedAtOffset: null, rebuiltIndexes: [] });
    expect(again.nextOffset).toBe(205);
    expect(again.durableOffset).toBe(205);
    expectSequence(readAll(again, 0, 777), 0, bodies);
    const more = makeBatch(205, 3);
    const r = again.append(more.bytes, 0, more.bytes.length, 3);
    expect(r).toEqual({ baseOffset: 205, timestamp: lastTs }); // the clock says 0: time does not go back
    again.flush();
    expectSequence(readAll(again, 0), 0, [...bodies, ...producerBodies(more.bytes)]);
  });

  it('destroy drops buffered records like a crash; flushed ones survive without close', () => {
    const dir = tmpDir();
    const log = open({ dir });
    const bodies = fill(log, 3, 5);
    const b = makeBatch(15, 5);
    log.append(b.bytes, 0, b.bytes.length, 5);
    log.destroy();
    const again = open({ dir });
    expect(again.nextOffset).toBe(15);
    expect(again.recovery.truncatedBytes).toBe(0);
    expectSequence(readAll(again, 0), 0, bodies);
  });

  it("writes the active segment's index entries in batches; a crash leaves the rest to recovery, a close writes them", () => {
    const dir = tmpDir();
    const indexFile = filePath(dir, '00000000000000000000.index');
    // Records of ≈ 300 bytes against a 100-byte interval: one index entry per record, one record per flush.
    const log = open({ dir, indexIntervalBytes: 100 });
    const bodies = fill(log, 100, 1, 256);
    expect(fs.statSync(indexFile).size).toBe(64 * INDEX_ENTRY_BYTES); // one batch of 64 written, 36 pending
    expectSequence(readAll(log, 0), 0, bodies); // reads use the in-memory index
    expectSequence(readAll(log, 90), 90, bodies);
    log.destroy(); // a crash: the 36 pending entries never reach the file

    const again = open({ dir, indexIntervalBytes: 100 });
    expect(again.recovery).toMatchObject({ nextOffset: 100, truncatedBytes: 0, rebuiltIndexes: ['00000000000000000000.index'] });
    expect(fs.statSync(indexFile).size).toBe(100 * INDEX_ENTRY_BYTES);
    expectSequence(readAll(again, 70), 70, bodies);
    bodies.push(...fill(again, 10, 1, 256));
    again.close(); // writes the 10 pending entries before the clean-shutdown marker
    expect(fs.statSync(indexFile).size).toBe(110 * INDEX_ENTRY_BYTES);

    const third = open({ dir, indexIntervalBytes: 100 });
    expect(third.recovery).toMatchObject({ nextOffset: 110, cleanShutdown: true, rebuiltIndexes: [] });
    expectSequence(readAll(third, 0), 0, bodies);
  });

  it('reads of what the last flush wrote come from the write buffer until the next append', () => {
    const dir = tmpDir();
    const log = open({ dir });
    const bodies = fill(log, 1, 5, 40);
    const b = makeBatch(5, 3, 40);
    log.append(b.bytes, 0, b.bytes.length, b.count);
    log.flush();
    bodies.push(...producerBodies(b.bytes));
    // Scribble over the second flush's bytes on disk, behind the log's back.
    const file = filePath(dir, '00000000000000000000.log');
    const size = fs.statSync(file).size;
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, new Uint8Array(b.bytes.length).fill(0xee), 0, b.bytes.length, size - b.bytes.length + 16);
    fs.closeSync(fd);
    // Still the flushed bytes: served from memory, the same bytes the file had.
    expectSequence(parseStored(log.read(5, 1 << 20, 100).records), 5, bodies);
    expectSequence(parseStored(log.read(0, 1 << 20, 5).records), 0, bodies.slice(0, 5)); // starts before the last flush: from the file
    // The next append overwrites the buffer: the same read now goes to the file and sees the damage.
    const c = makeBatch(8, 1, 40);
    log.append(c.bytes, 0, c.bytes.length, c.count);
    // It is checked, never served: the damaged offsets are reported lost.
    const again = log.read(5, 1 << 20, 100);
    expect(again).toMatchObject({ count: 0, lost: { from: 5, to: 8 }, nextOffset: 8 });
  });

  it('seeded random workload: appends, flushes, reads and reopens agree with an oracle', () => {
    for (const seed of [1, 2, 3]) {
      const rnd = prng(seed);
      const dir = tmpDir();
      const opts = { dir, segmentBytes: 500 + Math.floor(rnd() * 5000), indexIntervalBytes: 1 + Math.floor(rnd() * 600), writeBufferBytes: 256 };
      let log = open(opts);
      const bodies: Uint8Array[] = [];
      for (let step = 0; step < 300; step++) {
        const x = rnd();
        if (x < 0.6) {
          const b = makeBatch(log.nextOffset, 1 + Math.floor(rnd() * 8), Math.floor(rnd() * 300));
          log.append(b.bytes, 0, b.bytes.length, b.count);
          bodies.push(...producerBodies(b.bytes));
        } else if (x < 0.8) {
          log.flush();
        } else if (x < 0.97) {
          if (log.durableOffset > 0) {
            const at = Math.floor(rnd() * log.durableOffset);
            const r = log.read(at, Math.floor(rnd() * 2000), 1 + Math.floor(rnd() * 20));
            expect(r.count).toBeGreaterThan(0);
            expectSequence(parseStored(r.records), at, bodies.slice(0, at + r.count));
          }
        } else {
          log.close();
          log = open(opts);
          expect(log.recovery.truncatedBytes).toBe(0);
          expect(log.nextOffset).toBe(bodies.length);
        }
      }
      log.flush();
      expectSequence(readAll(log, 0, 999), 0, bodies);
    }
  });
});

describe('PartitionLog: fsync policies', () => {
  it("'never' leaves syncing to sync() and close()", () => {
    const dir = tmpDir();
    const log = open({ dir });
    fill(log, 1, 10);
    expect(log.maybeSync(1e12)).toBe(false);
    expect(log.syncedOffset).toBe(0);
    log.sync();
    expect(log.syncedOffset).toBe(10);
    fill(log, 1, 10);
    log.close();
    expect(open({ dir }).nextOffset).toBe(20);
  });

});

describe('PartitionLog: retention', () => {
  it('by bytes: deletes whole oldest segments, never the active one, and moves logStartOffset', () => {
    const dir = tmpDir();
    const log = open({ dir, segmentBytes: 1000, retentionBytes: 3000 });
    const bodies = fill(log, 40, 4, 60); // ~400 B per batch → ~2 batches per segment
    const before = log.segmentBaseOffsets();
    const sizes = logFiles(dir).map((n) => fs.statSync(filePath(dir, n)).size);
    let total = sizes.reduce((a, b) => a + b, 0);
    let expectDeleted = 0;
    while (total > 3000 && expectDeleted < sizes.length - 1) total -= sizes[expectDeleted++]!;
    expect(log.applyRetention()).toBe(expectDeleted);
    expect(log.segmentBaseOffsets()).toEqual(before.slice(expectDeleted));
    expect(log.logStartOffset).toBe(before[expectDeleted]);
    expect(log.sizeBytes).toBeLessThanOrEqual(3000);
    expect(logFiles(dir).length).toBe(before.length - expectDeleted);
    expect(listDir(dir).length).toBe(2 * (before.length - expectDeleted)); // indexes went too
    expect(() => log.read(log.logStartOffset - 1, 100, 1)).toThrow(
      expect.objectContaining({ code: 'OFFSET_OUT_OF_RANGE', details: { offset: log.logStartOffset - 1, start: log.logStartOffset, end: 160 } }),
    );
    expectSequence(readAll(log, log.logStartOffset), log.logStartOffset, bodies);
    expect(log.applyRetention()).toBe(0);
    log.close();
    const again = open({ dir });
    expect(again.logStartOffset).toBe(before[expectDeleted]);
    expect(again.recovery.logStartOffset).toBe(before[expectDeleted]);
  });

});
