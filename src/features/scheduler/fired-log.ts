/**
 * Durable progress of one schedule topic: which schedule-log offsets were fired. A journal
 * (src/journal/) whose entries are runs of 16-byte records, written asynchronously (the marks of
 * an event-loop turn in one entry, one write in flight at a time) and fsync'ed per the broker's
 * policy:
 *
 *   u32 kind, u32 partition, f64 value
 *
 *   kind 0 FIRED      value = an offset that fired
 *   kind 1 LOW_WATER  value = every offset below it fired
 *   kind 2 NAME       value = byte length of the schedule topic's name (UTF-8) that follows,
 *                     padded to a multiple of 16 bytes (the file is named by a hash of the topic)
 *   kind 3 BITMAP     value = byte length of a bitmap that follows (padded to 16): bit i set =
 *                     offset (the partition's low-water mark + i) fired
 *
 * Replaced by the live state (one entry: the name, then per partition a low-water record and a
 * bitmap of the fired offsets above it) once the file is several times larger than that state
 * would be: the file stays bounded by the span of pending offsets / 8, however many messages fired
 * meanwhile. A torn last entry is cut at open, a damaged one skipped and reported.
 *
 * The format before the journal (`<hash>.fired`: the records back to back, no frames) is read once
 * (in 16 MiB chunks: such a file can be large) and rewritten as the journal (`<hash>.fired.journal`).
 *
 * Disk errors (ENOSPC, EIO) never throw out of this class: the marks stay pending, the failure is
 * published on `weir:scheduler:fired-log-failed` and the write is retried with backoff. In memory a
 * mark counts at once (the scheduler does not fire an offset twice while running); on disk it
 * counts once its write (and, under fsync 'always', its fdatasync) completed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { channels } from '../../common/diagnostics.js';
import { Journal, type FsyncPolicy } from '../../journal/index.js';
import { FiredSet } from './fired-set.js';

export const ENTRY_BYTES = 16;
export const enum EntryKind {
  FIRED = 0,
  LOW_WATER = 1,
  NAME = 2,
  BITMAP = 3,
}
/** The journal of the fired log whose format before the journal was at `firedFile` (`<hash>.fired`). */
export const firedJournalPath = (firedFile: string): string => `${firedFile}.journal`;

/** Below this size the file is never compacted (rewriting it would cost more than it saves). */
const COMPACT_MIN_BYTES = 1 << 20;
/** Compact once the file is this many times the size of the live state. */
const COMPACT_RATIO = 4;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

const padded = (n: number): number => Math.ceil(n / ENTRY_BYTES) * ENTRY_BYTES;

function header(kind: EntryKind, partition: number, value: number): Uint8Array {
  const out = new Uint8Array(ENTRY_BYTES);
  const v = new DataView(out.buffer);
  v.setUint32(0, kind, true);
  v.setUint32(4, partition, true);
  v.setFloat64(8, value, true);
  return out;
}

/** Encode fixed-size entries (pure). */
export function encodeEntries(entries: ReadonlyArray<readonly [EntryKind, number, number]>): Uint8Array {
  const out = new Uint8Array(entries.length * ENTRY_BYTES);
  const v = new DataView(out.buffer);
  entries.forEach(([kind, partition, offset], i) => {
    v.setUint32(i * ENTRY_BYTES, kind, true);
    v.setUint32(i * ENTRY_BYTES + 4, partition, true);
    v.setFloat64(i * ENTRY_BYTES + 8, offset, true);
  });
  return out;
}

/** The compact file for `sets`: name, then per partition its low-water mark and bitmap (pure). */
export function encodeSnapshot(topic: string, sets: readonly FiredSet[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const name = new TextEncoder().encode(topic);
  parts.push(header(EntryKind.NAME, 0, name.length));
  const nameBlock = new Uint8Array(padded(name.length));
  nameBlock.set(name);
  parts.push(nameBlock);
  sets.forEach((s, p) => {
    parts.push(header(EntryKind.LOW_WATER, p, s.low));
    const bitmap = s.bitmapAboveLow();
    if (bitmap.length === 0) return;
    parts.push(header(EntryKind.BITMAP, p, bitmap.length));
    const block = new Uint8Array(padded(bitmap.length));
    block.set(bitmap);
    parts.push(block);
  });
  const out = new Uint8Array(parts.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of parts) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

/**
 * Apply a log's bytes to per-partition fired sets (pure). Returns the length of its whole entries
 * (a torn tail is not counted) and the topic name if the file holds one.
 */
export function applyEntries(bytes: Uint8Array, sets: FiredSet[]): { validBytes: number; topic: string | null } {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let topic: string | null = null;
  let at = 0;
  while (at + ENTRY_BYTES <= bytes.length) {
    const kind = v.getUint32(at, true);
    const set = sets[v.getUint32(at + 4, true)];
    const value = v.getFloat64(at + 8, true);
    if (kind === EntryKind.NAME || kind === EntryKind.BITMAP) {
      if (!Number.isInteger(value) || value < 0) break;
      const end = at + ENTRY_BYTES + padded(value);
      if (end > bytes.length) break; // torn
      const body = bytes.subarray(at + ENTRY_BYTES, at + ENTRY_BYTES + value);
      if (kind === EntryKind.NAME) topic = new TextDecoder().decode(body);
      else if (set) set.markBitmap(set.low, body);
      at = end;
      continue;
    }
    at += ENTRY_BYTES;
    if (!set || !Number.isInteger(value) || value < 0) continue;
    if (kind === EntryKind.LOW_WATER) set.setLow(value);
    else if (kind === EntryKind.FIRED) set.mark(value);
  }
  return { validBytes: at, topic };
}

/** What `weir:scheduler:fired-log-failed` publishes. */
export interface FiredLogFailure {
  file: string;
  topic: string;
  operation: 'write' | 'sync' | 'compact' | 'close';
  error: Error;
  /** Marks not yet on disk (kept, retried). */
  pending: number;
}

export class FiredLog {
  readonly sets: FiredSet[];
  private readonly journal: Journal;
  /** Fired (partition, offset) pairs not yet written: no object per message. */
  private pending = new Float64Array(2048);
  private pendingCount = 0;
  private flushScheduled = false;
  private inFlight: Promise<void> | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private retryMs = RETRY_MIN_MS;
  private closed = false;
  private failures = 0;

  constructor(
    readonly file: string,
    partitions: number,
    fsyncPolicy: FsyncPolicy,
    /** The schedule topic (kept inside the file: its name is a hash). */
    readonly topic: string = path.basename(file),
    /** Where the fired log of the format before the journal is, if anywhere (read once, then removed). */
    legacyFile?: string,
  ) {
    this.sets = Array.from({ length: partitions }, () => new FiredSet());
    const legacy =
      legacyFile === undefined
        ? undefined
        : {
            file: legacyFile,
            read: (f: string) => {
              const sets = Array.from({ length: partitions }, () => new FiredSet());
              return [encodeSnapshot(readLog(f, sets).topic ?? topic, sets)];
            },
          };
    const { journal, recovery } = Journal.open(
      { file, fsync: fsyncPolicy, io: 'async', legacy, onSyncError: (err) => this.report('sync', err) },
      (payload) => (applyEntries(payload, this.sets).validBytes === payload.length ? true : undefined),
    );
    this.journal = journal;
    // A new file starts with the topic's name (the file name is only a hash of it); a large one
    // (many marks since its last compaction) is compacted now.
    if (recovery.entries === 0 || this.compactDue()) this.journal.replaceSync([encodeSnapshot(topic, this.sets)]);
  }

  /** Disk failures so far (tests, diagnostics). */
  get failureCount(): number {
    return this.failures;
  }

  /** Marks not yet durably written. */
  get pendingMarks(): number {
    return this.pendingCount;
  }

  /** Mark an offset fired: in memory now, on disk soon after this turn. */
  fired(partition: number, offset: number): void {
    if (this.closed || !this.sets[partition]!.mark(offset)) return;
    if (2 * this.pendingCount === this.pending.length) {
      const grown = new Float64Array(this.pending.length * 2);
      grown.set(this.pending);
      this.pending = grown;
    }
    this.pending[2 * this.pendingCount] = partition;
    this.pending[2 * this.pendingCount + 1] = offset;
    this.pendingCount++;
    this.scheduleFlush();
  }

  /**
   * Write the pending marks (after the write in flight, if any). Resolves when they are written
   * (and synced under 'always') or the attempt failed (they stay pending; a retry is scheduled).
   * Never rejects.
   */
  async flush(): Promise<void> {
    this.flushScheduled = false;
    while (this.inFlight) await this.inFlight;
    if (this.pendingCount === 0) return;
    const run = this.writePending().finally(() => (this.inFlight = null));
    this.inFlight = run;
    await run;
  }

  /** Write what is pending (one try), sync per policy, close the file. Never rejects. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    while (this.inFlight) await this.inFlight;
    if (this.pendingCount > 0) {
      const run = this.writePending();
      this.inFlight = run;
      await run;
      this.inFlight = null;
    }
    try {
      await this.journal.close();
    } catch (err) {
      this.report('close', err);
    }
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.retryTimer || this.closed) return;
    this.flushScheduled = true;
    setImmediate(() => void this.flush());
  }

  private async writePending(): Promise<void> {
    const count = this.pendingCount;
    const bytes = new Uint8Array(count * ENTRY_BYTES);
    const v = new DataView(bytes.buffer);
    for (let i = 0; i < count; i++) {
      v.setUint32(i * ENTRY_BYTES, EntryKind.FIRED, true);
      v.setUint32(i * ENTRY_BYTES + 4, this.pending[2 * i]!, true);
      v.setFloat64(i * ENTRY_BYTES + 8, this.pending[2 * i + 1]!, true);
    }
    try {
      await this.journal.append(bytes);
    } catch (err) {
      // Nothing of it stayed in the file (the journal cut it back): the marks stay pending.
      this.failed((err as { details?: { op?: unknown } }).details?.op === 'fdatasync' ? 'sync' : 'write', err);
      return;
    }
    // Done: drop the written marks (more may have been added meanwhile).
    this.dropPending(count);
    this.retryMs = RETRY_MIN_MS;
    await this.maybeCompact();
    if (this.pendingCount > 0) this.scheduleFlush();
  }

  private dropPending(count: number): void {
    this.pending.copyWithin(0, 2 * count, 2 * this.pendingCount);
    this.pendingCount -= count;
  }

  private failed(operation: FiredLogFailure['operation'], err: unknown): void {
    this.report(operation, err);
    if (this.closed || this.retryTimer) return;
    const delay = this.retryMs;
    this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.flush();
    }, delay);
  }

  private report(operation: FiredLogFailure['operation'], err: unknown): void {
    this.failures++;
    // The file system's error (ENOSPC, EIO…) rather than the journal's STORAGE_FULL wrapping it.
    const cause = (err as { cause?: unknown } | null)?.cause;
    const error = cause instanceof Error ? cause : err instanceof Error ? err : new Error(String(err));
    if (channels.schedulerFiredLogFailed.hasSubscribers) {
      const failure: FiredLogFailure = { file: this.file, topic: this.topic, operation, error, pending: this.pendingCount };
      channels.schedulerFiredLogFailed.publish(failure);
    }
    if (this.failures === 1) console.error(`weir scheduler: fired log ${this.file} (${this.topic}): ${operation} failed; retrying`, error);
  }

  /** Bytes the live state takes when written compactly (an upper bound; cheap). */
  private snapshotBytes(): number {
    let n = 2 * ENTRY_BYTES + padded(Buffer.byteLength(this.topic));
    for (const s of this.sets) n += 2 * ENTRY_BYTES + padded(s.bitmapBytesBound);
    return n;
  }

  private compactDue(): boolean {
    const size = this.journal.size;
    return size >= COMPACT_MIN_BYTES && size >= COMPACT_RATIO * this.snapshotBytes();
  }

  /** Replace the journal by the live state. Runs between writes (FiredLog has one in flight at a time). */
  private async maybeCompact(): Promise<void> {
    if (!this.compactDue()) return;
    // The snapshot holds every mark in memory, so the marks pending when it is taken too.
    let covered = 0;
    try {
      await this.journal.replace(() => {
        covered = this.pendingCount;
        return [encodeSnapshot(this.topic, this.sets)];
      });
    } catch (err) {
      this.report('compact', err); // the journal is still whole; try again after the next write
      return;
    }
    this.dropPending(covered);
  }
}

/** Read size: the file is read in chunks (a whole-file read fails past 2 GiB). */
const READ_CHUNK_BYTES = 16 * 1024 * 1024;

/** Apply the entries of a file of the format before the journal to `sets`, chunk by chunk (an entry or bitmap may span chunks). */
function readLog(file: string, sets: FiredSet[]): { validBytes: number; totalBytes: number; topic: string | null } {
  if (!fs.existsSync(file)) return { validBytes: 0, totalBytes: 0, topic: null };
  const fd = fs.openSync(file, 'r');
  try {
    const chunk = new Uint8Array(READ_CHUNK_BYTES);
    let carry = new Uint8Array(0);
    let validBytes = 0;
    let totalBytes = 0;
    let topic: string | null = null;
    for (;;) {
      const n = fs.readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      totalBytes += n;
      let bytes = chunk.subarray(0, n);
      if (carry.length > 0) {
        const joined = new Uint8Array(carry.length + n);
        joined.set(carry);
        joined.set(bytes, carry.length);
        bytes = joined;
      }
      const applied = applyEntries(bytes, sets);
      topic ??= applied.topic;
      const parsed = applied.validBytes;
      validBytes += parsed;
      carry = bytes.slice(parsed); // a copy: `chunk` is reused
    }
    return { validBytes, totalBytes, topic };
  } finally {
    fs.closeSync(fd);
  }
}
