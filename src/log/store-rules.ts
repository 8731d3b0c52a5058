/**
 * The rules both partition stores (PartitionLog, MemoryLog) apply the same way, written once so
 * that the stores cannot drift apart: which offsets a read may ask for and how maxBytes/maxRecords
 * bound it, what an append range must be and when it rolls the segment, when an fdatasync falls
 * due, and which segments retention deletes. Pure: no IO, no clock.
 */
import { RECORD_HEADER_BYTES, readU32 } from '../protocol/record.js';
import { LogArgumentError, OffsetOutOfRangeError } from './errors.js';
import { MODE_INTERVAL, MODE_NEVER } from './options.js';
import type { ReadResult } from './store.js';

/** Shared by every empty read result (zero-length: nothing to own, do not transfer it). */
export const EMPTY_RECORDS: Uint8Array = Buffer.alloc(0);

// ── reads ────────────────────────────────────────────────────────────────────────────────────

/** A read may start anywhere in [start, end] (end: an empty result); OFFSET_OUT_OF_RANGE otherwise. */
export function checkReadOffset(offset: number, start: number, end: number): void {
  if (!Number.isSafeInteger(offset) || offset < start || offset > end) throw new OffsetOutOfRangeError(offset, start, end);
}

/** Nothing to read at `offset` (it is the durable end). */
export function emptyRead(offset: number): ReadResult {
  return { records: EMPTY_RECORDS, count: 0, nextOffset: offset, lost: null };
}

/** Offsets [from, to) are lost to damage; the reader continues at `to`. */
export function lostRead(from: number, to: number): ReadResult {
  return { records: EMPTY_RECORDS, count: 0, nextOffset: to, lost: { from, to } };
}

/** Bytes a read may return: maxBytes, and never less than a record header (the first record is whole however large). */
export function readByteBudget(maxBytes: number): number {
  return Math.max(maxBytes, RECORD_HEADER_BYTES);
}

/** Where the records a read serves end, and how many they are (filled by spanRecords; reused). */
export interface RecordSpan {
  end: number;
  count: number;
}

/**
 * The records a read serves from b: the first (ending at `firstEnd`, whole however large), then
 * each next record that lies whole before `limit` (the read's byte budget or the bytes at hand,
 * whichever ends first), at most `maxRecords` in all.
 */
export function spanRecords(b: Uint8Array, firstEnd: number, limit: number, maxRecords: number, span: RecordSpan): void {
  let end = firstEnd;
  let count = 1;
  while (count < maxRecords && end + 4 <= limit) {
    const after = end + 4 + readU32(b, end);
    if (after > limit) break;
    end = after;
    count++;
  }
  span.end = end;
  span.count = count;
}

// ── appends ──────────────────────────────────────────────────────────────────────────────────

/** An append takes a non-empty range of src and count > 0; LOG_BAD_ARGUMENT otherwise. */
export function checkAppendRange(src: Uint8Array, start: number, end: number, count: number): void {
  if (!(start >= 0 && end <= src.length && end - start > 0 && count > 0)) {
    throw new LogArgumentError('append needs a non-empty range of src and count > 0', { start, end, count, length: src.length });
  }
}

/**
 * The append range [start, end) was not `count` whole records: the walk stopped at byte `stoppedAt`
 * of the range (the end when the count was wrong) after `found` records.
 */
export function notWholeRecords(start: number, end: number, count: number, stoppedAt: number, found: number): LogArgumentError {
  return new LogArgumentError(
    stoppedAt !== end - start
      ? `append range is not a sequence of whole records (record ${found} at byte ${stoppedAt + start})`
      : `append range holds ${found} records, not ${count}`,
    { start, end, count, found },
  );
}

/** One log-append timestamp per append: the clock in whole ms, never below the previous one. */
export function appendTimestamp(clock: number, lastTimestamp: number): number {
  const ms = Math.floor(clock);
  return ms > lastTimestamp ? ms : lastTimestamp;
}

/**
 * A batch of `bytes` starts a new segment when it would take a non-empty one past segmentBytes (a
 * batch never splits; one larger than segmentBytes still goes whole into an empty segment).
 */
export function rollsBefore(tailSize: number, bytes: number, segmentBytes: number): boolean {
  return tailSize > 0 && tailSize + bytes > segmentBytes;
}

/** `buf` (of which `used` bytes matter) grown to hold `need` bytes: doubled, at least `minBytes`. */
export function grownBuffer(buf: Uint8Array, used: number, need: number, minBytes: number): Uint8Array {
  let cap = Math.max(minBytes, buf.length * 2);
  while (cap < need) cap *= 2;
  const grown = new Uint8Array(cap);
  grown.set(buf.subarray(0, used));
  return grown;
}

// ── fsync ────────────────────────────────────────────────────────────────────────────────────

/**
 * The fsync policy's bookkeeping of one store: below which offset everything is fdatasync'ed, when
 * the last sync was, and when the next one falls due under 'interval'.
 */
export class SyncSchedule {
  constructor(
    /** MODE_NEVER, MODE_ALWAYS or MODE_INTERVAL. */
    readonly mode: number,
    readonly intervalMs: number,
    /** Everything below has been fdatasync'ed. */
    public synced: number,
    public lastSyncAt: number,
  ) {}

  /**
   * When maybeSync() next has work: under 'interval', with records below `durable` not yet synced,
   * the last sync + intervalMs; otherwise Infinity.
   */
  dueAt(durable: number): number {
    if (this.mode !== MODE_INTERVAL || this.synced >= durable) return Infinity;
    return this.lastSyncAt + this.intervalMs;
  }

  /**
   * The time maybeSync() syncs at, or null when nothing is due: `now`, else the clock (read only
   * when something is unsynced under 'interval').
   */
  dueNow(durable: number, now: number | undefined, clock: () => number): number | null {
    if (this.dueAt(durable) === Infinity) return null;
    const t = now ?? clock();
    return t - this.lastSyncAt < this.intervalMs ? null : t;
  }

  /** Everything below `durable` was synced at `now`. */
  mark(durable: number, now: number): void {
    this.synced = durable;
    this.lastSyncAt = now;
  }
}

/** close() fdatasyncs everything, except a hand-over under 'never' (the policy promises nothing more). */
export function closeSyncs(handOver: boolean | undefined, fsyncMode: number): boolean {
  return !(handOver === true && fsyncMode === MODE_NEVER);
}

// ── retention ────────────────────────────────────────────────────────────────────────────────

export interface RetentionLimits {
  retentionBytes: number | undefined;
  retentionMs: number | undefined;
  segmentMs: number | undefined;
}

/**
 * The active segment (its first and newest record's timestamps) is rolled before retention runs:
 * all of it has expired, or its first record is segmentMs old.
 */
export function activeSegmentDue(firstTimestamp: number, lastTimestamp: number, limits: RetentionLimits, now: number): boolean {
  const expired = limits.retentionMs !== undefined && lastTimestamp < now - limits.retentionMs;
  const old = limits.segmentMs !== undefined && firstTimestamp <= now - limits.segmentMs;
  return expired || old;
}

/**
 * How many of the oldest segments retention deletes, never the last (active) one: the oldest while
 * the total size exceeds retentionBytes, then those whose newest record is older than now -
 * retentionMs.
 */
export function expiredSegmentCount(segments: readonly { readonly size: number; readonly lastTimestamp: number }[], limits: RetentionLimits, now: number): number {
  const keep = segments.length - 1;
  let n = 0;
  if (limits.retentionBytes !== undefined) {
    let total = 0;
    for (const s of segments) total += s.size;
    while (n < keep && total > limits.retentionBytes) total -= segments[n++]!.size;
  }
  if (limits.retentionMs !== undefined) {
    const cutoff = now - limits.retentionMs;
    while (n < keep && segments[n]!.lastTimestamp < cutoff) n++;
  }
  return n;
}
