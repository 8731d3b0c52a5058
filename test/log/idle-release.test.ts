/**
 * PartitionLog.releaseIdle (issue 21: idle partitions must be cheap): a quiet log gives back its
 * buffers and closes its files, and whatever comes next (a read of the active or a sealed segment,
 * an append, a sync, a clean close) reopens what it needs and sees every record. Open files are
 * counted from /proc/self/fd (links into the partition directory), not from the log's own word.
 */
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { PartitionLog, type LogOptions } from '../../src/log/index.js';
import { CLEAN_SHUTDOWN_FILE } from '../../src/log/internal.js';
import { INDEX_ENTRY_BYTES } from '../../src/log/sparse-index.js';
import { openFilesIn } from '../support/child-broker.js';
import { cleanupTmpDirs, expectBytes, filePath, logFiles, makeBatch, producerBodies, readAll, tmpDir, type ParsedRecord } from './helpers.js';

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

function fill(log: PartitionLog, batches: number, perBatch: number, valueSize = 64): Uint8Array[] {
  const bodies: Uint8Array[] = [];
  for (let i = 0; i < batches; i++) {
    const b = makeBatch(log.nextOffset, perBatch, valueSize);
    log.append(b.bytes, 0, b.bytes.length, b.count);
    bodies.push(...producerBodies(b.bytes));
    log.flush();
  }
  return bodies;
}

function expectAll(recs: ParsedRecord[], bodies: Uint8Array[]): void {
  expect(recs.length).toBe(bodies.length);
  recs.forEach((r, i) => {
    expect(r.offset).toBe(i);
    expect(r.valid).toBe(true);
    expectBytes(r.body, bodies[i]!);
  });
}

describe('PartitionLog.releaseIdle', () => {
  it('frees the buffers and closes every file; reads of sealed and active segments, appends and syncs reopen them, and see every record', () => {
    const dir = tmpDir();
    const log = open({ dir, segmentBytes: 4096 });
    const bodies = fill(log, 30, 5, 100);
    expect(logFiles(dir).length).toBeGreaterThan(3);
    expectAll(readAll(log, 0), bodies); // opens sealed segments for reading too
    expect(openFilesIn(dir)).toBeGreaterThan(2);
    expect(log.heldResources().bytes).toBeGreaterThan(0);

    log.releaseIdle();
    expect(openFilesIn(dir)).toBe(0);
    expect(log.heldResources()).toEqual({ bytes: 0, fds: 0 });

    expectAll(readAll(log, 0), bodies);
    expect(log.read(log.durableOffset - 1, 1 << 16, 10).count).toBe(1); // the active segment
    expect(log.offsetForTimestamp(0)).toBe(0);
    log.releaseIdle();
    expect(openFilesIn(dir)).toBe(0);

    bodies.push(...fill(log, 3, 5, 100));
    expect(log.heldResources().fds).toBeGreaterThan(0);
    log.releaseIdle();
    log.sync();
    expect(log.syncedOffset).toBe(log.durableOffset);
    log.releaseIdle();
    expect(openFilesIn(dir)).toBe(0);
    expectAll(readAll(log, 0), bodies);
  });

  it('does nothing while records are buffered (a flush is pending)', () => {
    const dir = tmpDir();
    const log = open({ dir });
    const b = makeBatch(0, 4);
    log.append(b.bytes, 0, b.bytes.length, 4);
    log.releaseIdle();
    expect(log.bufferedRecords).toBe(4);
    expect(log.flush()).toBe(4);
    log.releaseIdle();
    expect(openFilesIn(dir)).toBe(0);
    expectAll(readAll(log, 0), producerBodies(b.bytes));
  });

  it('a clean close after a release writes the pending index entries and syncs before the marker, and the next open trusts it', () => {
    const dir = tmpDir();
    const indexFile = filePath(dir, '00000000000000000000.index');
    // One index entry per record, one record per flush: 10 entries stay pending (batches of 64).
    const log = open({ dir, indexIntervalBytes: 100 });
    const bodies = fill(log, 10, 1, 256);
    expect(fs.statSync(indexFile).size).toBe(0);
    log.releaseIdle();
    expect(openFilesIn(dir)).toBe(0);
    log.close();
    expect(fs.existsSync(filePath(dir, CLEAN_SHUTDOWN_FILE))).toBe(true);
    expect(fs.statSync(indexFile).size).toBe(10 * INDEX_ENTRY_BYTES);

    const again = open({ dir, indexIntervalBytes: 100 });
    expect(again.recovery).toMatchObject({ cleanShutdown: true, nextOffset: 10, truncatedBytes: 0, rebuiltIndexes: [] });
    expectAll(readAll(again, 0), bodies);
    // Opened clean and released without a write: its close leaves the marker again.
    again.releaseIdle();
    again.close();
    expect(fs.existsSync(filePath(dir, CLEAN_SHUTDOWN_FILE))).toBe(true);
    const third = open({ dir, indexIntervalBytes: 100 });
    expect(third.recovery).toMatchObject({ cleanShutdown: true, nextOffset: 10, rebuiltIndexes: [] });
    expectAll(readAll(third, 0), bodies);
  });

  it("under 'interval' a sync falling due after the release reopens the segment and syncs it", () => {
    let t = 0;
    const dir = tmpDir();
    const log = open({ dir, fsync: { mode: 'interval', intervalMs: 100 }, now: () => t });
    const bodies = fill(log, 2, 10);
    log.releaseIdle();
    expect(log.syncedOffset).toBe(0);
    t = 100;
    expect(log.maybeSync()).toBe(true);
    expect(log.syncedOffset).toBe(20);
    log.releaseIdle();
    expect(openFilesIn(dir)).toBe(0);
    expectAll(readAll(log, 0), bodies);
  });
});
