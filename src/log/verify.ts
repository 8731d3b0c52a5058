/**
 * `weir verify`: an offline, read-only check of one partition directory (kafka-dump-log,
 * `nats stream check`). It never writes, truncates, creates or deletes anything: files are opened
 * 'r' only, and what recovery or a read would repair is only reported.
 *
 * Every segment is scanned from byte 0 with the same rules as recovery and reads (scan.ts: length,
 * magic, CRC32C, offset sequence), resyncing past damage at the next record that checks out
 * (resync.ts). Reported per partition: each segment's records, offsets and timestamps; damaged
 * regions (byte position, bytes, lost offsets, reason), marked known when the partition's damage
 * record (`.weir-damage`) already lists them; the torn tail recovery would cut; gaps and overlaps
 * between segments; index problems (missing, partial, not ascending, beyond EOF, an entry not at a
 * record carrying its offset and timestamp); orphan index files; the clean-shutdown marker.
 *
 * The core (`verifyPartition`) reads through an injected `PartitionSource` (bytes in, verdict out);
 * `verifyPartitionDir` is the file shell.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readU32, recordTimestamp } from '../protocol/record.js';
import { parseDamage, DAMAGE_FILE, type DamagedRange, type DamageReason } from './damage.js';
import { storageErrorFrom } from './errors.js';
import { CLEAN_SHUTDOWN_FILE, INDEX_SUFFIX, LOG_SUFFIX, segmentName } from './layout.js';
import { readSegmentNames, readSyncedBelow } from './recovery.js';
import { findResync, type ReadBytes, type ResyncHint } from './resync.js';
import { newCursor, scanChunk, type ScanCursor } from './scan.js';
import { INDEX_ENTRY_BYTES, SparseIndex } from './sparse-index.js';

/** One segment as the core sees it: its .log size, a reader over it, and its .index bytes (null: no file). */
export interface SegmentSource {
  size: number;
  read: ReadBytes;
  index: Uint8Array | null;
}

/** What the core needs of a partition directory. */
export interface PartitionSource {
  /** Base offsets of the .log files, ascending. */
  bases: number[];
  /** Base offsets of .index files without a .log. */
  orphanIndexes: number[];
  cleanShutdown: boolean;
  /** The recovery point (SYNCED_BELOW_FILE): Infinity when absent, 0 when unreadable (recovery's rule). */
  syncedBelow: number;
  /** The damage record's text, null when the file does not exist. */
  damageRecord: string | null;
  /** Run `fn` over segment `base` (the shell opens the file for it and closes it after). */
  withSegment<T>(base: number, fn: (s: SegmentSource) => T): T;
}

export interface SegmentVerdict {
  file: string;
  base: number;
  bytes: number;
  /** Records that check out. */
  records: number;
  firstOffset: number | null;
  lastOffset: number | null;
  firstTimestamp: number | null;
  lastTimestamp: number | null;
  /** Entries of its .index file, null when the file is missing. */
  indexEntries: number | null;
}

/** A region of a segment whose records fail their checks; offsets [from, to) are lost. */
export interface FoundDamage extends Pick<DamagedRange, 'segment' | 'position' | 'resumePosition' | 'bytes' | 'from' | 'to' | 'reason'> {
  file: string;
  /** The partition's damage record already lists it. */
  known: boolean;
}

/** Bytes at the end of a segment with no good record after them: what recovery cuts at the next start. */
export interface TornTail {
  segment: number;
  file: string;
  position: number;
  bytes: number;
  /** The offset the log continues at after the cut (the first offset written again). */
  offset: number;
  reason: DamageReason;
  /**
   * Later segments recovery removes with it: the tail is in a sealed segment not yet known synced
   * after an unclean stop, which recovery treats as the last one (Kafka's recovery point rule).
   */
  removesSegments: string[];
}

/** Offsets [from, to) held by no segment: the segment `file` ends before the next one begins. */
export interface Gap {
  segment: number;
  file: string;
  from: number;
  to: number;
  known: boolean;
}

/** The segment `file` holds offsets up to `endOffset` (exclusive), past the next segment's base. */
export interface Overlap {
  segment: number;
  file: string;
  endOffset: number;
  nextBase: number;
}

export interface IndexProblem {
  segment: number;
  file: string;
  /** Entry number, null for a problem of the whole file. */
  entry: number | null;
  problem: string;
}

export interface PartitionVerdict {
  dir: string;
  /** Nothing found: no damage, torn tail, gap, overlap or index problem. */
  ok: boolean;
  segments: SegmentVerdict[];
  /** First base offset, null without segments. */
  logStartOffset: number | null;
  /** Where the log continues (after recovery's cut, if any), null without segments. */
  nextOffset: number | null;
  records: number;
  bytes: number;
  damage: FoundDamage[];
  tornTail: TornTail | null;
  gaps: Gap[];
  overlaps: Overlap[];
  /** Offsets lost in damaged regions and gaps (a torn tail's records were never whole). */
  lostOffsets: number;
  indexProblems: IndexProblem[];
  /** Index problems beyond the ones listed (a garbage index is summarised, not listed whole). */
  moreIndexProblems: number;
  /** .index files without a .log (left by a crash during retention; recovery removes them). */
  orphanIndexes: string[];
  /** The clean-shutdown marker is present (the broker that wrote this was stopped cleanly). */
  cleanShutdown: boolean;
  /** The recovery point (sealed segments below it were synced), null when the file is absent. */
  recoveryPoint: number | null;
  damageRecord: {
    file: string;
    present: boolean;
    /** Its entries (damaged ranges and past truncations), as stored. */
    entries: DamagedRange[];
    /** Lines that do not parse (a torn append; the broker skips them too). */
    unreadableLines: number;
    /** Damaged ranges it lists that this scan did not find (their segment was deleted, or repaired). */
    notFoundAgain: DamagedRange[];
  };
}

const SCAN_CHUNK_BYTES = 1 << 20;
const RESYNC_HINTS = 16;
const MAX_INDEX_PROBLEMS = 50;

/** Check every segment of a partition (pure apart from `source`'s reads). */
export function verifyPartition(dir: string, source: PartitionSource): PartitionVerdict {
  const recorded = source.damageRecord === null ? [] : parseDamage(source.damageRecord);
  const lines = source.damageRecord === null ? 0 : source.damageRecord.split('\n').filter((l) => l.length > 0).length;
  const scratch = { buf: new Uint8Array(SCAN_CHUNK_BYTES) };
  const scans: SegmentScan[] = [];
  const bases = source.bases;
  for (let i = 0; i < bases.length; i++) {
    const base = bases[i]!;
    const sealed = i < bases.length - 1;
    scans.push(source.withSegment(base, (s) => scanSegment(s, base, sealed ? bases[i + 1]! : Infinity, sealed, scratch)));
  }
  return assemble(dir, scans, source, recorded, lines - recorded.length);
}

/** What one segment's scan found, before the partition's rules (sealed or last, recovery point) apply. */
interface SegmentScan {
  verdict: SegmentVerdict;
  /** Offset after the last good record (the base when none). */
  endOffset: number;
  /** Regions with a good record after them. */
  damage: FoundDamage[];
  /** Bytes after the last good record with none after them. */
  tail: { position: number; bytes: number; offset: number; reason: DamageReason } | null;
  indexProblems: IndexProblem[];
  moreIndexProblems: number;
  /** Index entries not at any good record's start: a problem unless they lie in damage (the damage explains them). */
  strayEntries: Array<{ entry: number; position: number; offset: number }>;
}

function scanSegment(s: SegmentSource, base: number, nextBase: number, sealed: boolean, scratch: { buf: Uint8Array }): SegmentScan {
  const file = segmentName(base, LOG_SUFFIX);
  const indexFile = segmentName(base, INDEX_SUFFIX);
  const size = s.size;
  const index = s.index === null ? null : SparseIndex.fromBytes(s.index);
  const problems: IndexProblem[] = [];
  let more = 0;
  const problem = (entry: number | null, text: string): void => {
    if (problems.length < MAX_INDEX_PROBLEMS) problems.push({ segment: base, file: indexFile, entry, problem: text });
    else more++;
  };
  if (s.index === null) problem(null, 'missing (recovery rebuilds it)');
  else {
    if (s.index.length % INDEX_ENTRY_BYTES !== 0) problem(null, `ends with a partial entry (${s.index.length % INDEX_ENTRY_BYTES} of ${INDEX_ENTRY_BYTES} bytes)`);
    // The active segment writes its entries in batches: after a crash its index may lag the log.
    if (sealed && index!.count === 0 && size > 0) problem(null, 'holds no entry though the segment holds records');
    for (let i = 0; i < index!.count; i++) {
      const rel = index!.relOffset(i);
      const pos = index!.position(i);
      const at = `offset ${base + rel} at byte ${pos}`;
      if (i === 0 && (rel !== 0 || pos !== 0)) problem(i, `the first entry (${at}) is not the segment's first record (offset ${base} at byte 0)`);
      if (i > 0 && (rel <= index!.relOffset(i - 1) || pos <= index!.position(i - 1))) problem(i, `not ascending (${at} after offset ${base + index!.relOffset(i - 1)} at byte ${index!.position(i - 1)})`);
      if (i > 0 && index!.timestamp(i) < index!.timestamp(i - 1)) problem(i, `its timestamp ${index!.timestamp(i)} is older than the previous entry's ${index!.timestamp(i - 1)}`);
      if (pos >= size) problem(i, `points beyond the end of the .log (${at}; the .log holds ${size} bytes)`);
    }
  }
  // Entries in file-position order, matched against the good records as the scan passes them.
  const order: number[] = index === null ? [] : Array.from({ length: index.count }, (_, i) => i).filter((i) => index.position(i) < size);
  order.sort((a, b) => index!.position(a) - index!.position(b) || a - b);
  let next = 0;
  const stray: SegmentScan['strayEntries'] = [];
  const hints: ResyncHint[] = order.map((i) => ({ position: index!.position(i), offset: base + index!.relOffset(i) }));

  const verdict: SegmentVerdict = { file, base, bytes: size, records: 0, firstOffset: null, lastOffset: null, firstTimestamp: null, lastTimestamp: null, indexEntries: index === null ? null : index.count };
  const damage: FoundDamage[] = [];
  let tail: SegmentScan['tail'] = null;
  const cursor = newCursor(0, base, -1, -1);
  // The records a chunk's scan accepted lie in buf[0, cursor.position - pos0): count them and check the index entries among them.
  const accepted = (buf: Uint8Array, pos0: number, off0: number): void => {
    let p = pos0;
    let o = off0;
    while (p < cursor.position) {
      const at = p - pos0;
      const ts = recordTimestamp(buf, at);
      if (verdict.firstOffset === null) {
        verdict.firstOffset = o;
        verdict.firstTimestamp = ts;
      }
      for (; next < order.length && index!.position(order[next]!) <= p; next++) {
        const i = order[next]!;
        const want = base + index!.relOffset(i);
        if (index!.position(i) < p) stray.push({ entry: i, position: index!.position(i), offset: want });
        else if (want !== o) problem(i, `offset ${want} at byte ${p}: the record there carries offset ${o}`);
        else if (index!.timestamp(i) !== ts) problem(i, `offset ${want} at byte ${p}: its timestamp ${index!.timestamp(i)} differs from the record's ${ts}`);
      }
      verdict.records++;
      verdict.lastOffset = o;
      verdict.lastTimestamp = ts;
      p += 4 + readU32(buf, at);
      o++;
    }
  };
  const read = s.read;
  for (;;) {
    scanFrom(read, size, cursor, scratch, base, accepted);
    if (cursor.stop === 'END') break;
    const reason = stopReason(cursor);
    const from = hints.filter((h) => h.position > cursor.position).slice(0, RESYNC_HINTS);
    const at = findResync(read, scratch, cursor.position, cursor.offset, size, nextBase, from);
    if (!at.found) {
      tail = { position: cursor.position, bytes: size - cursor.position, offset: cursor.offset, reason };
      break;
    }
    damage.push({ segment: base, file, position: cursor.position, resumePosition: at.position, bytes: at.position - cursor.position, from: cursor.offset, to: at.offset, reason, known: false });
    cursor.position = at.position;
    cursor.offset = at.offset;
    cursor.stop = null;
  }
  // Entries the scan never reached lie in the tail.
  for (; next < order.length; next++) {
    const i = order[next]!;
    stray.push({ entry: i, position: index!.position(i), offset: base + index!.relOffset(i) });
  }
  return { verdict, endOffset: cursor.offset, damage, tail, indexProblems: problems, moreIndexProblems: more, strayEntries: stray };
}

/**
 * Validate records from cursor.position to `size` in chunks (recovery's scanFile); `accepted` sees
 * each chunk's good records. A read shorter than asked (the file shrank: a live broker's recovery)
 * counts as the end of the file.
 */
function scanFrom(read: ReadBytes, size: number, cursor: ScanCursor, scratch: { buf: Uint8Array }, base: number, accepted: (buf: Uint8Array, pos0: number, off0: number) => void): void {
  for (;;) {
    const remaining = size - cursor.position;
    const want = Math.min(Math.max(scratch.buf.length, cursor.need), remaining);
    if (want > scratch.buf.length) scratch.buf = new Uint8Array(want);
    const n = remaining <= 0 ? 0 : read(scratch.buf, want, cursor.position);
    const pos0 = cursor.position;
    const off0 = cursor.offset;
    scanChunk(scratch.buf, 0, n, n >= remaining || n < want, cursor, base, null, 0);
    accepted(scratch.buf, pos0, off0);
    if (cursor.stop !== 'NEED_MORE') return;
    // A length running past EOF is a torn record; do not allocate for it.
    if (cursor.need > size - cursor.position) {
      cursor.stop = 'TORN';
      return;
    }
  }
}

function stopReason(cursor: ScanCursor): DamageReason {
  return cursor.stop === 'OUT_OF_SEQUENCE' ? 'OUT_OF_SEQUENCE' : cursor.stop === 'TORN' || cursor.stop === 'NEED_MORE' ? 'TORN' : 'CORRUPT';
}

/**
 * Apply the partition's rules to the segment scans, as recovery would at the next start: a tail
 * in the last segment is cut; so is one in a sealed segment at or past the recovery point after an
 * unclean stop (or such a segment ending short of the next one), and the segments after it go; a
 * sealed segment's tail otherwise is damage up to the next segment's base.
 */
function assemble(dir: string, scans: SegmentScan[], source: PartitionSource, recorded: DamagedRange[], unreadableLines: number): PartitionVerdict {
  const bases = source.bases;
  const damage: FoundDamage[] = [];
  const gaps: Gap[] = [];
  const overlaps: Overlap[] = [];
  let tornTail: TornTail | null = null;
  const point = source.cleanShutdown ? Infinity : source.syncedBelow;
  let firstUnsynced = bases.length - 1;
  while (firstUnsynced > 0 && bases[firstUnsynced - 1]! >= point) firstUnsynced--;
  let nextOffset: number | null = null;
  for (let i = 0; i < scans.length; i++) {
    const s = scans[i]!;
    const file = s.verdict.file;
    damage.push(...s.damage);
    const last = i === scans.length - 1;
    if (tornTail !== null) continue; // recovery removes this segment: only its own damage is listed
    const cutHere = last || (i >= firstUnsynced && (s.tail !== null || s.endOffset !== bases[i + 1]));
    if (cutHere) {
      if (s.tail !== null || !last) {
        tornTail = {
          segment: s.verdict.base,
          file,
          position: s.tail?.position ?? s.verdict.bytes,
          bytes: s.tail?.bytes ?? 0,
          offset: s.endOffset,
          reason: s.tail?.reason ?? 'TORN',
          removesSegments: scans.slice(i + 1).map((x) => x.verdict.file),
        };
      }
      nextOffset = s.endOffset;
      continue;
    }
    const nextBase = bases[i + 1]!;
    let end = s.endOffset;
    if (s.tail !== null) {
      // A sealed segment was synced whole: its tail is damage, lost up to the next segment.
      const to = Math.max(s.tail.offset, nextBase);
      damage.push({ segment: s.verdict.base, file, position: s.tail.position, resumePosition: s.verdict.bytes, bytes: s.tail.bytes, from: s.tail.offset, to, reason: s.tail.reason, known: false });
      end = to;
    }
    if (end < nextBase) gaps.push({ segment: s.verdict.base, file, from: end, to: nextBase, known: false });
    else if (end > nextBase) overlaps.push({ segment: s.verdict.base, file, endOffset: end, nextBase });
  }

  // Index entries off any good record's start are a problem unless damage explains them.
  const indexProblems: IndexProblem[] = [];
  let moreIndexProblems = 0;
  for (const s of scans) {
    indexProblems.push(...s.indexProblems);
    moreIndexProblems += s.moreIndexProblems;
    const base = s.verdict.base;
    const inDamage = (p: number): boolean =>
      damage.some((d) => d.segment === base && d.position <= p && p < d.resumePosition) || (tornTail !== null && tornTail.segment === base && p >= tornTail.position);
    let listed = s.indexProblems.length;
    for (const e of s.strayEntries) {
      if (inDamage(e.position)) continue;
      if (listed++ < MAX_INDEX_PROBLEMS) {
        indexProblems.push({ segment: base, file: segmentName(base, INDEX_SUFFIX), entry: e.entry, problem: `offset ${e.offset} at byte ${e.position}: no record starts there` });
      } else moreIndexProblems++;
    }
  }
  indexProblems.sort((a, b) => a.segment - b.segment || (a.entry ?? -1) - (b.entry ?? -1));

  // Known: the damage record lists the same region (same segment, and the same position or lost offsets).
  const lists = (segment: number, position: number, from: number, to: number): boolean =>
    recorded.some((r) => r.kind === 'damaged' && r.segment === segment && (r.position === position || (from < to && r.from < to && from < r.to)));
  for (const d of damage) d.known = lists(d.segment, d.position, d.from, d.to);
  const sizeOf = new Map(scans.map((s) => [s.verdict.base, s.verdict.bytes]));
  for (const g of gaps) g.known = lists(g.segment, sizeOf.get(g.segment)!, g.from, g.to);
  const notFoundAgain = recorded.filter(
    (r) => r.kind === 'damaged' && !damage.some((d) => d.segment === r.segment && (d.position === r.position || (r.from < d.to && d.from < r.to))) && !gaps.some((g) => g.segment === r.segment && r.from < g.to && g.from < r.to),
  );
  damage.sort((a, b) => a.from - b.from || a.segment - b.segment);

  const segments = scans.map((s) => s.verdict);
  const lostOffsets = damage.reduce((n, d) => n + (d.to - d.from), 0) + gaps.reduce((n, g) => n + (g.to - g.from), 0);
  const ok = damage.length === 0 && tornTail === null && gaps.length === 0 && overlaps.length === 0 && indexProblems.length === 0 && moreIndexProblems === 0;
  return {
    dir,
    ok,
    segments,
    logStartOffset: bases.length > 0 ? bases[0]! : null,
    nextOffset,
    records: segments.reduce((n, s) => n + s.records, 0),
    bytes: segments.reduce((n, s) => n + s.bytes, 0),
    damage,
    tornTail,
    gaps,
    overlaps,
    lostOffsets,
    indexProblems,
    moreIndexProblems,
    orphanIndexes: source.orphanIndexes.map((b) => segmentName(b, INDEX_SUFFIX)),
    cleanShutdown: source.cleanShutdown,
    recoveryPoint: source.syncedBelow === Infinity ? null : source.syncedBelow,
    damageRecord: { file: path.join(dir, DAMAGE_FILE), present: source.damageRecord !== null, entries: recorded, unreadableLines, notFoundAgain },
  };
}

/**
 * Check the partition directory `dir` (the shell: read-only, every file opened 'r'). Throws a
 * STORAGE_ERROR LogError naming the file or directory that could not be read.
 */
export function verifyPartitionDir(dir: string): PartitionVerdict {
  const { names, logs, indexes } = readSegmentNames(dir);
  const source: PartitionSource = {
    bases: [...logs].sort((a, b) => a - b),
    orphanIndexes: indexes.filter((b) => !logs.has(b)).sort((a, b) => a - b),
    cleanShutdown: names.includes(CLEAN_SHUTDOWN_FILE),
    syncedBelow: readSyncedBelow(dir),
    damageRecord: readOptional(path.join(dir, DAMAGE_FILE)),
    withSegment(base, fn) {
      const file = path.join(dir, segmentName(base, LOG_SUFFIX));
      // The index before the .log's size: a running broker writes entries after their records, so
      // no entry read here can point past the size read next.
      let index: Uint8Array | null = null;
      const indexFile = path.join(dir, segmentName(base, INDEX_SUFFIX));
      try {
        index = new Uint8Array(fs.readFileSync(indexFile, { flag: 'r' }));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw storageErrorFrom(err, 'read', indexFile);
      }
      let fd: number;
      try {
        fd = fs.openSync(file, 'r');
      } catch (err) {
        throw storageErrorFrom(err, 'open', file);
      }
      try {
        const size = fs.fstatSync(fd).size;
        const read: ReadBytes = (out, length, position) => {
          let got = 0;
          while (got < length) {
            const n = fs.readSync(fd, out, got, length - got, position + got);
            if (n === 0) break;
            got += n;
          }
          return got;
        };
        return fn({ size, read: guarded(read, file), index });
      } finally {
        fs.closeSync(fd);
      }
    },
  };
  return verifyPartition(dir, source);
}

/** A reader whose IO errors name the file. */
function guarded(read: ReadBytes, file: string): ReadBytes {
  return (out, length, position) => {
    try {
      return read(out, length, position);
    } catch (err) {
      throw storageErrorFrom(err, 'read', file);
    }
  };
}

/** A file's text, null when it does not exist. */
function readOptional(file: string): string | null {
  try {
    return fs.readFileSync(file, { encoding: 'utf8', flag: 'r' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw storageErrorFrom(err, 'read', file);
  }
}
