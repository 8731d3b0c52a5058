/**
 * PartitionLog: the write-ahead log of one partition (Kafka's log / NATS file store model).
 *
 * Runs inside the partition worker, its only writer, with synchronous fs calls. The data path:
 *
 *   append(batch) ─ copy into the group-commit buffer, stamp offset/timestamp/CRC per record
 *   flush()       ─ ONE pwrite of the buffer to the active segment (two only when it rolls),
 *                   fdatasync under 'always', then one pwrite of the new sparse-index entries
 *   read(offset)  ─ segment by binary search, index entry by binary search, short scan, one pread
 *                   into a Buffer the caller owns; every record served is verified (CRC32C,
 *                   framing, offset) first, with the CPU's crc32 instruction where it can
 *
 * Damage (bytes that changed on disk) is never served and never widened: a read that meets a record
 * failing its checks records the region in the partition's damage record (damage.ts: durable,
 * published on `weir:wal:damage`), resyncing at the next good record (resync.ts), and answers
 * `lost: {from, to}` for the offsets in it; reads before and after it go on as usual.
 *
 * Invariants:
 * - logStartOffset <= durableOffset <= nextOffset. Records in [durableOffset, nextOffset) exist only
 *   in the buffer; readers never see them; a failed flush drops them (nextOffset := durableOffset).
 * - A flush is all-or-nothing: on any error every file it touched is cut back to its size before
 *   the flush and segments it created are removed (see `rollback`).
 * - A batch (one append call) never splits across segments: the roll decision is taken per append,
 *   against the projected size of the segment the batch would go to (`tailSize`).
 * - Rolling seals a segment at once and fdatasyncs its .log and .index in the background, whatever
 *   the policy (one sync at a time, in roll order); when a sync completes the recovery point
 *   (SYNCED_BELOW_FILE) advances past the segment. Recovery trusts sealed segments below it and
 *   validates the rest like the last one (wholly after a crash, only past the last index entry
 *   after a clean close(), which syncs everything and leaves a marker file; see recovery.ts).
 *   Under 'always' each flush already fdatasyncs the data, so only acknowledged-durable data is
 *   ever acknowledged; the background sync is for recovery's sake.
 * - Drop-behind (`pageCacheBytes`, needs native/weir_io.c): once the active segment holds
 *   pageCacheBytes plus a step more than it keeps cached, its older pages are synced and dropped
 *   from the OS page cache off the thread (posix_fadvise DONTNEED), so a partition keeps about its
 *   newest pageCacheBytes there instead of every byte it ever wrote. Readers further behind read from
 *   disk. A sealed segment keeps its newest pageCacheBytes cached and drops the rest after its
 *   background sync. Only the page cache changes: what is durable, and when, stays the policy's.
 * - A read returns records of one segment only; the caller continues at `nextOffset`.
 * - Timestamps are log-append time, max(previous, now()), so they never decrease; one per append.
 * - No per-record allocation in append/flush/read: the buffer, the pending index entries and the
 *   scan scratch are reused (a read allocates exactly one Buffer for its result).
 * - A quiet partition costs no buffers and no fds: they are allocated and opened by the first
 *   append or read, and releaseIdle() frees and closes them again.
 */
import fs from 'node:fs';
import path from 'node:path';
import { F_MAGIC, RECORD_MAGIC, RECORD_HEADER_BYTES, RECORD_MIN_LENGTH, readU32, recordOffset, recordTimestamp, sealRecords as sealRecordsInJs, stampOffsetAndTime } from '../protocol/record.js';
import { LogClosedError, LogError, StorageError, storageErrorFrom } from './errors.js';
import { CLEAN_SHUTDOWN_FILE, SYNCED_BELOW_FILE, findSegment, needsIndexEntry } from './layout.js';
import { channels } from '../common/diagnostics.js';
import { copyBytes } from '../common/copy-bytes.js';
import { writeFileAtomic } from '../common/atomic-file.js';
import { recoverLog, type RecoveryReport } from './recovery.js';
import { DamageRecord, type DamagedRange, type DamageReason } from './damage.js';
import { findResync, verifyStored, type ResyncHint } from './resync.js';
import { nativeIo } from '../common/native-io.js';
import { fsyncDir, Segment } from './segment.js';
import type { PartitionStore, ReadResult } from './store.js';
import { intOption, MAX_SEGMENT_BYTES, MODE_ALWAYS, storeLimits } from './options.js';
import { activeSegmentDue, appendTimestamp, checkAppendRange, checkReadOffset, closeSyncs, emptyRead, expiredSegmentCount, grownBuffer, lostRead, notWholeRecords, readByteBudget, rollsBefore, spanRecords, SyncSchedule, type RecordSpan, type RetentionLimits } from './store-rules.js';

export type { FsyncPolicy } from '../common/fsync.js';
import type { FsyncPolicy } from '../common/fsync.js';

export interface LogOptions {
  /** Partition directory; created if missing. */
  dir: string;
  /** Roll to a new segment when a batch would take the active one past this size. Default 64 MiB, at most 2 GiB. */
  segmentBytes?: number;
  /** One sparse index entry per this many log bytes; the first record of a segment always gets one. Default 4096. */
  indexIntervalBytes?: number;
  fsync: FsyncPolicy;
  /** applyRetention deletes the oldest whole segments while the log's total size exceeds this (never the active one). */
  retentionBytes?: number;
  /**
   * applyRetention deletes whole segments whose newest record is older than now - retentionMs. The
   * active segment is rolled first when all of it has expired, so a topic that stopped receiving is
   * trimmed too.
   */
  retentionMs?: number;
  /**
   * applyRetention rolls the active segment once its first record is this old (Kafka's
   * `segment.ms`), so that time-based retention can delete a busy log's old records segment by
   * segment. Default: a quarter of retentionMs, at most 7 days; without retentionMs, never.
   */
  segmentMs?: number;
  /** Group-commit buffer size (default 1 MiB). It grows to fit what is appended between flushes; see `shouldFlush`. */
  writeBufferBytes?: number;
  /**
   * Drop-behind: keep about this many of the partition's newest bytes in the OS page cache and drop
   * older pages once written back (default 32 MiB; 0 leaves the page cache to the kernel). Needs the
   * native helper (src/common/native-io.ts); without it this does nothing.
   */
  pageCacheBytes?: number;
  /** Clock in ms (injectable for tests). Default Date.now. */
  now?: () => number;
  /** Which partition this is: added to what the log publishes on diagnostics channels. */
  topic?: string;
  partition?: number;
  /**
   * The previous writer, in this process, closed the log with `close({ handOver: true })` a moment
   * ago (a partition moving to another thread): open it as after a clean shutdown, although under
   * fsync 'never' that close leaves no marker. Never after a restart of the process.
   */
  handedOver?: boolean;
}

export type { RecoveryReport };

const MiB = 1024 * 1024;
const DEFAULT_INDEX_INTERVAL = 4096;
/**
 * The active segment's new index entries are written when this many are pending (≈ 256 KiB of log
 * at the default interval), not at every flush, which at low rates was an extra pwrite for many
 * requests. What a crash leaves unwritten costs nothing: recovery scans the last segment
 * from its start after an unclean stop and rewrites its index; close() writes the rest first.
 */
const INDEX_WRITE_BATCH = 64;
const DEFAULT_WRITE_BUFFER = MiB;
/**
 * Drop-behind's default window. On this project's VM every page-cache page beyond what the guest
 * touched lately costs a host fault at first touch, and recycled pages do not; 32 MiB holds a few
 * seconds of a busy partition's writes (docs/performance.md, "Page-cache drop-behind").
 */
const DEFAULT_PAGE_CACHE_BYTES = 32 * MiB;
const PAGE = 4096;
/** Sealed segments whose fd and index stay open for reads (least recently used are closed). */
const MAX_OPEN_SEALED = 8;
/** Pending index entry: part, relative offset, file position, timestamp. */
const PENDING_FIELDS = 4;
/** Index entries tried as resync points after damage before scanning bytes (see resync.ts). */
const RESYNC_HINTS = 64;
/**
 * The group-commit buffer, pending index entries and read scratch before their first use and after
 * releaseIdle(): an idle partition holds none of them.
 */
const UNALLOCATED = new Uint8Array(0);
const NO_PENDING = new Float64Array(0);
/**
 * CRC32C of every appended record: the native helper's (the CPU's crc32 instruction) when built.
 * In JavaScript it was a large share of the broker's CPU at max rate (docs/performance.md).
 */
const sealRecords: (b: Uint8Array, start: number, end: number) => number = nativeIo?.sealRecords ?? sealRecordsInJs;

export class PartitionLog implements PartitionStore {
  readonly recovery: RecoveryReport;

  private readonly dir: string;
  private readonly segmentBytes: number;
  private readonly indexInterval: number;
  private readonly fsyncMode: number;
  private readonly retention: RetentionLimits;
  private readonly writeBufferBytes: number;
  private readonly pageCacheBytes: number;
  private readonly now: () => number;

  /** Ascending by base offset; the last one is `active`. Never empty. */
  private segments: Segment[];
  private active: Segment;
  /** Sealed segments with an open fd and loaded index, least recently used first. */
  private readonly openSealed: Segment[] = [];

  private next: number;
  private durable: number;
  private readonly syncs: SyncSchedule;
  /** Timestamp of the newest appended record (buffered included), and of the newest durable one. */
  private lastTs: number;
  private durableLastTs: number;

  // ── group-commit buffer ────────────────────────────────────────────────────────────────────
  private buf: Uint8Array;
  private bufLen = 0;
  private bufRecords = 0;
  /**
   * Roll points: records from buffer position rollAt[k] on go to a new segment based at
   * rollBase[k]; rollPrevTs[k] is the newest timestamp before that point. Usually empty.
   */
  private readonly rollAt: number[] = [];
  private readonly rollBase: number[] = [];
  private readonly rollPrevTs: number[] = [];
  /** Index entries of buffered records, PENDING_FIELDS per entry; part 0 = active, k = rollAt[k-1]. */
  private pending = NO_PENDING;
  private pendingCount = 0;
  /**
   * What the last flush wrote is still in `buf` (from 0) until the next append overwrites it: bytes
   * [flushedPos, flushedPos + flushedLen) of flushedSeg. Reads of them (a caught-up consumer reading
   * the commit it is waiting for) are copied from there instead of read back with a pread.
   */
  private flushedSeg: Segment | null = null;
  private flushedPos = 0;
  private flushedLen = 0;
  /** Projected size and last index entry position of the segment the next append goes to. */
  private tailSize: number;
  private tailLastEntry: number;

  // ── read side ──────────────────────────────────────────────────────────────────────────────
  private scratch = UNALLOCATED;
  private readonly scratchBytes: number;
  /** Where the last read ended, so a sequential reader skips the index lookup and scan. */
  private hintSeg: Segment | null = null;
  private hintOffset = -1;
  private hintPos = 0;
  /** Where the last read ends (reused). */
  private readonly span: RecordSpan = { end: 0, count: 0 };

  private closed = false;
  private failure: LogError | null = null;
  /** Damaged regions found by recovery, reads and earlier runs (see damage.ts). */
  private readonly damage: DamageRecord;
  /** What every diagnostics message of this log starts with: its partition and directory. */
  private readonly labels: { dir: string; topic?: string; partition?: number | undefined };
  /**
   * Nothing was written to the active segment since a clean close left it whole and synced (or it
   * is empty): close() need not reopen it after releaseIdle() closed its fds. A flush clears it.
   */
  private activeSynced: boolean;

  // ── background sync of sealed segments ─────────────────────────────────────────────────────
  /** Every sealed segment below this offset is fdatasync'ed (persisted in SYNCED_BELOW_FILE). */
  private syncedBelow: number;
  /** Sealed segments whose background sync has not completed, oldest first. */
  private readonly unsynced: Segment[] = [];
  private sealSyncs: Promise<void> = Promise.resolve();
  /** A background sync failed: the recovery point stays where it is (close() retries synchronously). */
  private sealSyncFailed = false;

  // ── drop-behind ────────────────────────────────────────────────────────────────────────────
  /** A drop of the active segment's older pages is under way (one at a time). */
  private dropping = false;
  /** A drop failed: drop-behind is off for the rest of this log's life (the data is unaffected). */
  private dropFailed = false;

  private constructor(opts: LogOptions) {
    this.dir = opts.dir;
    const limits = storeLimits(opts);
    this.segmentBytes = limits.segmentBytes;
    this.indexInterval = intOption('indexIntervalBytes', opts.indexIntervalBytes, DEFAULT_INDEX_INTERVAL, 1, MAX_SEGMENT_BYTES);
    this.writeBufferBytes = intOption('writeBufferBytes', opts.writeBufferBytes, DEFAULT_WRITE_BUFFER, 1, MAX_SEGMENT_BYTES);
    this.retention = limits;
    this.fsyncMode = limits.fsyncMode;
    this.pageCacheBytes = nativeIo === null ? 0 : intOption('pageCacheBytes', opts.pageCacheBytes, DEFAULT_PAGE_CACHE_BYTES, 0, Number.MAX_SAFE_INTEGER);
    this.now = opts.now ?? Date.now;

    const recovered = recoverLog(this.dir, this.indexInterval, opts.handedOver === true);
    this.recovery = recovered.report;
    this.segments = recovered.segments;
    this.active = this.segments[this.segments.length - 1]!;
    this.next = this.durable = this.active.endOffset;
    this.lastTs = this.durableLastTs = Math.max(0, recovered.lastTimestamp);
    this.syncs = new SyncSchedule(limits.fsyncMode, limits.fsyncIntervalMs, this.durable, this.now());
    this.buf = UNALLOCATED; // allocated by the first append (reserve)
    this.tailSize = this.active.size;
    this.tailLastEntry = lastEntryPosition(this.active);
    this.scratchBytes = Math.min(MiB, Math.max(4096, 2 * this.indexInterval));
    // What a clean close left (under 'never', a hand-over's close syncs nothing), or an empty segment.
    this.activeSynced = this.active.size === 0 || (recovered.report.cleanShutdown && closeSyncs(opts.handedOver, this.fsyncMode));
    // Recovery trusted or validated-and-synced every sealed segment.
    this.syncedBelow = this.active.base;
    writeSyncedBelow(this.dir, this.syncedBelow);
    this.labels = opts.topic === undefined ? { dir: this.dir } : { topic: opts.topic, partition: opts.partition, dir: this.dir };
    this.damage = new DamageRecord(this.dir);
    for (const range of recovered.report.damage) this.recordDamage(range);
    const report = recovered.report;
    if (report.truncatedAtOffset !== null && channels.walTruncated.hasSubscribers) {
      channels.walTruncated.publish({ ...this.labels, segment: this.active.base, truncatedBytes: report.truncatedBytes, truncatedAtOffset: report.truncatedAtOffset });
    }
    this.damage.prune(this.logStartOffset);
  }

  /** Open (creating if needed) and recover the partition directory. See recovery.ts. */
  static open(opts: LogOptions): PartitionLog {
    return new PartitionLog(opts);
  }

  /** First offset still stored. */
  get logStartOffset(): number {
    return this.segments[0]!.base;
  }
  /** Offset the next appended record gets (log end offset, buffered records included). */
  get nextOffset(): number {
    return this.next;
  }
  /** Everything below has been written to the OS (and fdatasync'ed under 'always'); reads stop here. */
  get durableOffset(): number {
    return this.durable;
  }
  /** Everything below has been fdatasync'ed (lags durableOffset under 'never' and 'interval'). */
  get syncedOffset(): number {
    return this.syncs.synced;
  }
  get bufferedBytes(): number {
    return this.bufLen;
  }
  get bufferedRecords(): number {
    return this.bufRecords;
  }
  /** True once the buffer holds writeBufferBytes: the caller should flush before appending more. */
  get shouldFlush(): boolean {
    return this.bufLen >= this.writeBufferBytes;
  }
  /** Bytes stored in segment files (buffered records excluded). */
  get sizeBytes(): number {
    let total = 0;
    for (const s of this.segments) total += s.size;
    return total;
  }
  /** The error that left the log unusable for writes (a flush whose rollback failed), or null. */
  get failed(): LogError | null {
    return this.failure;
  }
  /** Base offsets of the segments, oldest first (the last is the active segment). */
  segmentBaseOffsets(): number[] {
    return this.segments.map((s) => s.base);
  }

  /**
   * Copy `count` producer-form records from `src[start, end)` into the group-commit buffer and stamp
   * them (offset, log-append timestamp, CRC32C) in the buffer; `src` is not modified. The records are
   * not readable until `flush()`. Throws LOG_BAD_ARGUMENT, leaving the log unchanged, when the range
   * does not hold exactly `count` whole records.
   */
  append(src: Uint8Array, start: number, end: number, count: number): { baseOffset: number; timestamp: number } {
    this.assertWritable();
    checkAppendRange(src, start, end, count);
    const bytes = end - start;
    const savedTailSize = this.tailSize;
    const savedTailLastEntry = this.tailLastEntry;
    const savedPending = this.pendingCount;
    if (this.bufLen === 0) this.flushedSeg = null; // buf is about to be overwritten
    const rolls = rollsBefore(this.tailSize, bytes, this.segmentBytes);
    if (rolls) {
      this.rollAt.push(this.bufLen);
      this.rollBase.push(this.next);
      this.rollPrevTs.push(this.lastTs);
      this.tailSize = 0;
      this.tailLastEntry = -1;
    }
    const part = this.rollAt.length;
    const partBase = part === 0 ? this.active.base : this.rollBase[part - 1]!;
    this.reserve(bytes);
    const buf = this.buf;
    copyBytes(buf, this.bufLen, src, start, end); // src is usually a ring entry: shared memory

    const ts = appendTimestamp(this.now(), this.lastTs);
    const interval = this.indexInterval;
    const stop = this.bufLen + bytes;
    let at = this.bufLen;
    let offset = this.next;
    let pos = this.tailSize;
    let lastEntry = this.tailLastEntry;
    let n = 0;
    while (at < stop) {
      const length = stop - at >= RECORD_HEADER_BYTES ? readU32(buf, at) : 0;
      if (length < RECORD_MIN_LENGTH || at + 4 + length > stop) break;
      stampOffsetAndTime(buf, at, offset, ts);
      if (needsIndexEntry(pos, lastEntry, interval)) {
        this.pushPending(part, offset - partBase, pos, ts);
        lastEntry = pos;
      }
      const size = 4 + length;
      at += size;
      pos += size;
      offset++;
      n++;
    }
    if (at !== stop || n !== count) {
      // Undo: nothing of this batch is kept (the copied bytes lie beyond bufLen).
      this.pendingCount = savedPending;
      if (rolls) {
        this.rollAt.pop();
        this.rollBase.pop();
        this.rollPrevTs.pop();
      }
      this.tailSize = savedTailSize;
      this.tailLastEntry = savedTailLastEntry;
      throw notWholeRecords(start, end, count, at - this.bufLen, n);
    }
    sealRecords(buf, this.bufLen, stop);
    const baseOffset = this.next;
    this.bufLen = stop;
    this.bufRecords += n;
    this.next = offset;
    this.lastTs = ts;
    this.tailSize = pos;
    this.tailLastEntry = lastEntry;
    return { baseOffset, timestamp: ts };
  }

  /**
   * Group commit: write everything appended since the last flush (one pwrite per segment touched:
   * one, or two when rolling), fdatasync under 'always', then write the new index entries. Returns
   * the new durableOffset.
   *
   * All-or-nothing: on failure every file is cut back to its size before this flush, the buffered
   * records are dropped (nextOffset returns to durableOffset) and STORAGE_FULL (ENOSPC/EDQUOT,
   * retryable) or STORAGE_ERROR is thrown. If that rollback itself fails, the log is marked failed:
   * every later write throws; close it and reopen (recovery repairs the files).
   */
  flush(): number {
    this.assertWritable();
    if (this.bufLen === 0) return this.durable;
    const original = this.active;
    if (original.fd < 0) this.reopenForFlush(); // closed by releaseIdle()
    this.activeSynced = false;
    const saved: Saved = {
      size: original.size,
      endOffset: original.endOffset,
      lastTimestamp: original.lastTimestamp,
      entries: original.index!.count,
      segments: this.segments.length,
    };
    const parts = this.rollAt.length;
    const always = this.fsyncMode === MODE_ALWAYS;
    let seg = original;
    let e = 0;
    const pending = this.pending;
    try {
      for (let p = 0; p <= parts; p++) {
        const from = p === 0 ? 0 : this.rollAt[p - 1]!;
        const to = p < parts ? this.rollAt[p]! : this.bufLen;
        const sealing = p < parts;
        if (p > 0) {
          seg = Segment.create(this.dir, this.rollBase[p - 1]!);
          this.segments.push(seg);
          this.active = seg;
          fsyncDir(this.dir);
        }
        if (to > from) seg.writeLog(this.buf, from, to - from, seg.size);
        if (always) seg.datasyncLog();
        const idx = seg.index!;
        for (; e < this.pendingCount && pending[e * PENDING_FIELDS] === p; e++) {
          const f = e * PENDING_FIELDS;
          idx.push(pending[f + 1]!, pending[f + 2]!, pending[f + 3]!);
        }
        // A segment being sealed gets all of its entries now (its background sync covers them).
        if (sealing || idx.count - seg.indexWritten >= INDEX_WRITE_BATCH) seg.writePendingIndex();
        if (to > from) {
          seg.size += to - from;
          seg.endOffset = sealing ? this.rollBase[p]! : this.next;
          seg.lastTimestamp = sealing ? this.rollPrevTs[p]! : this.lastTs;
        }
      }
    } catch (err) {
      throw this.rollback(err, original, saved);
    }
    this.durable = this.next;
    this.durableLastTs = this.lastTs;
    if (always) this.syncs.mark(this.durable, this.now());
    for (let i = saved.segments - 1; i < this.segments.length - 1; i++) {
      const sealed = this.segments[i]!;
      try {
        sealed.closeIndexFd();
      } catch {
        // Its index entries were written; a failing close(2) loses nothing that recovery cannot rebuild.
      }
      this.touchSealed(sealed);
      this.syncInBackground(sealed);
    }
    if (!this.dropping && this.dropDue()) this.dropBehind();
    const written = this.buf;
    const writtenLen = this.bufLen;
    this.resetBuffer();
    // Only a flush into one segment (no roll) and a buffer kept as it is: the common case.
    this.flushedSeg = parts === 0 && this.buf === written ? original : null;
    this.flushedPos = saved.size;
    this.flushedLen = writtenLen;
    return this.durable;
  }

  /** Under 'interval': fdatasync when something was written since the last sync and intervalMs has passed. */
  maybeSync(now?: number): boolean {
    this.assertWritable();
    const t = this.syncs.dueNow(this.durable, now, this.now);
    if (t === null) return false;
    this.syncActive(t);
    return true;
  }

  /**
   * When maybeSync() next has work: under `interval`, with records not yet synced, the time their
   * sync falls due; otherwise Infinity. A host that sleeps must wake by then to keep the promise
   * "an fdatasync at least every intervalMs".
   */
  syncDueAt(): number {
    return this.syncs.dueAt(this.durable);
  }

  /** fdatasync the active segment now (sealed segments are synced in the background after a roll). */
  sync(): void {
    this.assertWritable();
    this.syncActive(this.now());
  }

  /**
   * Read whole stored records from `offset`: at most `maxBytes` (but always the whole first record,
   * however large) and at most `maxRecords` (at least 1), from a single segment, never past
   * durableOffset. `offset === durableOffset` gives an empty result; below logStartOffset or above
   * durableOffset throws OFFSET_OUT_OF_RANGE with details {offset, start, end}.
   *
   * With `into`, records are read into it when they fit (the result is then a view of `into`, valid
   * until the caller reuses it): a caller that copies the records on at once (the partition actor,
   * into its output ring) allocates nothing per read.
   */
  read(offset: number, maxBytes: number, maxRecords: number, into?: Uint8Array): ReadResult {
    this.assertOpen();
    checkReadOffset(offset, this.logStartOffset, this.durable);
    if (offset === this.durable) return emptyRead(offset);
    const known = this.damage.map.size === 0 ? null : this.damage.map.find(offset);
    if (known !== null) return lostRead(offset, known.to);
    const seg = this.segments[findSegment(this.segments, offset)]!;
    this.ensureReadable(seg);
    const pos = this.locate(seg, offset);
    if (pos < 0) return lostRead(offset, this.damage.map.find(offset)!.to);
    const avail = seg.size - pos;
    const want = Math.min(avail, readByteBudget(maxBytes));
    let out: Uint8Array = into !== undefined && into.length >= want ? into : Buffer.allocUnsafeSlow(want);
    let n = this.readAt(seg, out, want, pos);
    const first = n >= RECORD_HEADER_BYTES ? 4 + readU32(out, 0) : 0;
    if (first < RECORD_HEADER_BYTES || first > avail || recordOffset(out, 0) !== offset) {
      return lostRead(offset, this.damageAt(seg, pos, offset, first > avail ? 'TORN' : 'CORRUPT').to);
    }
    if (first > n) {
      out = Buffer.allocUnsafeSlow(first);
      n = this.readAt(seg, out, first, pos);
    }
    // Walk lengths through a plain Uint8Array view: readU32 stays monomorphic (a Buffer argument
    // here would make the shared helper polymorphic and this loop several times slower).
    const view = new Uint8Array(out.buffer, out.byteOffset, n);
    const span = this.span;
    spanRecords(view, first, n, maxRecords, span);
    let used = span.end;
    let count = span.count;
    // Every record served is checked (CRC, framing, offset): a changed byte is never data. Serve
    // the good ones before a bad one; the next read, at the bad one, reports the damage.
    const good = verifyStored(view, 0, used, offset);
    if (good < count) {
      if (good === 0) return lostRead(offset, this.damageAt(seg, pos, offset, 'CORRUPT').to);
      used = 0;
      for (let i = 0; i < good; i++) used += 4 + readU32(view, used);
      count = good;
    }
    this.hintSeg = seg;
    this.hintOffset = offset + count;
    this.hintPos = pos + used;
    return { records: used === out.length ? out : out.subarray(0, used), count, nextOffset: offset + count, lost: null };
  }

  /** Damaged ranges found so far (by recovery, reads and earlier runs), oldest offset first. */
  damagedRanges(): readonly DamagedRange[] {
    return this.damage.map.all;
  }

  /** First offset whose timestamp >= ts (durableOffset if none): segment by newest timestamp, index entry, then a scan. */
  offsetForTimestamp(ts: number): number {
    this.assertOpen();
    let seg: Segment | null = null;
    for (const s of this.segments) {
      if (s.size > 0 && s.lastTimestamp >= ts) {
        seg = s;
        break;
      }
    }
    if (seg === null) return this.durable;
    this.ensureReadable(seg);
    const idx = seg.index!;
    const j = idx.lastBeforeTimestamp(ts);
    const pos = j >= 0 ? idx.position(j) : 0;
    const off = j >= 0 ? seg.base + idx.relOffset(j) : seg.base;
    this.walk(seg, pos, off, seg === this.active ? this.durable : seg.endOffset, ts);
    return Math.min(this.walkOffset, this.durable);
  }

  /**
   * Delete whole old segments, never the active one: the oldest while the total size exceeds
   * retentionBytes, then those whose newest record is older than now - retentionMs. Returns the
   * number deleted; logStartOffset moves to the first remaining segment.
   */
  applyRetention(now?: number): number {
    this.assertWritable();
    const t = now ?? this.now();
    const active = this.active;
    if (this.bufLen === 0 && active.size > 0 && active.index!.count > 0 && activeSegmentDue(active.index!.timestamp(0), active.lastTimestamp, this.retention, t)) {
      this.roll();
    }
    const deleted = expiredSegmentCount(this.segments, this.retention, t);
    for (let i = 0; i < deleted; i++) this.deleteOldest();
    if (deleted > 0) fsyncDir(this.dir);
    return deleted;
  }

  /**
   * Seal the active segment and start an empty one at nextOffset (nothing may be buffered). A
   * failure (say ENOSPC creating the file) leaves the log as it was; the roll is tried again at the
   * next retention check.
   */
  private roll(): void {
    const sealed = this.active;
    let seg: Segment | null = null;
    try {
      if (sealed.fd < 0 || sealed.indexFd < 0) this.openActive(); // closed by releaseIdle()
      sealed.writePendingIndex();
      seg = Segment.create(this.dir, this.next);
      fsyncDir(this.dir);
    } catch (err) {
      if (seg !== null) {
        try {
          seg.deleteFiles();
        } catch {
          // recovery removes an empty segment's files if this fails too
        }
      }
      if (channels.walSyncFailed.hasSubscribers) channels.walSyncFailed.publish({ ...this.labels, segment: sealed.base, error: err });
      return;
    }
    this.segments.push(seg);
    this.active = seg;
    this.tailSize = 0;
    this.tailLastEntry = -1;
    this.flushedSeg = null;
    try {
      sealed.closeIndexFd();
    } catch {
      // its entries were written; recovery rebuilds an index it cannot trust
    }
    this.touchSealed(sealed);
    this.syncInBackground(sealed);
  }

  /**
   * Flush, fdatasync the active segment (whatever the policy), close every fd and leave the
   * clean-shutdown marker (so the next open trusts the last segment up to its last index entry).
   * Idempotent. If the flush fails, the fds are still closed, no marker is written and the error is
   * thrown. `handOver` (the log is reopened at once by another thread of this process, with
   * `handedOver`): under fsync 'never' only flush and close, as the policy promises nothing more
   * and an fdatasync of everything the page cache holds can take a second at high rates.
   */
  close(opts: { handOver?: boolean } = {}): void {
    if (this.closed) return;
    const syncing = closeSyncs(opts.handOver, this.fsyncMode);
    let error: unknown = null;
    if (this.failure === null) {
      try {
        this.flush();
        // Closed by releaseIdle() with writes not yet synced (or index entries not yet written).
        if (this.active.fd < 0 && !this.activeSynced) this.openActive();
        // Closed by releaseIdle(), and nothing written since a clean close: nothing to write or sync.
        const released = this.active.fd < 0;
        if (!released) this.active.writePendingIndex(); // a clean close (or hand-over) is trusted up to its last entry
        if (syncing) {
          this.syncSealedNow();
          if (!released) {
            this.active.datasyncLog();
            this.active.datasyncIndex();
          }
          this.syncs.synced = this.durable;
        }
      } catch (err) {
        error = err;
      }
    }
    try {
      this.closeAll();
    } catch (err) {
      error ??= err;
    }
    if (error === null && syncing) {
      const marker = path.join(this.dir, CLEAN_SHUTDOWN_FILE);
      try {
        // Written only after the fdatasyncs above, so it can never be durable before the data is.
        fs.writeFileSync(marker, '');
      } catch (err) {
        error = storageErrorFrom(err, 'create', marker);
      }
    }
    if (error !== null) throw error;
  }

  /**
   * The partition is quiet: free the group-commit buffer, the pending index entries and the read
   * scratch, and close the fds of the active segment and of the sealed segments kept open for
   * reads. The next append, flush, sync or read allocates and reopens what it needs, and so does
   * close() when there is something to sync (no fdatasync here: after a burst under 'never' one
   * could take seconds, on the gateway's thread). Does nothing while records are buffered or after
   * a failed flush.
   */
  releaseIdle(): void {
    if (this.closed || this.failure !== null || this.bufLen > 0) return;
    this.buf = UNALLOCATED;
    this.pending = NO_PENDING;
    this.scratch = UNALLOCATED;
    this.flushedSeg = null;
    for (const seg of this.openSealed) {
      seg.closeFds();
      seg.index = null;
    }
    this.openSealed.length = 0;
    this.active.closeFds();
  }

  /** What the log holds now: bytes of its buffers (group commit, pending index entries, read scratch) and open fds. */
  heldResources(): { bytes: number; fds: number } {
    let fds = 0;
    for (const seg of this.segments) fds += (seg.fd >= 0 ? 1 : 0) + (seg.indexFd >= 0 ? 1 : 0);
    return { bytes: this.buf.byteLength + this.pending.byteLength + this.scratch.byteLength, fds };
  }

  /** Close every fd without flushing: buffered records are lost (what a crash would do). Idempotent. */
  destroy(): void {
    if (this.closed) return;
    this.resetBuffer();
    this.next = this.durable;
    try {
      this.closeAll();
    } catch {
      // destroy never throws
    }
  }

  // ── internals ─────────────────────────────────────────────────────────────────────────────

  private assertOpen(): void {
    if (this.closed) throw new LogClosedError();
  }

  private assertWritable(): void {
    if (this.closed) throw new LogClosedError();
    if (this.failure !== null) throw this.failure;
  }

  private reserve(extra: number): void {
    const need = this.bufLen + extra;
    if (need <= this.buf.length) return;
    this.buf = grownBuffer(this.buf, this.bufLen, need, this.writeBufferBytes);
  }

  private pushPending(part: number, rel: number, pos: number, ts: number): void {
    let f = this.pendingCount * PENDING_FIELDS;
    if (f + PENDING_FIELDS > this.pending.length) {
      const next = new Float64Array(Math.max(PENDING_FIELDS * 1024, this.pending.length * 2));
      next.set(this.pending);
      this.pending = next;
    }
    const p = this.pending;
    p[f++] = part;
    p[f++] = rel;
    p[f++] = pos;
    p[f] = ts;
    this.pendingCount++;
  }

  /** Forget the buffered records (after a flush wrote them, or a failed one dropped them). */
  private resetBuffer(): void {
    this.bufLen = 0;
    this.bufRecords = 0;
    this.pendingCount = 0;
    this.rollAt.length = 0;
    this.rollBase.length = 0;
    this.rollPrevTs.length = 0;
    // A huge batch may have grown the buffer; do not keep that memory forever.
    if (this.buf.length > 4 * this.writeBufferBytes) this.buf = new Uint8Array(this.writeBufferBytes);
  }

  /** Undo a failed flush: remove created segments, cut the original active segment back. */
  private rollback(cause: unknown, original: Segment, saved: Saved): LogError {
    const error = storageErrorFrom(cause, 'flush', original.logPath);
    if (channels.walWriteFailed.hasSubscribers) channels.walWriteFailed.publish({ ...this.labels, code: error.code, message: error.message, records: this.next - this.durable });
    try {
      let removed = false;
      while (this.segments.length > saved.segments) {
        this.segments.pop()!.deleteFiles();
        removed = true;
      }
      this.active = original;
      original.openIndexForAppend();
      original.truncateLog(saved.size);
      original.index!.truncate(saved.entries);
      original.truncateIndexFile(saved.entries);
      original.size = saved.size;
      original.endOffset = saved.endOffset;
      original.lastTimestamp = saved.lastTimestamp;
      if (removed) fsyncDir(this.dir);
    } catch (err) {
      // The message and details name what failed first (errno, file), for the answer a client gets.
      this.failure = new StorageError(
        `flush failed (${error.code}: ${error.message}) and could not be rolled back (${(err as Error)?.message ?? String(err)}); close and reopen the log to recover it`,
        { flushError: error.code, dir: this.dir, ...error.details },
        err,
      );
    }
    this.resetBuffer();
    this.next = this.durable;
    this.lastTs = this.durableLastTs;
    this.tailSize = this.active.size;
    this.tailLastEntry = lastEntryPosition(this.active);
    return this.failure ?? error;
  }

  /**
   * fdatasync a just-sealed segment off the thread, then advance the recovery point past it. One at
   * a time in roll order, so the point only moves over a prefix of synced segments.
   */
  private syncInBackground(seg: Segment): void {
    this.unsynced.push(seg);
    const end = seg.endOffset;
    this.sealSyncs = this.sealSyncs.then(async () => {
      if (this.closed || this.sealSyncFailed) return;
      try {
        await seg.datasyncAsync();
      } catch (err) {
        // ENOENT: retention already deleted it, nothing left to sync.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
          this.sealSyncFailed = true;
          if (channels.walSyncFailed.hasSubscribers) channels.walSyncFailed.publish({ ...this.labels, segment: seg.base, error: err });
          return;
        }
      }
      if (this.closed) return;
      this.unsynced.shift();
      this.syncedBelow = end;
      await writeSyncedBelowAsync(this.dir, end);
      if (this.pageCacheBytes > 0 && !this.dropFailed) await this.dropCached(seg, seg.size - this.pageCacheBytes, false);
    });
  }

  /** The active segment holds a step (a quarter window, at least 1 MiB) more than the window cached. */
  private dropDue(): boolean {
    const window = this.pageCacheBytes;
    return window > 0 && !this.dropFailed && this.active.size - this.active.cachedFrom >= window + Math.max(MiB, window >> 2);
  }

  /**
   * Drop the active segment's pages older than its newest pageCacheBytes, off the thread; again at
   * once if the flushes meanwhile made another drop due (a burst ends with its window, not all of it).
   */
  private dropBehind(): void {
    this.dropping = true;
    // Under 'always' every byte written is already synced: drop without another fdatasync.
    void this.dropCached(this.active, this.active.size - this.pageCacheBytes, this.fsyncMode !== MODE_ALWAYS).finally(() => {
      this.dropping = false;
      if (!this.closed && this.dropDue()) this.dropBehind();
    });
  }

  /**
   * Sync (if `sync`) and drop seg's cached pages in [seg.cachedFrom, upTo rounded down to a page),
   * through an fd of its own so the segment's may close meanwhile. A failure turns drop-behind off
   * and is published on `weir:wal:sync-failed`; ENOENT (retention deleted the file) is not one.
   */
  private async dropCached(seg: Segment, upTo: number, sync: boolean): Promise<void> {
    const end = upTo - (upTo % PAGE);
    if (end <= seg.cachedFrom || nativeIo === null) return;
    let fh: fs.promises.FileHandle | null = null;
    try {
      fh = await fs.promises.open(seg.logPath, 'r');
      await nativeIo.dropCache(fh.fd, seg.cachedFrom, end - seg.cachedFrom, sync);
      seg.cachedFrom = end;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      this.dropFailed = true;
      if (channels.walSyncFailed.hasSubscribers) channels.walSyncFailed.publish({ ...this.labels, segment: seg.base, error: err });
    } finally {
      // Read-only: nothing a failing close(2) could lose.
      await fh?.close().catch(() => undefined);
    }
  }

  /** Synchronously fdatasync sealed segments whose background sync has not completed (close). */
  private syncSealedNow(): void {
    for (const seg of this.unsynced) {
      if (seg.deleted) continue;
      syncFileByPath(seg.logPath);
      syncFileByPath(seg.indexPath);
    }
    this.unsynced.length = 0;
    this.syncedBelow = this.active.base;
    writeSyncedBelow(this.dir, this.syncedBelow);
  }

  /** Resolves when every background sync scheduled so far has settled (tests, benchmarks). */
  whenSealedSynced(): Promise<number> {
    return this.sealSyncs.then(() => this.syncedBelow);
  }

  private syncActive(now: number): void {
    if (this.active.fd < 0) this.openActive(); // closed by releaseIdle()
    this.active.datasyncLog();
    this.syncs.mark(this.durable, now);
  }

  /** Reopen the active segment's fds after releaseIdle(). */
  private openActive(): void {
    const seg = this.active;
    try {
      seg.openLog('r+');
      seg.openIndexForAppend();
    } catch (err) {
      try {
        seg.closeFds();
      } catch {
        // the open's error is the one to report
      }
      throw err;
    }
  }

  /**
   * openActive() for a flush. If it fails (EMFILE, say) nothing was written: the buffered records
   * are dropped, as a failed flush drops them, and the storage error is thrown.
   */
  private reopenForFlush(): void {
    try {
      this.openActive();
    } catch (err) {
      this.resetBuffer();
      this.next = this.durable;
      this.lastTs = this.durableLastTs;
      this.tailSize = this.active.size;
      this.tailLastEntry = lastEntryPosition(this.active);
      throw err;
    }
  }

  /** Open a sealed segment's fd and index for reading, keeping at most MAX_OPEN_SEALED open. */
  private ensureReadable(seg: Segment): void {
    if (this.scratch === UNALLOCATED) this.scratch = new Uint8Array(this.scratchBytes);
    if (seg === this.active) {
      if (seg.fd < 0) this.openActive(); // closed by releaseIdle()
      return;
    }
    const lru = this.openSealed;
    const i = lru.indexOf(seg);
    if (i >= 0) {
      for (let k = i; k < lru.length - 1; k++) lru[k] = lru[k + 1]!;
      lru[lru.length - 1] = seg;
      return;
    }
    seg.openLog('r');
    seg.loadIndex();
    this.touchSealed(seg);
  }

  private touchSealed(seg: Segment): void {
    const lru = this.openSealed;
    if (!lru.includes(seg)) lru.push(seg);
    while (lru.length > MAX_OPEN_SEALED) {
      const old = lru.shift()!;
      old.closeFds();
      old.index = null;
    }
  }

  /** `length` bytes of `seg` from `pos` into `out` (from 0): from the last flush's buffer when it holds them all. */
  private readAt(seg: Segment, out: Uint8Array, length: number, pos: number): number {
    const from = pos - this.flushedPos;
    if (seg === this.flushedSeg && from >= 0 && from + length <= this.flushedLen) {
      out.set(this.buf.subarray(from, from + length));
      return length;
    }
    return seg.readAt(out, 0, length, pos);
  }

  /**
   * File position of the record `offset` (which must be in `seg` and below durableOffset), or -1
   * when it lies in a damaged region (then recorded in the damage map).
   */
  private locate(seg: Segment, offset: number): number {
    if (this.hintSeg === seg && this.hintOffset === offset) return this.hintPos;
    const idx = seg.index!;
    const i = idx.floorByOffset(offset - seg.base);
    let pos = i >= 0 ? idx.position(i) : 0;
    let off = i >= 0 ? seg.base + idx.relOffset(i) : seg.base;
    if (this.damage.map.size > 0) ({ position: pos, offset: off } = this.damage.map.skip(seg.base, pos, off, offset));
    return this.walk(seg, pos, off, offset, Infinity);
  }

  /**
   * Walk the records of `seg` from the one at `pos` (offset `off`) until offset `target` or the
   * first record whose timestamp is >= `ts`; returns its position and leaves its offset in
   * `walkOffset`. Every record passed is checked (length, magic, offset, CRC), so a walk never
   * steps through damage: it records it (damageAt) and jumps past it. Returns -1 when `target`
   * itself lies in the damaged region.
   */
  private walk(seg: Segment, pos: number, off: number, target: number, ts: number): number {
    const end = seg.size;
    const scratch = this.scratch;
    while (off < target) {
      const n = pos < end ? this.readAt(seg, scratch, Math.min(scratch.length, end - pos), pos) : 0;
      let at = 0;
      let bad = n < RECORD_HEADER_BYTES;
      while (off < target && at + RECORD_HEADER_BYTES <= n) {
        let size = checkedRecordSize(scratch, at, n, end - pos - at, off);
        if (size < 0) {
          if (at > 0) break; // read again from this record
          size = this.recordSizeIfValid(seg, pos, off); // longer than the scratch: check it on its own
        }
        if (size === 0) {
          bad = true;
          break;
        }
        if (ts !== Infinity && recordTimestamp(scratch, at) >= ts) {
          this.walkOffset = off;
          return pos + at;
        }
        at += size;
        off++;
      }
      pos += at;
      if (bad && off < target) {
        const d = this.damageAt(seg, pos, off, n < RECORD_HEADER_BYTES ? 'TORN' : 'CORRUPT');
        if (target < d.to && ts === Infinity) return -1;
        pos = d.resumePosition;
        off = d.to;
      }
    }
    this.walkOffset = off;
    return pos;
  }
  /** Offset of the record walk() stopped at. */
  private walkOffset = 0;

  /** Size of the record at `pos` of `seg` if it is whole, carries `offset` and checks out; else 0. */
  private recordSizeIfValid(seg: Segment, pos: number, offset: number): number {
    const head = this.scratch;
    if (this.readAt(seg, head, RECORD_HEADER_BYTES, pos) < RECORD_HEADER_BYTES) return 0;
    const size = 4 + readU32(head, 0);
    if (size < RECORD_HEADER_BYTES || pos + size > seg.size) return 0;
    const whole = new Uint8Array(size);
    if (this.readAt(seg, whole, size, pos) < size) return 0;
    return verifyStored(whole, 0, size, offset) === 1 ? size : 0;
  }

  /**
   * The damaged region that starts at `position` of `seg`, where the record `offset` should be:
   * already known, or found now (resync at the next good record, see resync.ts), recorded durably
   * in the damage record and published on `weir:wal:damage`. Never throws for the damage itself.
   */
  private damageAt(seg: Segment, position: number, offset: number, reason: DamageReason): DamagedRange {
    const known = this.damage.map.find(offset);
    if (known !== null) return known;
    const active = seg === this.active;
    const endPosition = seg.size;
    const endOffset = active ? this.durable : seg.endOffset;
    const idx = seg.index!;
    const hints: ResyncHint[] = [];
    for (let k = Math.max(0, idx.floorByOffset(offset - seg.base)); k < idx.count && hints.length < RESYNC_HINTS; k++) {
      if (idx.position(k) > position) hints.push({ position: idx.position(k), offset: seg.base + idx.relOffset(k) });
    }
    const read = (out: Uint8Array, length: number, at: number): number => this.readAt(seg, out, length, at);
    const at = findResync(read, { buf: new Uint8Array(64 * 1024) }, position, offset, endPosition, endOffset, hints);
    const range: DamagedRange = {
      kind: 'damaged', segment: seg.base, position, resumePosition: at.position, bytes: at.position - position,
      from: offset, to: at.offset, reason, detectedBy: 'read', at: Date.now(),
    };
    this.recordDamage(range);
    return range;
  }

  private recordDamage(range: DamagedRange): void {
    const { added, writeError } = this.damage.add(range);
    if (added && range.kind === 'damaged' && channels.walDamage.hasSubscribers) channels.walDamage.publish({ ...this.labels, ...range });
    if (writeError !== null && channels.walSyncFailed.hasSubscribers) channels.walSyncFailed.publish({ ...this.labels, segment: range.segment, error: writeError });
  }

  private deleteOldest(): void {
    const seg = this.segments.shift()!;
    const i = this.openSealed.indexOf(seg);
    if (i >= 0) this.openSealed.splice(i, 1);
    if (this.hintSeg === seg) this.hintSeg = null;
    seg.deleteFiles();
    this.damage.prune(this.logStartOffset);
  }

  private closeAll(): void {
    this.closed = true;
    this.hintSeg = null;
    this.flushedSeg = null;
    this.openSealed.length = 0;
    let error: unknown = null;
    for (const s of this.segments) {
      try {
        s.closeFds();
      } catch (err) {
        error ??= err;
      }
    }
    if (error !== null) throw error;
  }
}

interface Saved {
  size: number;
  endOffset: number;
  lastTimestamp: number;
  entries: number;
  segments: number;
}

/**
 * A walk's check of the record at `b[at]` (its header in `b[at, n)`, `left` bytes of the segment
 * from it): its size when its length fits the segment, its magic is right, it carries `offset` and
 * its CRC matches; 0 when not; -1 when its header checks out but it runs past the chunk (`n`).
 */
function checkedRecordSize(b: Uint8Array, at: number, n: number, left: number, offset: number): number {
  const size = 4 + readU32(b, at);
  if (size < RECORD_HEADER_BYTES || size > left || b[at + F_MAGIC] !== RECORD_MAGIC || recordOffset(b, at) !== offset) return 0;
  if (at + size > n) return -1;
  return verifyStored(b, at, at + size, offset) === 1 ? size : 0;
}

function lastEntryPosition(seg: Segment): number {
  const idx = seg.index!;
  return idx.count > 0 ? idx.position(idx.count - 1) : -1;
}


/** Write the recovery point (temp file + rename; a lost update only makes recovery check more). */
function writeSyncedBelow(dir: string, offset: number): void {
  const file = path.join(dir, SYNCED_BELOW_FILE);
  try {
    writeFileAtomic(file, String(offset), { durable: false });
  } catch (err) {
    throw storageErrorFrom(err, 'write', file);
  }
}

async function writeSyncedBelowAsync(dir: string, offset: number): Promise<void> {
  const file = path.join(dir, SYNCED_BELOW_FILE);
  try {
    await fs.promises.writeFile(file + '.bg.tmp', String(offset));
    await fs.promises.rename(file + '.bg.tmp', file);
  } catch {
    // The point stays behind: recovery validates a little more. close() rewrites it.
  }
}

function syncFileByPath(file: string): void {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw storageErrorFrom(err, 'open', file);
  }
  try {
    fs.fdatasyncSync(fd);
  } catch (err) {
    throw storageErrorFrom(err, 'fdatasync', file);
  } finally {
    fs.closeSync(fd);
  }
}
