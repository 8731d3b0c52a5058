/**
 * A real full disk: a tiny tmpfs mounted for the test (needs root / CAP_SYS_ADMIN; skipped otherwise).
 * Checks that ENOSPC surfaces as STORAGE_FULL (retryable), that the failed flush is rolled back whole
 * (files cut back, segments created by it removed, nextOffset back to durableOffset), that the log
 * stays readable and recovers clean, and that appends continue once space is freed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PartitionLog, type LogError, type LogOptions } from '../../src/log/index.js';
import { CLEAN_SHUTDOWN_FILE } from '../../src/log/internal.js';
import { canMount, tryMount, unmount } from '../support/tmpfs.js';
import { expectBytes, listDir, makeBatch, parseStored, producerBodies, readAll } from './helpers.js';

describe.skipIf(!canMount)('STORAGE_FULL on a real full disk (tiny tmpfs; skipped when mount(8) is not permitted)', () => {
  let mnt = '';
  let log: PartitionLog | null = null;
  beforeEach(() => {
    mnt = fs.mkdtempSync(os.tmpdir() + '/weir-log-tmpfs-');
    if (!tryMount(mnt, '256k')) throw new Error('mount failed after the probe succeeded');
  });
  afterEach(() => {
    log?.destroy();
    log = null;
    unmount(mnt);
    fs.rmdirSync(mnt);
  });

  /** Append+flush batches until a flush fails; returns the bodies that were flushed and the error. */
  function fillUntilFull(l: PartitionLog, perBatch: number): { bodies: Uint8Array[]; error: LogError } {
    const bodies: Uint8Array[] = [];
    for (let i = 0; i < 10_000; i++) {
      const b = makeBatch(l.nextOffset, perBatch, 100);
      l.append(b.bytes, 0, b.bytes.length, b.count);
      try {
        l.flush();
      } catch (err) {
        return { bodies, error: err as LogError };
      }
      bodies.push(...producerBodies(b.bytes));
    }
    throw new Error('the disk never filled');
  }

  function expectConsistent(l: PartitionLog, dir: string, bodies: Uint8Array[]): void {
    expect(l.nextOffset).toBe(bodies.length);
    expect(l.durableOffset).toBe(bodies.length);
    expect(l.bufferedBytes).toBe(0);
    // files hold exactly the durable records, and nothing else is left behind
    const bases = l.segmentBaseOffsets();
    const names = listDir(dir);
    expect(names).toEqual(bases.flatMap((b) => [String(b).padStart(20, '0') + '.index', String(b).padStart(20, '0') + '.log']).sort());
    let total = 0;
    for (const b of bases) {
      const bytes = new Uint8Array(fs.readFileSync(path.join(dir, String(b).padStart(20, '0') + '.log')));
      const recs = parseStored(bytes);
      if (recs.length > 0) expect(recs[0]!.offset).toBe(b);
      total += recs.length;
    }
    expect(total).toBe(bodies.length);
    const recs = readAll(l, 0, 4096);
    expect(recs.length).toBe(bodies.length);
    recs.forEach((r, i) => {
      expect(r.offset).toBe(i);
      expect(r.valid).toBe(true);
      expectBytes(r.body, bodies[i]!);
    });
  }

  for (const [name, opts] of [
    ['one segment, fsync always', { segmentBytes: 1 << 20, fsync: { mode: 'always' } }],
    ['rolling segments, fsync never', { segmentBytes: 9000, fsync: { mode: 'never' }, indexIntervalBytes: 512 }],
  ] as Array<[string, Partial<LogOptions>]>) {
    it(`ENOSPC → STORAGE_FULL, flush rolled back whole, log readable, appends continue after space is freed (${name})`, () => {
      const filler = path.join(mnt, 'filler');
      fs.writeFileSync(filler, Buffer.alloc(64 * 1024));
      const dir = path.join(mnt, 'p0');
      log = PartitionLog.open({ dir, fsync: { mode: 'never' }, ...opts });
      const { bodies, error } = fillUntilFull(log, 13);
      expect(bodies.length).toBeGreaterThan(0);
      expect(error).toMatchObject({ code: 'STORAGE_FULL', retryable: true });
      expect(log.failed).toBeNull();
      expectConsistent(log, dir, bodies);
      // still full: a retry fails the same way and changes nothing
      const b = makeBatch(log.nextOffset, 13, 100);
      log.append(b.bytes, 0, b.bytes.length, b.count);
      expect(() => log!.flush()).toThrow(expect.objectContaining({ code: 'STORAGE_FULL' }));
      expectConsistent(log, dir, bodies);
      // free space, retry: it goes through at the same offsets
      fs.unlinkSync(filler);
      expect(log.append(b.bytes, 0, b.bytes.length, b.count).baseOffset).toBe(bodies.length);
      expect(log.flush()).toBe(bodies.length + 13);
      bodies.push(...producerBodies(b.bytes));
      expectConsistent(log, dir, bodies);
      log.close();
      expect(fs.existsSync(path.join(dir, CLEAN_SHUTDOWN_FILE))).toBe(true);
      fs.unlinkSync(path.join(dir, CLEAN_SHUTDOWN_FILE)); // force the full crash-recovery scan
      log = PartitionLog.open({ dir, fsync: { mode: 'never' }, ...opts });
      expect(log.recovery).toMatchObject({ truncatedBytes: 0, truncatedAtOffset: null, rebuiltIndexes: [], nextOffset: bodies.length });
      expectConsistent(log, dir, bodies);
    });
  }
});
