/**
 * Durable progress of one schedule topic: which schedule-log offsets were fired. An append-only
 * file of 16-byte entries, written asynchronously (one write in flight at a time, the marks of an
 * event-loop turn in one write) and fsync'ed per the broker's policy:
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
 * Rewritten (writeFileAtomic) to the live state (per partition a low-water entry and a bitmap of
 * the fired offsets above it) once the file is several times larger than that state would be: the
 * file stays bounded by the span of pending offsets / 8, however many messages fired meanwhile.
 * A torn last entry is ignored (and cut at open). The file is read in 16 MiB chunks at open.
 *
 * Disk errors (ENOSPC, EIO) never throw out of this class: the marks stay pending, the failure is
 * published on `weir:scheduler:fired-log-failed` and the write is retried with backoff. In memory a
 * mark counts at once (the scheduler does not fire an offset twice while running); on disk it
 * counts once its write (and, under fsync 'always', its fdatasync) completed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { channels } from '../../common/diagnostics.js';
import { replaceJournal, syncJournal } from '../../common/journal-sync.js';
import type { FsyncPolicy } from '../../common/fsync.js';
import { FiredSet } from './fired-set.js';

export const ENTRY_BYTES = 16;
export const enum EntryKind {
  FIRED = 0,
  LOW_WATER = 1,
  NAME = 2,
  BITMAP = 3,
}
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
  private fd: number;
  /** Bytes of whole entries in the file (a failed write is cut back to this). */
  private fileBytes: number;
  /** Fired (partition, offset) pairs not yet written: no object per message. */
  private pending = new Float64Array(2048);
  private pendingCount = 0;
  private flushScheduled = false;
  private inFlight: Promise<void> | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private retryMs = RETRY_MIN_MS;
  private syncTimer: ReturnType<typeof setTimeout> | null = null;
  /** The interval sync running now (close waits for it before closing the descriptor). */
  private syncing: Promise<void> | null = null;
  private closed = false;
  private failures = 0;

  constructor(
    private readonly file: string,
    partitions: number,
    private readonly fsyncPolicy: FsyncPolicy,
    /** The schedule topic (kept inside the file: its name is a hash). */
    readonly topic: string = path.basename(file),
  ) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    this.sets = Array.from({ length: partitions }, () => new FiredSet());
    const { validBytes, totalBytes } = readLog(file, this.sets);
    if (totalBytes !== validBytes) fs.truncateSync(file, validBytes); // torn tail
    this.fd = fs.openSync(file, 'a');
    this.fileBytes = validBytes;
    if (validBytes === 0) {
      // A new file starts with the topic's name (the file name is only a hash of it).
      this.fd = this.rewrite(encodeSnapshot(topic, this.sets), this.fd);
    } else {
      this.maybeCompact(); // e.g. a file from before compaction was bounded
    }
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
    if (this.syncTimer) clearTimeout(this.syncTimer);
    this.retryTimer = this.syncTimer = null;
    if (this.syncing) await this.syncing;
    while (this.inFlight) await this.inFlight;
    if (this.pendingCount > 0) {
      const run = this.writePending();
      this.inFlight = run;
      await run;
      this.inFlight = null;
    }
    try {
      if (this.fsyncPolicy.mode !== 'never') await syncJournal(this.fd, this.file);
    } catch (err) {
      this.report('close', err);
    }
    fs.closeSync(this.fd);
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
      await writeAll(this.fd, bytes);
    } catch (err) {
      // A partial write would misalign every later entry: cut the file back to its whole entries.
      try {
        fs.ftruncateSync(this.fd, this.fileBytes);
      } catch {
        // the next successful open cuts a torn tail anyway
      }
      this.failed('write', err);
      return;
    }
    this.fileBytes += bytes.length;
    if (this.fsyncPolicy.mode === 'always') {
      try {
        await syncJournal(this.fd, this.file);
      } catch (err) {
        // Written but maybe not durable: keep the marks pending, they are written again (duplicates are harmless).
        this.failed('sync', err);
        return;
      }
    } else if (this.fsyncPolicy.mode === 'interval') this.armSync(this.fsyncPolicy.intervalMs);
    // Done: drop the written marks (more may have been added meanwhile).
    this.pending.copyWithin(0, 2 * count, 2 * this.pendingCount);
    this.pendingCount -= count;
    this.retryMs = RETRY_MIN_MS;
    this.maybeCompact();
    if (this.pendingCount > 0) this.scheduleFlush();
  }

  /** Under 'interval': one fdatasync within `ms` of the first unsynced write; a failed one is tried again. */
  private armSync(ms: number): void {
    if (this.syncTimer || this.closed) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = null;
      if (this.closed) return;
      // Not in the write chain: appends go on meanwhile (the sync covers what was written before it).
      this.syncing = syncJournal(this.fd, this.file)
        .catch((err: unknown) => {
          this.report('sync', err);
          this.armSync(ms);
        })
        .finally(() => (this.syncing = null));
    }, ms);
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
    const error = err instanceof Error ? err : new Error(String(err));
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

  private maybeCompact(): void {
    if (this.fileBytes < COMPACT_MIN_BYTES || this.fileBytes < COMPACT_RATIO * this.snapshotBytes()) return;
    // Runs between writes (inside the write chain): nothing else touches the file meanwhile. The
    // snapshot holds every mark in memory, so pending marks are in it too.
    const snapshot = encodeSnapshot(this.topic, this.sets);
    try {
      this.fd = this.rewrite(snapshot, this.fd);
    } catch (err) {
      this.report('compact', err); // the append-only file is still whole; try again after the next write
      return;
    }
    this.pendingCount = 0;
  }

  /** Replace the file by `contents` (atomically, durably) and reopen it for appends. */
  private rewrite(contents: Uint8Array, oldFd: number): number {
    replaceJournal(this.file, contents, this.fsyncPolicy.mode !== 'never');
    fs.closeSync(oldFd);
    const fd = fs.openSync(this.file, 'a');
    this.fileBytes = contents.length;
    return fd;
  }
}

/** Read size: the file is read in chunks (a whole-file read fails past 2 GiB). */
const READ_CHUNK_BYTES = 16 * 1024 * 1024;

/** Apply the file's entries to `sets`, chunk by chunk (an entry or bitmap may span chunks). */
function readLog(file: string, sets: FiredSet[]): { validBytes: number; totalBytes: number } {
  if (!fs.existsSync(file)) return { validBytes: 0, totalBytes: 0 };
  const fd = fs.openSync(file, 'r');
  try {
    const chunk = new Uint8Array(READ_CHUNK_BYTES);
    let carry = new Uint8Array(0);
    let validBytes = 0;
    let totalBytes = 0;
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
      const parsed = applyEntries(bytes, sets).validBytes;
      validBytes += parsed;
      carry = bytes.slice(parsed); // a copy: `chunk` is reused
    }
    return { validBytes, totalBytes };
  } finally {
    fs.closeSync(fd);
  }
}

function writeAll(fd: number, bytes: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (at: number): void => {
      if (at >= bytes.length) return resolve();
      fs.write(fd, bytes, at, bytes.length - at, null, (err, written) => (err ? reject(err) : step(at + written)));
    };
    step(0);
  });
}
