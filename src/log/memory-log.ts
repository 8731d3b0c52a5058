/**
 * MemoryLog: a PartitionStore (store.ts) that keeps a partition's records in memory, beside the file
 * store PartitionLog as the NATS server's memstore is beside its filestore. Same offsets, log-append
 * timestamps, group commit, read limits, segments, retention, fsync bookkeeping and error codes, and
 * byte for byte the same stored records (stamped and CRC-sealed by protocol/record.ts), so a reader
 * cannot tell the two apart; test/log/store-contract.test.ts holds both to that. For tests that need
 * a partition's log but not its files (test/support/partition-core.ts). Nothing outlives the object.
 *
 * - Segments are kept as the file store keeps them (rolled before a batch that would take a
 *   non-empty one past segmentBytes; a batch never splits), because a read ends at its segment's
 *   end and retention deletes whole segments: both stores answer with the same offsets.
 * - "Synced" is bookkeeping: the fsync policy moves syncedOffset and syncDueAt() exactly as the file
 *   store's fdatasyncs would, so a host's interval wake-ups can be tested without a disk.
 * - flush() cannot fail (no STORAGE_FULL / STORAGE_ERROR); damage only exists when a test asks for
 *   it (simulateDamage), and then only reads see it.
 */
import { copyBytes } from '../common/copy-bytes.js';
import { RECORD_HEADER_BYTES, RECORD_MIN_LENGTH, readU32, recordTimestamp, sealRecords, stampOffsetAndTime } from '../protocol/record.js';
import { DamageMap } from './damage.js';
import { LogArgumentError, LogClosedError } from './errors.js';
import { findSegment } from './layout.js';
import { MODE_ALWAYS, storeLimits } from './options.js';
import type { LogOptions } from './partition-log.js';
import type { PartitionStore, ReadResult, StoreRecovery } from './store.js';
import { EMPTY_RECORDS, type RetentionLimits, activeSegmentDue, appendTimestamp, checkAppendRange, checkReadOffset, closeSyncs, emptyRead, expiredSegmentCount, grownBuffer, lostRead, notWholeRecords, readByteBudget, rollsBefore, spanRecords, SyncSchedule, type RecordSpan } from './store-rules.js';

/** PartitionLog's options that mean something without files (same defaults and checks). */
export type MemoryLogOptions = Pick<LogOptions, 'fsync' | 'segmentBytes' | 'retentionBytes' | 'retentionMs' | 'segmentMs' | 'now'>;

/** A released buffer (zero-length: nothing to own). */
const EMPTY = EMPTY_RECORDS;
const INITIAL_BUFFER = 64 * 1024;

class MemorySegment {
  bytes: Uint8Array = EMPTY;
  size = 0;
  /** Position of each record in `bytes`, by offset - base. */
  readonly positions: number[] = [];

  constructor(readonly base: number) {}

  get count(): number {
    return this.positions.length;
  }

  timestamp(i: number): number {
    return recordTimestamp(this.bytes, this.positions[i]!);
  }

  /** Timestamp of the newest record; -Infinity when empty (older than any retention cutoff). */
  get lastTimestamp(): number {
    return this.positions.length === 0 ? -Infinity : this.timestamp(this.positions.length - 1);
  }

  /** Append src[from, to) (whole records whose positions were pushed already). */
  write(src: Uint8Array, from: number, to: number): void {
    const need = this.size + to - from;
    if (need > this.bytes.length) {
      const grown = new Uint8Array(Math.max(need, 2 * this.bytes.length, 4096));
      grown.set(this.bytes.subarray(0, this.size));
      this.bytes = grown;
    }
    copyBytes(this.bytes, this.size, src, from, to);
    this.size = need;
  }
}

export class MemoryLog implements PartitionStore {
  /** Nothing to recover: a memory store always opens empty. */
  readonly recovery: StoreRecovery = { truncatedBytes: 0, truncatedAtOffset: null, damage: [] };

  private readonly segmentBytes: number;
  private readonly retention: RetentionLimits;
  private readonly fsyncMode: number;
  private readonly syncs: SyncSchedule;
  private readonly now: () => number;

  /** Ascending by base; the last is the active one. Never empty. */
  private readonly segments: MemorySegment[] = [new MemorySegment(0)];
  private next = 0;
  private durable = 0;
  /** Timestamp of the newest appended record (buffered included). */
  private lastTs = 0;

  // group commit: stamped records not yet flushed
  private buf: Uint8Array = EMPTY;
  private bufLen = 0;
  /** Offsets at which a buffered batch starts a new segment (the roll is decided at append). */
  private readonly rolls: number[] = [];
  /** Projected size of the segment the next append goes to. */
  private tailSize = 0;

  private closed = false;
  /** Regions a test marked lost (simulateDamage). */
  private readonly damage = new DamageMap();
  /** Where the last read ends (reused). */
  private readonly span: RecordSpan = { end: 0, count: 0 };

  constructor(opts: MemoryLogOptions) {
    const limits = storeLimits(opts);
    this.segmentBytes = limits.segmentBytes;
    this.retention = limits;
    this.fsyncMode = limits.fsyncMode;
    this.now = opts.now ?? Date.now;
    this.syncs = new SyncSchedule(limits.fsyncMode, limits.fsyncIntervalMs, 0, this.now());
  }

  get logStartOffset(): number {
    return this.segments[0]!.base;
  }
  get nextOffset(): number {
    return this.next;
  }
  get durableOffset(): number {
    return this.durable;
  }
  get syncedOffset(): number {
    return this.syncs.synced;
  }

  private get active(): MemorySegment {
    return this.segments[this.segments.length - 1]!;
  }

  append(src: Uint8Array, start: number, end: number, count: number): { baseOffset: number; timestamp: number } {
    this.assertOpen();
    checkAppendRange(src, start, end, count);
    const bytes = end - start;
    this.reserve(bytes);
    const buf = this.buf;
    copyBytes(buf, this.bufLen, src, start, end);
    const ts = appendTimestamp(this.now(), this.lastTs);
    const stop = this.bufLen + bytes;
    let at = this.bufLen;
    let offset = this.next;
    let n = 0;
    while (at < stop) {
      const length = stop - at >= RECORD_HEADER_BYTES ? readU32(buf, at) : 0;
      if (length < RECORD_MIN_LENGTH || at + 4 + length > stop) break;
      stampOffsetAndTime(buf, at, offset, ts);
      at += 4 + length;
      offset++;
      n++;
    }
    // Nothing is kept: the copied bytes lie beyond bufLen.
    if (at !== stop || n !== count) throw notWholeRecords(start, end, count, at - this.bufLen, n);
    sealRecords(buf, this.bufLen, stop);
    if (rollsBefore(this.tailSize, bytes, this.segmentBytes)) {
      this.rolls.push(this.next);
      this.tailSize = 0;
    }
    const baseOffset = this.next;
    this.tailSize += bytes;
    this.bufLen = stop;
    this.next = offset;
    this.lastTs = ts;
    return { baseOffset, timestamp: ts };
  }

  flush(): number {
    this.assertOpen();
    if (this.bufLen === 0) return this.durable;
    const buf = this.buf;
    let seg = this.active;
    let from = 0;
    let offset = this.durable;
    let r = 0;
    for (let at = 0; at < this.bufLen; offset++) {
      if (r < this.rolls.length && this.rolls[r] === offset) {
        seg.write(buf, from, at);
        from = at;
        seg = new MemorySegment(offset);
        this.segments.push(seg);
        r++;
      }
      seg.positions.push(seg.size + at - from);
      at += 4 + readU32(buf, at);
    }
    seg.write(buf, from, this.bufLen);
    this.resetBuffer();
    this.durable = this.next;
    if (this.fsyncMode === MODE_ALWAYS) this.syncs.mark(this.durable, this.now());
    return this.durable;
  }

  read(offset: number, maxBytes: number, maxRecords: number, into?: Uint8Array): ReadResult {
    this.assertOpen();
    checkReadOffset(offset, this.logStartOffset, this.durable);
    if (offset === this.durable) return emptyRead(offset);
    const damaged = this.damage.size > 0;
    const known = damaged ? this.damage.find(offset) : null;
    if (known !== null) return lostRead(offset, known.to);
    // Records before a damaged one are served; the next read, at it, reports the loss.
    if (damaged) maxRecords = Math.min(maxRecords, this.damage.nextFrom(offset) - offset);
    const seg = this.segments[findSegment(this.segments, offset)]!;
    const pos = seg.positions[offset - seg.base]!;
    const span = this.span;
    spanRecords(seg.bytes, pos + 4 + readU32(seg.bytes, pos), Math.min(seg.size, pos + readByteBudget(maxBytes)), maxRecords, span);
    const end = span.end;
    const count = span.count;
    const used = end - pos;
    const out = into !== undefined && into.length >= used ? into : Buffer.allocUnsafeSlow(used);
    out.set(seg.bytes.subarray(pos, end));
    return { records: used === out.length ? out : out.subarray(0, used), count, nextOffset: offset + count, lost: null };
  }

  offsetForTimestamp(ts: number): number {
    this.assertOpen();
    for (const seg of this.segments) {
      if (seg.count === 0 || seg.timestamp(seg.count - 1) < ts) continue;
      // Timestamps never decrease: the first record at or after ts by binary search.
      let lo = 0;
      let hi = seg.count - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (seg.timestamp(mid) >= ts) hi = mid;
        else lo = mid + 1;
      }
      return seg.base + lo;
    }
    return this.durable;
  }

  applyRetention(now?: number): number {
    this.assertOpen();
    const t = now ?? this.now();
    const active = this.active;
    if (this.bufLen === 0 && active.count > 0 && activeSegmentDue(active.timestamp(0), active.lastTimestamp, this.retention, t)) {
      this.segments.push(new MemorySegment(this.next));
      this.tailSize = 0;
    }
    const deleted = expiredSegmentCount(this.segments, this.retention, t);
    if (deleted > 0) {
      this.segments.splice(0, deleted);
      this.damage.prune(this.logStartOffset);
    }
    return deleted;
  }

  maybeSync(now?: number): boolean {
    this.assertOpen();
    const t = this.syncs.dueNow(this.durable, now, this.now);
    if (t === null) return false;
    this.syncs.mark(this.durable, t);
    return true;
  }

  syncDueAt(): number {
    return this.syncs.dueAt(this.durable);
  }

  releaseIdle(): void {
    if (this.closed || this.bufLen > 0) return;
    this.buf = EMPTY;
  }

  heldResources(): { bytes: number; fds: number } {
    return { bytes: this.buf.byteLength, fds: 0 };
  }

  close(opts: { handOver?: boolean } = {}): void {
    if (this.closed) return;
    this.flush();
    // As the file store: a close syncs everything, except a hand-over under 'never'.
    if (closeSyncs(opts.handOver, this.fsyncMode)) this.syncs.mark(this.durable, this.now());
    this.closed = true;
    this.buf = EMPTY;
  }

  destroy(): void {
    if (this.closed) return;
    this.resetBuffer();
    this.next = this.durable;
    this.closed = true;
    this.buf = EMPTY;
  }

  /** Base offsets of the segments, oldest first (the last is the active one). */
  segmentBaseOffsets(): number[] {
    return this.segments.map((s) => s.base);
  }

  /**
   * Test hook: offsets [from, to) of one segment are lost, as if their bytes had changed on disk.
   * A read at one of them answers `lost` and a read before them ends before them, as the file store
   * answers once it found such damage. The records stay in memory (offsetForTimestamp sees them).
   */
  simulateDamage(from: number, to: number): void {
    const seg = this.segments[findSegment(this.segments, from)];
    if (!(Number.isSafeInteger(from) && Number.isSafeInteger(to) && seg !== undefined && from >= this.logStartOffset && from < to && to <= Math.min(seg.base + seg.count, this.durable))) {
      throw new LogArgumentError('simulateDamage needs durable offsets [from, to) of one segment', { from, to });
    }
    const position = seg.positions[from - seg.base]!;
    const resumePosition = to - seg.base < seg.count ? seg.positions[to - seg.base]! : seg.size;
    this.damage.add({
      kind: 'damaged', segment: seg.base, position, resumePosition, bytes: resumePosition - position,
      from, to, reason: 'CORRUPT', detectedBy: 'read', at: Date.now(),
    });
  }

  private assertOpen(): void {
    if (this.closed) throw new LogClosedError();
  }

  private reserve(extra: number): void {
    const need = this.bufLen + extra;
    if (need <= this.buf.length) return;
    this.buf = grownBuffer(this.buf, this.bufLen, need, INITIAL_BUFFER);
  }

  private resetBuffer(): void {
    this.bufLen = 0;
    this.rolls.length = 0;
  }
}
