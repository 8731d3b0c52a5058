/**
 * verifyPartitionDir: the offline check of a partition directory. Real logs written by
 * PartitionLog, damaged on disk the ways a failing disk or an operator would (a changed byte, a
 * length field, a zeroed block, a cut last segment, a deleted segment or index, a wrong index entry);
 * the report must name exactly the damaged positions and offsets, agree with what the broker's own
 * recovery and reads find, and never change a byte, a size or an mtime of the directory.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { PartitionLog } from '../../src/log/index.js';
import { CLEAN_SHUTDOWN_FILE, SYNCED_BELOW_FILE, INDEX_ENTRY_BYTES, segmentName } from '../../src/log/internal.js';
import { verifyPartitionDir, type PartitionVerdict } from '../../src/log/verify.js';
import { BatchBuilder } from '../../src/protocol/batch-builder.js';
import { F_KEY_LENGTH, F_VALUE_LENGTH, RECORD_HEADER_BYTES, readU32 } from '../../src/protocol/record.js';
import { cleanupTmpDirs, filePath, logFiles, makeBatch, parseStored, readThrough, stampBatch, tmpDir, type ParsedRecord } from './helpers.js';
import { flipByte, overwrite } from '../support/damage.js';
import { mulberry32 } from '../support/seeded-prng.js';

afterEach(cleanupTmpDirs);
const bases: string[] = [];
afterAll(() => {
  for (const d of bases) fs.rmSync(d, { recursive: true, force: true });
});
const opened: PartitionLog[] = [];
afterEach(() => {
  for (const l of opened.splice(0)) l.destroy();
});

const OPTS = { segmentBytes: 24_000, indexIntervalBytes: 300, fsync: { mode: 'never' } } as const;
const RECORDS = 400;

/** A cleanly closed log of RECORDS records (keys, headers, a few large values) over several segments. */
function build(): string {
  const dir = fs.mkdtempSync(os.tmpdir() + '/weir-verify-');
  bases.push(dir);
  let t = 1_700_000_000_000;
  const log = PartitionLog.open({ dir, ...OPTS, now: () => (t += 3) });
  const rnd = mulberry32(11);
  for (let i = 0; i < RECORDS; ) {
    const b = new BatchBuilder();
    const n = Math.min(rnd.int(1, 8), RECORDS - i);
    for (let k = 0; k < n; k++, i++) {
      const size = i % 97 === 50 ? rnd.int(9_000, 15_000) : rnd.int(20, 220);
      const value = new Uint8Array(size);
      for (let j = 0; j < size; j++) value[j] = (i * 13 + j) & 0xff;
      b.add(`key-${i}`, value, { trace: `t${i}` });
    }
    const bytes = b.take();
    log.append(bytes, 0, bytes.length, n);
    if (rnd.int(0, 2) === 0) log.flush();
  }
  log.close();
  return dir;
}

const base = build();

function copy(): string {
  const dir = tmpDir();
  fs.cpSync(base, dir, { recursive: true });
  return dir;
}

interface Seg {
  name: string;
  file: string;
  base: number;
  records: ParsedRecord[];
}

function segs(dir: string): Seg[] {
  return logFiles(dir).map((name) => {
    const file = filePath(dir, name);
    return { name, file, base: Number(name.slice(0, 20)), records: parseStored(new Uint8Array(fs.readFileSync(file))) };
  });
}

/** Every file of a directory tree with its size, mtime and bytes: what a read-only check must leave alone. */
function snapshot(dir: string): Record<string, { size: number; mtimeMs: number; bytes: string }> {
  const out: Record<string, { size: number; mtimeMs: number; bytes: string }> = {};
  const walk = (d: string): void => {
    for (const name of fs.readdirSync(d)) {
      const p = path.join(d, name);
      const st = fs.statSync(p);
      out[path.relative(dir, p)] = { size: st.size, mtimeMs: st.mtimeMs, bytes: st.isFile() ? fs.readFileSync(p).toString('base64') : '' };
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

/** Verify and check it changed nothing. */
function verify(dir: string): PartitionVerdict {
  const before = snapshot(dir);
  const v = verifyPartitionDir(dir);
  expect(snapshot(dir)).toEqual(before);
  return v;
}

function open(dir: string): PartitionLog {
  const log = PartitionLog.open({ dir, ...OPTS });
  opened.push(log);
  return log;
}

describe('verifyPartitionDir', () => {
  const intact = segs(base);

  it('reports a clean log as clean: its segments, records, offsets and timestamps as stored', () => {
    expect(intact.length).toBeGreaterThanOrEqual(4);
    const v = verify(copy());
    expect(v.ok).toBe(true);
    expect(v.cleanShutdown).toBe(true);
    expect(v.records).toBe(RECORDS);
    expect(v.logStartOffset).toBe(0);
    expect(v.nextOffset).toBe(RECORDS);
    expect(v.damage).toEqual([]);
    expect(v.tornTail).toBeNull();
    expect(v.gaps).toEqual([]);
    expect(v.indexProblems).toEqual([]);
    expect(v.segments).toEqual(
      intact.map((s) => ({
        file: s.name,
        base: s.base,
        bytes: fs.statSync(s.file).size,
        records: s.records.length,
        firstOffset: s.records[0]!.offset,
        lastOffset: s.records[s.records.length - 1]!.offset,
        firstTimestamp: s.records[0]!.timestamp,
        lastTimestamp: s.records[s.records.length - 1]!.timestamp,
        indexEntries: fs.statSync(s.file.replace(/\.log$/, '.index')).size / INDEX_ENTRY_BYTES,
      })),
    );
  });

  it('a changed value byte in a sealed segment: exactly that record, new; once the broker has read it, known', () => {
    const dir = copy();
    const s = segs(dir)[1]!;
    const r = s.records[7]!;
    const valueAt = r.at + RECORD_HEADER_BYTES + (readU32(new Uint8Array(fs.readFileSync(s.file)), r.at + F_KEY_LENGTH) | 0);
    flipByte(s.file, valueAt + 3, 0x04);
    const v = verify(dir);
    expect(v.ok).toBe(false);
    expect(v.damage).toEqual([{ segment: s.base, file: s.name, position: r.at, resumePosition: r.at + r.size, bytes: r.size, from: r.offset, to: r.offset + 1, reason: 'CORRUPT', known: false }]);
    expect(v.lostOffsets).toBe(1);
    expect(v.records).toBe(RECORDS - 1);
    expect(v.nextOffset).toBe(RECORDS);
    expect(v.indexProblems).toEqual([]); // an entry at the damaged record is explained by the damage
    // The broker finds the same range and records it; verify then says it is known.
    const log = open(dir);
    expect(readThrough(log, 0).lost).toEqual([{ from: r.offset, to: r.offset + 1 }]);
    log.close();
    const again = verify(dir);
    expect(again.damage).toEqual([{ ...v.damage[0]!, known: true }]);
    expect(again.damageRecord.entries).toEqual([expect.objectContaining({ kind: 'damaged', segment: s.base, position: r.at, from: r.offset, to: r.offset + 1 })]);
    expect(again.damageRecord.notFoundAgain).toEqual([]);
  });

  it('a corrupt length field in a sealed segment: that record only (its length runs past the end: TORN)', () => {
    const dir = copy();
    const s = segs(dir)[0]!;
    const r = s.records[10]!;
    overwrite(s.file, r.at + 3, 1, 0x7f); // a length of ~2 GiB
    const v = verify(dir);
    expect(v.damage).toEqual([{ segment: s.base, file: s.name, position: r.at, resumePosition: r.at + r.size, bytes: r.size, from: r.offset, to: r.offset + 1, reason: 'TORN', known: false }]);
    expect(v.tornTail).toBeNull();
    const log = open(dir);
    expect(readThrough(log, 0).lost).toEqual([{ from: r.offset, to: r.offset + 1 }]);
  });

  it('a zeroed 8 KiB block in the middle of a sealed segment: one region, from the first record it touched to the first whole one after it', () => {
    const dir = copy();
    const s = segs(dir).find((x, i, all) => i < all.length - 1 && fs.statSync(x.file).size > 16_000)!;
    const size = fs.statSync(s.file).size;
    const at = Math.floor(size / 2) - 4096;
    overwrite(s.file, at, 8192, 0);
    const hit = s.records.filter((r) => r.at < at + 8192 && r.at + r.size > at);
    const after = s.records.find((r) => r.at >= at + 8192)!;
    const v = verify(dir);
    expect(v.damage).toEqual([
      { segment: s.base, file: s.name, position: hit[0]!.at, resumePosition: after.at, bytes: after.at - hit[0]!.at, from: hit[0]!.offset, to: after.offset, reason: 'CORRUPT', known: false },
    ]);
    expect(v.lostOffsets).toBe(hit.length);
    const log = open(dir);
    expect(readThrough(log, 0).lost).toEqual([{ from: hit[0]!.offset, to: after.offset }]);
  });

  it('the last segment cut inside a record: a torn tail recovery would cut, the log continuing at that offset', () => {
    const dir = copy();
    const last = segs(dir).at(-1)!;
    const r = last.records.at(-1)!;
    fs.truncateSync(last.file, r.at + 20);
    const v = verify(dir);
    expect(v.damage).toEqual([]);
    expect(v.tornTail).toEqual({ segment: last.base, file: last.name, position: r.at, bytes: 20, offset: r.offset, reason: 'TORN', removesSegments: [] });
    expect(v.nextOffset).toBe(r.offset);
    expect(v.ok).toBe(false);
    expect(v.indexProblems).toEqual([]);
    const log = open(dir);
    expect(log.nextOffset).toBe(r.offset);
    expect(log.recovery.truncatedBytes).toBe(20);
  });

  it('a deleted middle segment: a gap with exactly its offsets; an index left without its .log is an orphan', () => {
    const dir = copy();
    const all = segs(dir);
    const gone = all[2]!;
    fs.unlinkSync(gone.file);
    const v = verify(dir);
    expect(v.gaps).toEqual([{ segment: all[1]!.base, file: all[1]!.name, from: gone.base, to: all[3]!.base, known: false }]);
    expect(v.lostOffsets).toBe(all[3]!.base - gone.base);
    expect(v.damage).toEqual([]);
    expect(v.orphanIndexes).toEqual([segmentName(gone.base, '.index')]);
    expect(v.ok).toBe(false);
    // The broker reports the same loss; verify then knows it.
    const log = open(dir);
    expect(log.damagedRanges()).toEqual([expect.objectContaining({ kind: 'damaged', from: gone.base, to: all[3]!.base })]);
    log.close();
    expect(verify(dir).gaps[0]!.known).toBe(true);
  });

  it('index problems: a missing .index, an entry beyond EOF, one off a record start, entries out of order', () => {
    const dir = copy();
    const all = segs(dir);
    fs.unlinkSync(all[0]!.file.replace(/\.log$/, '.index'));
    const ix = all[1]!.file.replace(/\.log$/, '.index');
    const bytes = new Uint8Array(fs.readFileSync(ix));
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    expect(words.length / 4).toBeGreaterThanOrEqual(6);
    words[2 * 4 + 1]! += 1; // entry 2: one byte past its record's start
    const e4 = words.slice(4 * 4, 5 * 4); // swap entries 4 and 5
    words.copyWithin(4 * 4, 5 * 4, 6 * 4);
    words.set(e4, 5 * 4);
    const lastEntry = words.length / 4 - 1;
    words[lastEntry * 4 + 1] = 1 << 30; // beyond EOF
    fs.writeFileSync(ix, bytes);
    const v = verify(dir);
    expect(v.damage).toEqual([]);
    expect(v.ok).toBe(false);
    const of = (file: string): Array<[number | null, string]> => v.indexProblems.filter((p) => p.file === file).map((p) => [p.entry, p.problem]);
    expect(of(segmentName(all[0]!.base, '.index'))).toEqual([[null, expect.stringMatching(/^missing/)]]);
    const problems = of(segmentName(all[1]!.base, '.index'));
    expect(problems).toEqual(
      expect.arrayContaining([
        [2, expect.stringMatching(/no record starts there/)],
        [5, expect.stringMatching(/^not ascending/)],
        [lastEntry, expect.stringMatching(/beyond the end of the \.log/)],
      ]),
    );
    expect(problems.every(([e]) => e === 2 || e === 4 || e === 5 || e === lastEntry)).toBe(true);
  });

  it('after an unclean stop, a cut sealed segment past the recovery point is a torn tail that takes the later segments with it, as recovery does', () => {
    const dir = copy();
    const all = segs(dir);
    fs.unlinkSync(filePath(dir, CLEAN_SHUTDOWN_FILE));
    fs.writeFileSync(filePath(dir, SYNCED_BELOW_FILE), String(all[1]!.base));
    const r = all[1]!.records.at(-2)!;
    fs.truncateSync(all[1]!.file, r.at + 40);
    const v = verify(dir);
    expect(v.cleanShutdown).toBe(false);
    expect(v.recoveryPoint).toBe(all[1]!.base);
    expect(v.tornTail).toEqual({ segment: all[1]!.base, file: all[1]!.name, position: r.at, bytes: 40, offset: r.offset, reason: 'TORN', removesSegments: all.slice(2).map((s) => s.name) });
    expect(v.nextOffset).toBe(r.offset);
    expect(v.gaps).toEqual([]);
    const log = open(dir);
    expect(log.nextOffset).toBe(r.offset);
    expect(log.segmentBaseOffsets()).toEqual([all[0]!.base, all[1]!.base]);
  });

  it('the same cut with a clean-shutdown marker is damage up to the next segment: the later segments stay', () => {
    const dir = copy();
    const all = segs(dir);
    const r = all[1]!.records.at(-2)!;
    fs.truncateSync(all[1]!.file, r.at + 40);
    const v = verify(dir);
    expect(v.tornTail).toBeNull();
    expect(v.damage).toEqual([{ segment: all[1]!.base, file: all[1]!.name, position: r.at, resumePosition: r.at + 40, bytes: 40, from: r.offset, to: all[2]!.base, reason: 'TORN', known: false }]);
    expect(v.gaps).toEqual([]);
    expect(v.nextOffset).toBe(RECORDS);
  });

  it('segments that overlap: reported with both offsets (recovery refuses such a partition: LOG_CORRUPT)', () => {
    const dir = tmpDir();
    fs.writeFileSync(filePath(dir, segmentName(0, '.log')), stampBatch(makeBatch(0, 10).bytes, 0, 1_700_000_000_000));
    fs.writeFileSync(filePath(dir, segmentName(6, '.log')), stampBatch(makeBatch(6, 10).bytes, 6, 1_700_000_000_001));
    const v = verify(dir);
    expect(v.overlaps).toEqual([{ segment: 0, file: segmentName(0, '.log'), endOffset: 10, nextBase: 6 }]);
    expect(v.damage).toEqual([]);
    expect(v.ok).toBe(false);
    expect(v.cleanShutdown).toBe(false);
    expect(() => PartitionLog.open({ dir, ...OPTS })).toThrow(expect.objectContaining({ code: 'LOG_CORRUPT' }));
  });

  it('seeded random damage over many runs: the damaged offsets reported are exactly the records whose bytes changed, as the broker reads them', () => {
    const all = segs(base);
    for (let seed = 1; seed <= 30; seed++) {
      const rnd = mulberry32(seed * 104_729);
      const dir = copy();
      const changed = new Set<number>();
      for (let d = 0; d < 1 + rnd.int(0, 1); d++) {
        // Sealed segments only: a bad last record of the last segment is a torn tail (tested above).
        const s = all[rnd.int(0, all.length - 2)]!;
        const file = filePath(dir, s.name);
        const bytes = new Uint8Array(fs.readFileSync(file));
        const before = bytes.slice();
        const r = s.records[rnd.int(0, s.records.length - 1)]!;
        switch (rnd.int(0, 3)) {
          case 0: // a value byte
            bytes[r.at + RECORD_HEADER_BYTES + (readU32(bytes, r.at + F_KEY_LENGTH) | 0) + rnd.int(0, readU32(bytes, r.at + F_VALUE_LENGTH) - 1)]! ^= 1 << rnd.int(0, 7);
            break;
          case 1: // a length field
            bytes[r.at + rnd.int(0, 3)]! ^= 1 << rnd.int(0, 7);
            break;
          case 2: {
            const at = Math.min(bytes.length - 64, r.at + rnd.int(0, r.size - 1));
            for (let i = 0; i < 64; i++) bytes[at + i] = rnd.int(0, 255);
            break;
          }
          default: {
            const at = Math.max(0, r.at + rnd.int(0, r.size - 1));
            bytes.fill(0, at, Math.min(bytes.length, at + 8192));
          }
        }
        fs.writeFileSync(file, bytes);
        for (const x of s.records) if (before.subarray(x.at, x.at + x.size).some((v, i) => v !== bytes[x.at + i])) changed.add(x.offset);
      }
      const expected = [...changed].sort((a, b) => a - b);
      const v = verifyPartitionDir(dir);
      const lost = (rs: ReadonlyArray<{ from: number; to: number }>): number[] => rs.flatMap((x) => Array.from({ length: x.to - x.from }, (_, i) => x.from + i)).sort((a, b) => a - b);
      expect(lost(v.damage), `seed ${seed}`).toEqual(expected);
      expect(v.records, `seed ${seed}`).toBe(RECORDS - expected.length);
      expect(v.tornTail, `seed ${seed}`).toBeNull();
      expect(v.gaps, `seed ${seed}`).toEqual([]);
      // The broker's reads find the same offsets lost.
      const log = open(dir);
      expect(lost(readThrough(log, 0).lost), `seed ${seed}`).toEqual(expected);
      log.destroy();
    }
  });
});
