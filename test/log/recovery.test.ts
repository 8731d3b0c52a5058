import diagnostics_channel from 'node:diagnostics_channel';
import fs from 'node:fs';
import os from 'node:os';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { PartitionLog, type LogOptions } from '../../src/log/index.js';
import { CLEAN_SHUTDOWN_FILE, INDEX_ENTRY_BYTES, SYNCED_BELOW_FILE } from '../../src/log/internal.js';
import {
  cleanupTmpDirs,
  filePath,
  listDir,
  logFiles,
  makeBatch,
  parseStored,
  producerBodies,
  readAll,
  readThrough,
  stampBatch,
  tmpDir,
  valueStart,
  type ParsedRecord,
  expectBytes,
} from './helpers.js';

afterEach(cleanupTmpDirs);
const bases: string[] = [];
afterAll(() => {
  for (const d of bases) fs.rmSync(d, { recursive: true, force: true });
});
const opened: PartitionLog[] = [];
afterEach(() => {
  for (const l of opened.splice(0)) l.destroy();
});

const OPTS = { segmentBytes: 4000, indexIntervalBytes: 300, fsync: { mode: 'never' } } as const;

function open(dir: string, extra: Partial<LogOptions> = {}): PartitionLog {
  const log = PartitionLog.open({ dir, ...OPTS, ...extra });
  opened.push(log);
  return log;
}

/** A closed log of 30 batches × 5 records (~several segments). Returns dir and producer bodies. */
function build(): { dir: string; bodies: Uint8Array[] } {
  const dir = fs.mkdtempSync(os.tmpdir() + '/weir-log-');
  bases.push(dir); // kept for the whole file; copies are per test
  const log = PartitionLog.open({ dir, ...OPTS, now: () => 1_700_000_000_000 });
  const bodies: Uint8Array[] = [];
  for (let i = 0; i < 30; i++) {
    const b = makeBatch(log.nextOffset, 5, 50 + (i % 7) * 10);
    log.append(b.bytes, 0, b.bytes.length, b.count);
    bodies.push(...producerBodies(b.bytes));
    if (i % 2 === 1) log.flush();
  }
  log.close();
  return { dir, bodies };
}

function copyOf(dir: string): string {
  const to = tmpDir();
  fs.cpSync(dir, to, { recursive: true });
  return to;
}

function lastLog(dir: string): string {
  const logs = logFiles(dir);
  return filePath(dir, logs[logs.length - 1]!);
}
function indexOf(logPath: string): string {
  return logPath.replace(/\.log$/, '.index');
}
function records(file: string): ParsedRecord[] {
  return parseStored(new Uint8Array(fs.readFileSync(file)));
}

/** Every offset below n reads back with its body, except `lost` ones, reported lost (as ranges). */
function expectAllBut(log: PartitionLog, bodies: Uint8Array[], n: number, lost: number[]): void {
  const { records: recs, lost: ranges } = readThrough(log, 0, 500);
  const expected = Array.from({ length: n }, (_, i) => i).filter((i) => !lost.includes(i));
  expect(recs.map((r) => r.offset)).toEqual(expected);
  for (const r of recs) {
    expect(r.valid).toBe(true);
    expectBytes(r.body, bodies[r.offset]!);
  }
  expect(ranges.flatMap((x) => Array.from({ length: x.to - x.from }, (_, i) => x.from + i))).toEqual(lost);
}

function expectPrefix(log: PartitionLog, bodies: Uint8Array[], n: number): void {
  const recs = readAll(log, 0, 500);
  expect(recs.length).toBe(n);
  recs.forEach((r, i) => {
    expect(r.offset).toBe(i);
    expect(r.valid).toBe(true);
    expectBytes(r.body, bodies[i]!);
  });
}

describe('recovery: last segment tail', () => {
  const base = build();

  it('a clean directory recovers with nothing to report', () => {
    expect(logFiles(base.dir).length).toBeGreaterThan(2);
    const log = open(copyOf(base.dir));
    expect(log.recovery).toEqual({
      segments: logFiles(base.dir).length,
      truncatedBytes: 0,
      truncatedAtOffset: null,
      rebuiltIndexes: [],
      removedFiles: [],
      cleanShutdown: true,
      nextOffset: 150,
      logStartOffset: 0,
      damage: [],
    });
    expectPrefix(log, base.bodies, 150);
  });

  it('torn tail, byte by byte: truncates to the last whole record, reports it, appends continue', () => {
    const recs = records(lastLog(base.dir));
    const lastSize = recs[recs.length - 1]!.size;
    const lastTwo = lastSize + recs[recs.length - 2]!.size;
    for (let cut = 1; cut <= lastTwo; cut++) {
      const dir = copyOf(base.dir);
      const file = lastLog(dir);
      const size = fs.statSync(file).size;
      fs.truncateSync(file, size - cut);
      if (cut % 2 === 0) fs.unlinkSync(filePath(dir, CLEAN_SHUTDOWN_FILE)); // both recovery paths
      const lost = cut <= lastSize ? 1 : 2;
      const keptEnd = recs[recs.length - lost]!.at;
      const log = open(dir);
      expect(log.recovery.cleanShutdown).toBe(cut % 2 === 1);
      if (cut === lastSize || cut === lastTwo) {
        // a cut at a record boundary leaves nothing torn to report (the index still pointed past EOF)
        expect(log.recovery).toMatchObject({ truncatedAtOffset: null, truncatedBytes: 0, rebuiltIndexes: [expect.any(String)] });
      } else {
        expect(log.recovery.truncatedAtOffset).toBe(150 - lost);
        expect(log.recovery.truncatedBytes).toBe(size - cut - keptEnd);
      }
      expect(log.nextOffset).toBe(150 - lost);
      expect(fs.statSync(file).size).toBe(keptEnd);
      if (cut === 1 || cut === 2 || cut === lastTwo) {
        expectPrefix(log, base.bodies, 150 - lost);
        const b = makeBatch(0, 3);
        expect(log.append(b.bytes, 0, b.bytes.length, 3).baseOffset).toBe(150 - lost);
        log.close();
        const again = open(dir);
        expect(again.recovery.truncatedBytes).toBe(0);
        expect(again.nextOffset).toBe(153 - lost);
        expect(readAll(again, 0).map((r) => r.offset)).toEqual(Array.from({ length: 153 - lost }, (_, i) => i));
      }
      log.destroy();
    }
  });

  it('a flipped byte in the last record is caught by the CRC and truncated', () => {
    const dir = copyOf(base.dir);
    const file = lastLog(dir);
    const bytes = new Uint8Array(fs.readFileSync(file));
    const recs = parseStored(bytes);
    const last = recs[recs.length - 1]!;
    bytes[valueStart(bytes, last.at) + 3] ^= 0x10;
    fs.writeFileSync(file, bytes);
    const log = open(dir);
    expect(log.recovery.truncatedAtOffset).toBe(149);
    expect(log.recovery.truncatedBytes).toBe(last.size);
    expectPrefix(log, base.bodies, 149);
  });

  it('after a crash (no clean-shutdown marker) a corrupt record in the last segment is isolated: the records after it are kept, its offset reported lost, none reused', () => {
    const dir = copyOf(base.dir);
    fs.unlinkSync(filePath(dir, CLEAN_SHUTDOWN_FILE));
    const file = lastLog(dir);
    const bytes = new Uint8Array(fs.readFileSync(file));
    const recs = parseStored(bytes);
    const victim = recs[2]!;
    bytes[victim.at + 20] ^= 0x01; // timestamp high byte
    fs.writeFileSync(file, bytes);
    const log = open(dir);
    expect(log.recovery.cleanShutdown).toBe(false);
    expect(log.recovery).toMatchObject({ truncatedAtOffset: null, truncatedBytes: 0, nextOffset: 150 });
    const range = { kind: 'damaged', segment: recs[0]!.offset, position: victim.at, resumePosition: victim.at + victim.size, bytes: victim.size, from: victim.offset, to: victim.offset + 1, reason: 'CORRUPT', detectedBy: 'recovery' };
    expect(log.recovery.damage).toEqual([expect.objectContaining(range)]);
    expect(log.damagedRanges()).toEqual([expect.objectContaining(range)]);
    expectAllBut(log, base.bodies, 150, [victim.offset]);
    // New records continue after the kept ones: no offset is reused.
    const b = makeBatch(0, 2);
    expect(log.append(b.bytes, 0, b.bytes.length, 2).baseOffset).toBe(150);
    log.close();
    // The damage record survives the restart; the region is known, not reported again.
    const again = open(dir);
    expect(again.recovery.damage).toEqual([]);
    expect(again.damagedRanges()).toEqual([expect.objectContaining(range)]);
    expect(readThrough(again, 0, 500).lost).toEqual([{ from: victim.offset, to: victim.offset + 1 }]);
  });

  it('after a clean shutdown the last segment is trusted up to its last index entry (only the tail is scanned)', () => {
    const dir = copyOf(base.dir);
    const file = lastLog(dir);
    const bytes = new Uint8Array(fs.readFileSync(file));
    bytes[parseStored(bytes)[2]!.at + 20] ^= 0x01;
    fs.writeFileSync(file, bytes);
    expect(open(dir).recovery).toMatchObject({ cleanShutdown: true, truncatedBytes: 0 });
  });

  it("a hand-over (close({ handOver }) under fsync 'never', then open({ handedOver })) leaves no marker and opens as after a clean shutdown; only a handed-over open trusts it", () => {
    const dir = copyOf(base.dir);
    fs.unlinkSync(filePath(dir, CLEAN_SHUTDOWN_FILE));
    const writer = open(dir);
    const b = makeBatch(writer.nextOffset, 5, 40);
    writer.append(b.bytes, 0, b.bytes.length, b.count);
    writer.close({ handOver: true }); // flushed, no fdatasync, no marker
    expect(listDir(dir)).not.toContain(CLEAN_SHUTDOWN_FILE);
    // Damage before the last index entry is not looked at by a handed-over open (as after a clean
    // shutdown: the previous writer of this process wrote those bytes)…
    const file = lastLog(dir);
    const bytes = new Uint8Array(fs.readFileSync(file));
    bytes[parseStored(bytes)[2]!.at + 20] ^= 0x01;
    fs.writeFileSync(file, bytes);
    const reader = open(dir, { handedOver: true });
    expect(reader.recovery).toMatchObject({ cleanShutdown: true, truncatedBytes: 0 });
    expect(reader.nextOffset).toBe(155);
    reader.destroy();
    // …while any other open validates the whole last segment, as after a crash.
    expect(open(dir).recovery).toMatchObject({ cleanShutdown: false, damage: [expect.objectContaining({ kind: 'damaged', from: 2 + Number(logFiles(dir).at(-1)!.slice(0, 20)) })] });
  });

  it("a handed-over open still validates past the last index entry: a torn tail is cut", () => {
    const dir = copyOf(base.dir);
    const writer = open(dir);
    writer.close({ handOver: true });
    const file = lastLog(dir);
    fs.truncateSync(file, fs.statSync(file).size - 3);
    const log = open(dir, { handedOver: true });
    expect(log.recovery).toMatchObject({ cleanShutdown: true, truncatedAtOffset: 149 });
    expect(log.nextOffset).toBe(149);
  });

  it("close({ handOver }) under fsync 'interval' or 'always' syncs and leaves the marker as a plain close does", () => {
    for (const fsync of [{ mode: 'interval', intervalMs: 1000 }, { mode: 'always' }] as const) {
      const dir = copyOf(base.dir);
      const log = open(dir, { fsync });
      log.close({ handOver: true });
      expect(listDir(dir)).toContain(CLEAN_SHUTDOWN_FILE);
      expect(log.syncedOffset).toBe(log.durableOffset);
    }
  });

  it('a crash without damage: the whole last segment is validated and nothing is reported', () => {
    const dir = copyOf(base.dir);
    fs.unlinkSync(filePath(dir, CLEAN_SHUTDOWN_FILE));
    const log = open(dir);
    expect(log.recovery).toMatchObject({ cleanShutdown: false, truncatedBytes: 0, truncatedAtOffset: null, rebuiltIndexes: [] });
    expectPrefix(log, base.bodies, 150);
  });

  it('a garbage length field (a huge record) is a torn tail, not an allocation', () => {
    const dir = copyOf(base.dir);
    const file = lastLog(dir);
    const bytes = new Uint8Array(fs.readFileSync(file));
    const recs = parseStored(bytes);
    bytes[recs[recs.length - 1]!.at + 3] = 0x7f;
    fs.writeFileSync(file, bytes);
    expect(open(dir).recovery.truncatedAtOffset).toBe(149);
  });

  it('an out-of-sequence (but valid) record at the tail is truncated', () => {
    const dir = copyOf(base.dir);
    const file = lastLog(dir);
    const stray = stampBatch(makeBatch(0, 1).bytes, 7, 1_700_000_000_000);
    fs.appendFileSync(file, stray);
    const log = open(dir);
    expect(log.recovery).toMatchObject({ truncatedAtOffset: 150, truncatedBytes: stray.length, nextOffset: 150 });
    expectPrefix(log, base.bodies, 150);
  });

  it('publishes weir:wal:truncated', () => {
    const dir = copyOf(base.dir);
    fs.truncateSync(lastLog(dir), fs.statSync(lastLog(dir)).size - 1);
    const seen: unknown[] = [];
    const fn = (m: unknown) => seen.push(m);
    diagnostics_channel.subscribe('weir:wal:truncated', fn);
    try {
      open(dir);
    } finally {
      diagnostics_channel.unsubscribe('weir:wal:truncated', fn);
    }
    expect(seen).toEqual([expect.objectContaining({ dir, truncatedAtOffset: 149 })]);
  });

  it('a zero-length last segment is fine', () => {
    const dir = copyOf(base.dir);
    const file = lastLog(dir);
    const baseOffset = Number(file.split('/').pop()!.slice(0, 20));
    fs.truncateSync(file, 0);
    const log = open(dir);
    expect(log.nextOffset).toBe(baseOffset);
    expect(log.recovery.rebuiltIndexes.length).toBe(1); // its index pointed past EOF
    expectPrefix(log, base.bodies, baseOffset);
    const b = makeBatch(0, 2);
    expect(log.append(b.bytes, 0, b.bytes.length, 2).baseOffset).toBe(baseOffset);
    log.flush();
    expect(readAll(log, 0).length).toBe(baseOffset + 2);
  });

  it('an empty directory starts at offset 0', () => {
    const dir = tmpDir();
    const log = open(dir);
    expect(log.recovery).toMatchObject({ segments: 1, nextOffset: 0, logStartOffset: 0, truncatedBytes: 0 });
    expect(listDir(dir)).toEqual(['00000000000000000000.index', '00000000000000000000.log']);
    expect(log.recovery.cleanShutdown).toBe(false);
    log.close();
    expect(listDir(dir)).toContain(CLEAN_SHUTDOWN_FILE);
    expect(open(dir).recovery.cleanShutdown).toBe(true);
    expect(listDir(dir)).not.toContain(CLEAN_SHUTDOWN_FILE); // removed at open
    expect(open(dir + '/nested/p0').nextOffset).toBe(0); // created if missing
  });
});

describe('recovery: indexes', () => {
  const base = build();

  it('a deleted .index (last and sealed) is rebuilt identical, and reads stay correct', () => {
    const dir = copyOf(base.dir);
    const logs = logFiles(dir);
    const victims = [logs[0]!, logs[logs.length - 1]!].map((n) => indexOf(filePath(dir, n)));
    const originals = victims.map((f) => fs.readFileSync(f));
    for (const f of victims) fs.unlinkSync(f);
    const log = open(dir);
    expect(log.recovery.rebuiltIndexes.sort()).toEqual(victims.map((f) => f.split('/').pop()).sort());
    expect(log.recovery.truncatedBytes).toBe(0);
    victims.forEach((f, i) => expect(fs.readFileSync(f)).toEqual(originals[i]));
    expectPrefix(log, base.bodies, 150);
    for (let o = 0; o < 150; o += 7) expect(parseStored(log.read(o, 1, 1).records)[0]!.offset).toBe(o);
  });

  it('garbage entries beyond EOF and a torn entry in the last index are repaired', () => {
    const dir = copyOf(base.dir);
    const idx = indexOf(lastLog(dir));
    const original = fs.readFileSync(idx);
    const junk = Buffer.alloc(2 * INDEX_ENTRY_BYTES + 5);
    junk.writeUInt32LE(1000, 0); // rel offset
    junk.writeUInt32LE(9_000_000, 4); // position far beyond EOF
    junk.writeUInt32LE(2000, 16);
    junk.writeUInt32LE(9_500_000, 20);
    fs.appendFileSync(idx, junk);
    const log = open(dir);
    expect(log.recovery.rebuiltIndexes).toEqual([idx.split('/').pop()]);
    expect(log.recovery.truncatedBytes).toBe(0);
    expect(fs.readFileSync(idx)).toEqual(original);
    expectPrefix(log, base.bodies, 150);
  });

  it('last-index entries pointing at the wrong record are dropped and regenerated', () => {
    const dir = copyOf(base.dir);
    const idx = indexOf(lastLog(dir));
    const original = fs.readFileSync(idx);
    expect(original.length / INDEX_ENTRY_BYTES).toBeGreaterThan(2);
    const bad = Buffer.from(original);
    const last = bad.length - INDEX_ENTRY_BYTES;
    bad.writeUInt32LE(bad.readUInt32LE(last) + 1, last); // claims the next offset at that position
    fs.writeFileSync(idx, bad);
    const log = open(dir);
    expect(log.recovery.rebuiltIndexes).toEqual([idx.split('/').pop()]);
    expect(fs.readFileSync(idx)).toEqual(original);
    expectPrefix(log, base.bodies, 150);
  });

  it('an index missing its last entries (crash between data and index write) is completed', () => {
    const dir = copyOf(base.dir);
    const idx = indexOf(lastLog(dir));
    const original = fs.readFileSync(idx);
    fs.truncateSync(idx, INDEX_ENTRY_BYTES);
    const log = open(dir);
    expect(log.recovery.rebuiltIndexes).toEqual([idx.split('/').pop()]);
    expect(fs.readFileSync(idx)).toEqual(original);
  });

  it('an invalid sealed index (not ascending / beyond EOF / torn) is rebuilt', () => {
    for (const damage of ['swap', 'beyond', 'torn', 'empty'] as const) {
      const dir = copyOf(base.dir);
      const idx = indexOf(filePath(dir, logFiles(dir)[1]!));
      const original = fs.readFileSync(idx);
      const bad = Buffer.from(original);
      if (damage === 'swap') bad.copy(bad, 16, 32, 48);
      if (damage === 'beyond') bad.writeUInt32LE(10_000_000, bad.length - 12);
      fs.writeFileSync(idx, damage === 'torn' ? bad.subarray(0, bad.length - 3) : damage === 'empty' ? Buffer.alloc(0) : bad);
      const log = open(dir);
      expect(log.recovery.rebuiltIndexes).toEqual([idx.split('/').pop()]);
      expect(fs.readFileSync(idx)).toEqual(original);
      expectPrefix(log, base.bodies, 150);
      log.destroy();
    }
  });

  it('orphan .index files are removed', () => {
    const dir = copyOf(base.dir);
    fs.writeFileSync(filePath(dir, '00000000000000099999.index'), Buffer.alloc(16));
    fs.writeFileSync(filePath(dir, 'unrelated.txt'), 'keep me');
    const log = open(dir);
    expect(log.recovery.removedFiles).toEqual(['00000000000000099999.index']);
    expect(fs.existsSync(filePath(dir, 'unrelated.txt'))).toBe(true);
    expectPrefix(log, base.bodies, 150);
  });
});

describe('recovery: damage in sealed segments is isolated and reported, never a refusal to open', () => {
  const base = build();

  it('a corrupt record in a sealed segment whose index must be rebuilt: that offset is lost, every other record reads back', () => {
    const dir = copyOf(base.dir);
    const file = filePath(dir, logFiles(dir)[0]!);
    const bytes = new Uint8Array(fs.readFileSync(file));
    const victim = parseStored(bytes)[3]!;
    bytes[victim.at + 40] ^= 0xff;
    fs.writeFileSync(file, bytes);
    fs.unlinkSync(indexOf(file));
    const log = open(dir);
    expect(log.recovery.damage).toEqual([expect.objectContaining({ kind: 'damaged', segment: 0, position: victim.at, from: 3, to: 4, reason: 'CORRUPT' })]);
    expectAllBut(log, base.bodies, 150, [3]);
  });

  it('a sealed segment whose tail is gone (torn): its last records are lost up to the next segment, the rest reads back', () => {
    const dir = copyOf(base.dir);
    const names = logFiles(dir);
    const file = filePath(dir, names[1]!);
    const recs = records(file);
    fs.truncateSync(file, fs.statSync(file).size - 2);
    const log = open(dir);
    const last = recs[recs.length - 1]!.offset;
    expect(log.recovery.damage).toEqual([expect.objectContaining({ kind: 'damaged', segment: Number(names[1]!.slice(0, 20)), from: last, to: last + 1 })]);
    expectAllBut(log, base.bodies, 150, [last]);
  });

  it('a missing middle segment: its offsets are reported lost, the segments around it read back', () => {
    const dir = copyOf(base.dir);
    const names = logFiles(dir);
    const victim = filePath(dir, names[1]!);
    fs.unlinkSync(victim);
    fs.unlinkSync(indexOf(victim));
    const log = open(dir);
    const from = Number(names[1]!.slice(0, 20));
    const to = Number(names[2]!.slice(0, 20));
    expect(log.recovery.damage).toEqual([expect.objectContaining({ kind: 'damaged', segment: 0, from, to, reason: 'TORN' })]);
    expectAllBut(log, base.bodies, 150, Array.from({ length: to - from }, (_, i) => from + i));
  });
});

describe('recovery point: sealed segments are synced in the background after a roll', () => {
  const base = build();
  const baseOf = (name: string): number => Number(name.slice(0, 20));
  /** An unclean stop whose recovery point is `point` (the background syncs past it never completed). */
  function crashedAt(point: number): string {
    const dir = copyOf(base.dir);
    fs.unlinkSync(filePath(dir, CLEAN_SHUTDOWN_FILE));
    fs.writeFileSync(filePath(dir, SYNCED_BELOW_FILE), String(point));
    return dir;
  }

  it('rolling does not wait for the sync; the recovery point follows it, and close() completes it', async () => {
    const dir = tmpDir();
    const log = open(dir);
    for (let i = 0; i < 20; i++) {
      const b = makeBatch(log.nextOffset, 5, 100);
      log.append(b.bytes, 0, b.bytes.length, b.count);
      log.flush();
    }
    const names = logFiles(dir);
    expect(names.length).toBeGreaterThan(2);
    const activeBase = baseOf(names[names.length - 1]!);
    expect(await log.whenSealedSynced()).toBe(activeBase);
    expect(fs.readFileSync(filePath(dir, SYNCED_BELOW_FILE), 'utf8')).toBe(String(activeBase));
    log.close();
    expect(fs.readFileSync(filePath(dir, SYNCED_BELOW_FILE), 'utf8')).toBe(String(activeBase));
  });

  it('after an unclean stop, whole sealed segments past the point are validated and kept: nothing lost', () => {
    const dir = crashedAt(0);
    const log = open(dir);
    expect(log.recovery).toMatchObject({ cleanShutdown: false, truncatedBytes: 0, truncatedAtOffset: null, removedFiles: [] });
    expectPrefix(log, base.bodies, base.bodies.length);
    // They were synced during recovery: the point is past them now.
    expect(fs.readFileSync(filePath(dir, SYNCED_BELOW_FILE), 'utf8')).toBe(String(baseOf(logFiles(dir).at(-1)!)));
  });

  it('a damaged record in a sealed segment past the point is isolated: the segments after it stay, its offset is reported lost', () => {
    const names = logFiles(base.dir);
    const dir = crashedAt(baseOf(names[1]!));
    const file = filePath(dir, names[1]!);
    const bytes = new Uint8Array(fs.readFileSync(file));
    const victim = parseStored(bytes)[4]!;
    bytes[victim.at + 40] ^= 0xff; // a lost page reads back as other bytes
    fs.writeFileSync(file, bytes);
    const log = open(dir);
    expect(log.recovery).toMatchObject({ truncatedAtOffset: null, removedFiles: [], nextOffset: 150 });
    expect(log.recovery.damage).toEqual([expect.objectContaining({ from: victim.offset, to: victim.offset + 1 })]);
    expect(logFiles(dir)).toEqual(names);
    expectAllBut(log, base.bodies, 150, [victim.offset]);
  });

  it('a sealed segment past the point that lost its tail (shorter than the next base) is cut there too', () => {
    const names = logFiles(base.dir);
    const dir = crashedAt(baseOf(names[0]!));
    const file = filePath(dir, names[0]!);
    const recs = records(file);
    fs.truncateSync(file, recs[recs.length - 2]!.at); // the last two records' pages never reached the disk
    const log = open(dir);
    const cut = recs[recs.length - 2]!.offset;
    expect(log.recovery.truncatedAtOffset).toBe(cut);
    expect(logFiles(dir)).toEqual([names[0]]);
    expectPrefix(log, base.bodies, cut);
  });

  it('below the point, a sealed segment is trusted up to its last index entry; past it, a torn tail is lost up to the next segment', () => {
    const names = logFiles(base.dir);
    const dir = crashedAt(baseOf(names[2]!));
    const file = filePath(dir, names[0]!);
    const recs = records(file);
    fs.truncateSync(file, fs.statSync(file).size - 2);
    const log = open(dir);
    const last = recs[recs.length - 1]!.offset;
    expect(log.recovery.damage).toEqual([expect.objectContaining({ segment: 0, from: last, to: last + 1 })]);
    expectAllBut(log, base.bodies, 150, [last]);
  });
});
