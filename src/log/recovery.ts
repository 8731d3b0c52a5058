/**
 * Opening a partition directory: truncate-and-report recovery (Kafka log recovery, NATS file store).
 *
 * - Orphan `.index` files (no `.log`; left by a crash during segment deletion) are removed.
 * - Sealed segments (all but the last) below the recovery point (SYNCED_BELOW_FILE) were
 *   fdatasync'ed, data and index, after the log rolled past them, so their data is trusted. Their index is read and checked (whole entries, well-formed,
 *   within the file) and the records from the last index entry to EOF are validated to learn the
 *   segment's end offset and newest timestamp. A missing or invalid index is rebuilt by a full scan.
 *   A sealed segment whose records do not validate cannot be a crash artifact: it is damage. The
 *   scan resyncs at the next good record (resync.ts) and reports the region in `report.damage`;
 *   a tail with no good record left, or a segment that ends before the next begins, loses the
 *   offsets up to the next segment's base. Nothing is cut from a sealed segment. Segments that
 *   overlap still throw LOG_CORRUPT (no disk damage explains them).
 * - The last segment may hold a torn or half-written tail. Index entries that are malformed, point
 *   beyond the file or at a position not holding a valid record with that offset are dropped; records
 *   are validated from the last good entry to EOF after a clean shutdown (the CLEAN_SHUTDOWN_FILE
 *   marker is present, or `handedOver`: the previous writer, in this process, closed the log a
 *   moment ago to hand it over), from the segment start otherwise. A torn, corrupt or
 *   out-of-sequence record followed by good ones is damage (reported, the good ones kept, so their
 *   offsets are never reused); at one with no good record after it the file is truncated (ftruncate
 *   + fdatasync: a torn write), the index rewritten to match, and the loss reported (PartitionLog
 *   publishes it on `weir:wal:truncated` and keeps it in the damage record as kind `truncated`).
 * - After an unclean stop, sealed segments at or past the recovery point (their background sync may
 *   not have completed before an OS crash) are validated the same way, in order. The first one that
 *   is cut short (or ends before the next one begins) becomes the last segment: the segments after it
 *   are removed, as Kafka recovery does past its recovery point. The ones found whole are
 *   fdatasync'ed before the log opens.
 */
import fs from 'node:fs';
import { isValidStoredRecord, readU32, recordOffset, RECORD_HEADER_BYTES } from '../protocol/record.js';
import { LogCorruptError, storageErrorFrom } from './errors.js';
import { mkdirFailure } from '../common/storage-failure.js';
import { CLEAN_SHUTDOWN_FILE, SYNCED_BELOW_FILE, parseSegmentName, segmentName, INDEX_SUFFIX, LOG_SUFFIX } from './layout.js';
import { newCursor, scanChunk, type ScanCursor } from './scan.js';
import type { DamagedRange, DamageReason } from './damage.js';
import { findResync } from './resync.js';
import { fsyncDir, Segment } from './segment.js';
import { INDEX_ENTRY_BYTES, SparseIndex } from './sparse-index.js';

export interface RecoveryReport {
  /** Segments in the log after recovery. */
  segments: number;
  /** Bytes cut from the last segment's tail (0 after a clean shutdown). */
  truncatedBytes: number;
  /** Offset of the first record lost (= nextOffset), or null when nothing was truncated. */
  truncatedAtOffset: number | null;
  /** Names of the .index files rebuilt or repaired. */
  rebuiltIndexes: string[];
  /** Names of orphan files removed (an .index without its .log). */
  removedFiles: string[];
  /** The previous writer closed the log cleanly (only then is the last segment trusted up to its last index entry). */
  cleanShutdown: boolean;
  nextOffset: number;
  logStartOffset: number;
  /**
   * Damage found while opening: regions of a segment whose records failed their checks, with good
   * records after them (kept: the log resyncs at the next good record), or running to the end of a
   * sealed segment; and the last segment's truncated tail, if any (kind `truncated`).
   */
  damage: DamagedRange[];
}

export interface RecoveredLog {
  /** Ascending by base; the last one is active: .log opened r+, .index open for append, index loaded. */
  segments: Segment[];
  report: RecoveryReport;
  /** Timestamp of the newest record in the log, -1 when it holds none. */
  lastTimestamp: number;
}

/** Reused read buffer, grown for records larger than it. */
interface Scratch {
  buf: Uint8Array;
}

const SCAN_CHUNK_BYTES = 1 << 20;
/** First read when checking an index entry; a larger record is read again whole. */
const ENTRY_CHECK_BYTES = 64 * 1024;

export function recoverLog(dir: string, indexIntervalBytes: number, handedOver = false): RecoveredLog {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (err) {
    // Node's recursive mkdir says ENOENT where an ancestor could not be made (EROFS, EACCES…).
    throw storageErrorFrom(mkdirFailure(dir) ?? err, 'mkdir', dir);
  }
  const { names, logs, indexes } = readSegmentNames(dir);
  const report: RecoveryReport = {
    segments: 0,
    truncatedBytes: 0,
    truncatedAtOffset: null,
    rebuiltIndexes: [],
    removedFiles: [],
    cleanShutdown: false,
    nextOffset: 0,
    logStartOffset: 0,
    damage: [],
  };
  let dirChanged = false;
  if (names.includes(CLEAN_SHUTDOWN_FILE)) {
    // Remove it durably before anything is written, or a crash later would look clean.
    const marker = `${dir}/${CLEAN_SHUTDOWN_FILE}`;
    try {
      fs.unlinkSync(marker);
    } catch (err) {
      throw storageErrorFrom(err, 'unlink', marker);
    }
    report.cleanShutdown = true;
    dirChanged = true;
  } else if (handedOver) {
    // Closed without fdatasync (fsync 'never'): what it wrote is in this machine's page cache,
    // as trustworthy as after a clean shutdown until the machine itself crashes, and then no marker
    // is on disk, so that recovery validates everything.
    report.cleanShutdown = true;
  }
  for (const base of indexes) {
    if (logs.has(base)) continue;
    const file = `${dir}/${segmentName(base, INDEX_SUFFIX)}`;
    try {
      fs.unlinkSync(file);
    } catch (err) {
      throw storageErrorFrom(err, 'unlink', file);
    }
    report.removedFiles.push(segmentName(base, INDEX_SUFFIX));
    dirChanged = true;
  }

  const bases = [...logs].sort((a, b) => a - b);
  const segments: Segment[] = [];
  const scratch: Scratch = { buf: new Uint8Array(SCAN_CHUNK_BYTES) };
  if (bases.length === 0) {
    segments.push(Segment.create(dir, 0));
    dirChanged = true;
  } else {
    // Sealed segments from `firstUnsynced` on may have lost pages in an OS crash: check them like the last.
    const point = report.cleanShutdown ? Infinity : readSyncedBelow(dir);
    let firstUnsynced = bases.length - 1;
    while (firstUnsynced > 0 && bases[firstUnsynced - 1]! >= point) firstUnsynced--;
    for (let i = 0; i < firstUnsynced; i++) segments.push(recoverSealed(dir, bases[i]!, bases[i + 1]!, indexIntervalBytes, scratch, report));
    if (dirChanged) fsyncDir(dir);
    dirChanged = false;
    for (let i = firstUnsynced; i < bases.length; i++) {
      const seg = recoverLast(dir, bases[i]!, indexIntervalBytes, scratch, report);
      segments.push(seg);
      if (i === bases.length - 1) break;
      if (report.truncatedAtOffset === null && seg.endOffset === bases[i + 1]) {
        // Whole: make it as durable as a sealed segment is supposed to be, then reopen on demand.
        seg.datasyncLog();
        seg.datasyncIndex();
        seg.closeFds();
        continue;
      }
      // Cut short: it is the new last segment; what came after it cannot be trusted to follow it.
      if (report.truncatedAtOffset === null) report.truncatedAtOffset = seg.endOffset;
      for (let k = i + 1; k < bases.length; k++) {
        const base = bases[k]!;
        for (const suffix of [LOG_SUFFIX, INDEX_SUFFIX]) {
          const file = `${dir}/${segmentName(base, suffix)}`;
          try {
            report.truncatedBytes += suffix === LOG_SUFFIX ? fs.statSync(file).size : 0;
            fs.unlinkSync(file);
            report.removedFiles.push(segmentName(base, suffix));
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw storageErrorFrom(err, 'unlink', file);
          }
        }
      }
      fsyncDir(dir);
      break;
    }
  }
  if (dirChanged) fsyncDir(dir);

  for (let i = 1; i < segments.length; i++) {
    const prev = segments[i - 1]!;
    const seg = segments[i]!;
    if (prev.endOffset < seg.base) {
      // A sealed segment whose last records are gone (its file was cut short): they are lost, the
      // rest of the log is not. Reported like any damage.
      report.damage.push(damaged(prev.base, prev.size, prev.size, prev.endOffset, seg.base, 'TORN'));
      prev.endOffset = seg.base;
    }
    if (prev.endOffset !== seg.base) {
      for (const s of segments) s.closeFds();
      throw new LogCorruptError(
        `segments are not contiguous: ${segmentName(prev.base, LOG_SUFFIX)} ends at offset ${prev.endOffset} but the next segment starts at ${seg.base}`,
        { dir, segment: prev.base, endOffset: prev.endOffset, nextBase: seg.base },
      );
    }
  }

  const last = segments[segments.length - 1]!;
  let lastTimestamp = -1;
  for (let i = segments.length - 1; i >= 0 && lastTimestamp < 0; i--) lastTimestamp = segments[i]!.lastTimestamp;
  report.segments = segments.length;
  report.nextOffset = last.endOffset;
  report.logStartOffset = segments[0]!.base;
  if (report.truncatedAtOffset !== null) {
    const cut = damaged(last.base, last.size, last.size, report.truncatedAtOffset, report.truncatedAtOffset, 'TORN');
    cut.kind = 'truncated';
    cut.bytes = report.truncatedBytes;
    report.damage.push(cut);
  }
  return { segments, report, lastTimestamp };
}

/**
 * The files of a partition directory: every name, the base offsets of its `.log` files and of its
 * `.index` files. Throws STORAGE_ERROR naming the directory when it cannot be read.
 */
export function readSegmentNames(dir: string): { names: string[]; logs: Set<number>; indexes: number[] } {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    throw storageErrorFrom(err, 'readdir', dir);
  }
  const logs = new Set<number>();
  const indexes: number[] = [];
  for (const name of names) {
    const parsed = parseSegmentName(name);
    if (parsed === null) continue;
    if (parsed.kind === 'log') logs.add(parsed.base);
    else indexes.push(parsed.base);
  }
  return { names, logs, indexes };
}

/** The recovery point, or Infinity when the file is absent (logs that synced on roll). Read-only (weir verify uses it too). */
export function readSyncedBelow(dir: string): number {
  let text: string;
  try {
    text = fs.readFileSync(`${dir}/${SYNCED_BELOW_FILE}`, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return Infinity;
    return 0;
  }
  const v = Number(text.trim());
  return Number.isSafeInteger(v) && v >= 0 ? v : 0;
}

function recoverSealed(dir: string, base: number, nextBase: number, interval: number, scratch: Scratch, report: RecoveryReport): Segment {
  const seg = new Segment(dir, base);
  seg.openLog('r');
  try {
    const size = seg.fileSize();
    const raw = seg.readIndexFile();
    let index = raw === null ? null : SparseIndex.fromBytes(raw);
    let cursor: ScanCursor | null = null;
    const wellFormed =
      index !== null &&
      raw!.length === index.count * INDEX_ENTRY_BYTES &&
      (index.count > 0 || size === 0) &&
      index.validPrefixLength(size) === index.count;
    if (wellFormed && index!.count > 0) {
      const last = index!.count - 1;
      const pos = index!.position(last);
      cursor = newCursor(pos, base + index!.relOffset(last), -1, pos);
      scanFile(seg, size, cursor, scratch, base, null, interval);
      // A bad record exactly at the last entry may be a wrong entry: let a full rebuild decide.
      if (cursor.stop !== 'END') cursor = null;
    } else if (wellFormed) {
      cursor = newCursor(0, base, -1, -1); // empty sealed segment with empty index
      cursor.stop = 'END';
    }
    if (cursor === null) {
      index = new SparseIndex();
      cursor = newCursor(0, base, -1, -1);
      // A sealed segment was synced whole: a bad record is damage, not a crash artifact. Keep what
      // checks out around it; a tail with no good record left is lost up to the next segment.
      scanResyncing(seg, size, cursor, scratch, base, index, interval, nextBase, report);
      if (cursor.stop !== 'END') {
        report.damage.push(damaged(base, cursor.position, size, cursor.offset, nextBase, stopReason(cursor)));
        cursor.position = size;
        cursor.offset = nextBase;
      }
      writeWholeIndex(seg, index);
      report.rebuiltIndexes.push(segmentName(base, INDEX_SUFFIX));
    }
    seg.size = size;
    seg.endOffset = cursor.offset;
    seg.lastTimestamp = cursor.lastTimestamp;
  } finally {
    seg.closeFds(); // sealed segments are reopened on demand
  }
  return seg;
}

function recoverLast(dir: string, base: number, interval: number, scratch: Scratch, report: RecoveryReport): Segment {
  const seg = new Segment(dir, base);
  try {
    seg.openLog('r+');
    const size = seg.fileSize();
    const raw = seg.readIndexFile();
    const index = raw === null ? new SparseIndex() : SparseIndex.fromBytes(raw);
    const onDisk = index.count;
    // After a crash validate the whole segment (keep = 0); regenerating the index entries it already
    // had yields the same bytes, which is not reported as a repair (compared below).
    let keep = report.cleanShutdown ? index.validPrefixLength(size) : 0;
    // Drop trailing entries that do not point at a valid record carrying their offset.
    while (keep > 0 && !entryHoldsRecord(seg, index, keep - 1, size, scratch)) keep--;
    const prior = raw === null ? null : index.entryBytes(0, onDisk).slice();
    index.truncate(keep);
    const cursor =
      keep > 0
        ? newCursor(index.position(keep - 1), base + index.relOffset(keep - 1), -1, index.position(keep - 1))
        : newCursor(0, base, -1, -1);
    // Good records after a bad one are kept (offsets are never reused); only a tail with none left
    // is cut (a torn write).
    scanResyncing(seg, size, cursor, scratch, base, index, interval, Infinity, report);
    if (cursor.position < size) {
      seg.truncateLog(cursor.position);
      seg.datasyncLog();
      report.truncatedBytes = size - cursor.position;
      report.truncatedAtOffset = cursor.offset;
    }
    seg.openIndexForAppend();
    const indexChanged = raw === null || raw.length !== onDisk * INDEX_ENTRY_BYTES || !sameBytes(prior!, index.entryBytes());
    if (indexChanged) {
      seg.index = index;
      seg.truncateIndexFile(keep);
      seg.writeIndexEntries(keep);
      seg.datasyncIndex();
      report.rebuiltIndexes.push(segmentName(base, INDEX_SUFFIX));
    }
    seg.index = index;
    seg.indexWritten = index.count;
    seg.size = cursor.position;
    seg.endOffset = cursor.offset;
    seg.lastTimestamp = cursor.lastTimestamp;
    return seg;
  } catch (err) {
    try {
      seg.closeFds();
    } catch {
      // the first error is the one to report
    }
    throw err;
  }
}

/** Whether index entry i points at a whole, valid record carrying offset base + relOffset(i). */
function entryHoldsRecord(seg: Segment, index: SparseIndex, i: number, size: number, scratch: Scratch): boolean {
  const pos = index.position(i);
  if (size - pos < RECORD_HEADER_BYTES) return false;
  let n = seg.readAt(scratch.buf, 0, Math.min(ENTRY_CHECK_BYTES, size - pos), pos);
  const recSize = 4 + readU32(scratch.buf, 0);
  if (recSize > size - pos) return false;
  if (recSize > n) {
    grow(scratch, recSize);
    n = seg.readAt(scratch.buf, 0, recSize, pos);
  }
  return isValidStoredRecord(scratch.buf, 0, n) && recordOffset(scratch.buf, 0) === seg.base + index.relOffset(i);
}

/** Validate records from cursor.position to `size`, reading chunks into `scratch` (see scan.ts). */
function scanFile(
  seg: Segment,
  size: number,
  cursor: ScanCursor,
  scratch: Scratch,
  base: number,
  index: SparseIndex | null,
  interval: number,
): void {
  for (;;) {
    const remaining = size - cursor.position;
    const want = Math.min(Math.max(scratch.buf.length, cursor.need), remaining);
    if (want > scratch.buf.length) grow(scratch, want);
    const n = remaining <= 0 ? 0 : seg.readAt(scratch.buf, 0, want, cursor.position);
    scanChunk(scratch.buf, 0, n, n >= remaining, cursor, base, index, interval);
    if (cursor.stop !== 'NEED_MORE') return;
    // A length running past EOF is a torn record; do not allocate for it.
    if (cursor.need > size - cursor.position) {
      cursor.stop = 'TORN';
      return;
    }
  }
}

/**
 * scanFile, resuming past every damaged region after which good records follow (each reported in
 * `report.damage`, with an index entry at the record it resumes at). Stops, as scanFile does, at
 * the first bad record with no good one after it before `size`.
 */
function scanResyncing(seg: Segment, size: number, cursor: ScanCursor, scratch: Scratch, base: number, index: SparseIndex, interval: number, endOffset: number, report: RecoveryReport): void {
  const read = (out: Uint8Array, length: number, position: number): number => seg.readAt(out, 0, length, position);
  for (;;) {
    scanFile(seg, size, cursor, scratch, base, index, interval);
    if (cursor.stop === 'END') return;
    const at = findResync(read, scratch, cursor.position, cursor.offset, size, endOffset);
    if (!at.found) return;
    report.damage.push(damaged(base, cursor.position, at.position, cursor.offset, at.offset, stopReason(cursor)));
    cursor.position = at.position;
    cursor.offset = at.offset;
    cursor.lastEntryPosition = -1; // an index entry at the record reads resume from
    cursor.stop = null;
  }
}

function stopReason(cursor: ScanCursor): DamageReason {
  return cursor.stop === 'OUT_OF_SEQUENCE' ? 'OUT_OF_SEQUENCE' : cursor.stop === 'TORN' || cursor.stop === 'NEED_MORE' ? 'TORN' : 'CORRUPT';
}

function damaged(segment: number, position: number, resumePosition: number, from: number, to: number, reason: DamageReason): DamagedRange {
  return { kind: 'damaged', segment, position, resumePosition, bytes: resumePosition - position, from, to, reason, detectedBy: 'recovery', at: Date.now() };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function grow(scratch: Scratch, atLeast: number): void {
  let cap = scratch.buf.length;
  while (cap < atLeast) cap *= 2;
  scratch.buf = new Uint8Array(cap);
}

function writeWholeIndex(seg: Segment, index: SparseIndex): void {
  const bytes = index.entryBytes();
  try {
    fs.writeFileSync(seg.indexPath, bytes);
    const fd = fs.openSync(seg.indexPath, 'r');
    try {
      fs.fdatasyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    throw storageErrorFrom(err, 'write', seg.indexPath);
  }
}
