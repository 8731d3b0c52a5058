/**
 * One durable journal: an append-only file of framed, CRC-checked entries (frame.ts) with the
 * broker's fsync policy, group commit, whole-or-nothing appends, truncate-and-report recovery and
 * compaction by atomic replace. Every side journal (group offsets, queue journal, scheduler fired
 * logs, transaction log, producer bindings) is one of these; the caller owns what the payloads mean.
 *
 * Writes. An append is one write of all its entries (`appendSync(payloads)`: the caller's batch;
 * `append(payload)`: every entry appended in the same event-loop turn). The fsync policy:
 *   always        fdatasync before the append returns / resolves (so before it is acknowledged);
 *   interval:MS   an fdatasync at most MS after the first unsynced append (a timer, retried while
 *                 it fails), and at close;
 *   never         none (not at close either).
 * A write that fails, stores only part of its bytes, or (under always) whose fdatasync fails is cut
 * back to the file's last good length and thrown as STORAGE_FULL (ENOSPC, EDQUOT, nothing written:
 * retryable) or STORAGE_ERROR (log/errors.ts `storageErrorFrom`; `details.op` says which step). If
 * even the cut fails, the journal refuses every later append (STORAGE_ERROR) until it is reopened:
 * nothing half-written is ever left before a later entry.
 *
 * Open (`Journal.open`, synchronous: start-up). Every good entry is replayed (handed to `decode`);
 * a damaged region between good entries is skipped; bytes after the last good entry (a torn tail)
 * are cut off. Both are counted in the returned `recovery`, with their byte positions, and
 * published on `weir:journal:skipped`. A file in the journal's previous format (`legacy`) is read
 * once, rewritten in this one and removed.
 *
 * Compaction (`replaceSync`, `replace`): the caller's snapshot of its live state replaces the file
 * (temp file, fsync unless the policy is never, rename, fsync the directory); appends continue in
 * the new file.
 *
 * Flavours: synchronous entry points (`appendSync`, `replaceSync`, `closeSync`) do their IO on
 * the calling thread before they return; asynchronous ones (`append`, `replace`, `close`) run in
 * order, one step at a time, off the thread. A synchronous call needs no asynchronous step pending.
 * The `io` option says how the interval fdatasync runs: on the thread (`sync`: the offset store's
 * commits are synchronous anyway) or off it (`async`). The steps are the same generators either
 * way (io.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { channels } from '../common/diagnostics.js';
import { WeirError } from '../common/errors.js';
import { StorageError, storageErrorFrom, type LogError } from '../log/errors.js';
import type { FsyncPolicy } from '../common/fsync.js';
import { ErrorCode } from '../protocol/codes.js';
import { encodeFrames, scanFrames } from './frame.js';
import { close, datasync, open, publishSync, replaceFile, runAsync, runSync, syncDirectory, truncate, writeWhole, type Steps } from './io.js';

export type { FsyncPolicy };

/** A journal's previous on-disk format, read once at open and rewritten in the framed one. */
export interface LegacyFormat {
  file: string;
  /** The payloads that hold what the old file holds (read it however it must be read). */
  read(file: string): Uint8Array[];
}

export interface JournalOptions {
  file: string;
  fsync: FsyncPolicy;
  /** How the interval fdatasync runs: on this thread ('sync') or off it ('async'; see the file comment). */
  io: 'sync' | 'async';
  legacy?: LegacyFormat;
  /**
   * Keep a copy of a file with damaged entries (`<file>.damaged-<ms>`) before anything rewrites
   * it: for journals compacted right after open, which would erase the evidence.
   */
  keepDamaged?: boolean;
  /** A background fdatasync (interval) failed; it is retried. Default: one console line per failing streak. */
  onSyncError?: (err: LogError) => void;
}

/** What open found and did. */
export interface JournalRecovery {
  /** Entries replayed (decoded). */
  entries: number;
  /** Damaged regions skipped between good entries, and good frames whose payload did not decode. */
  skipped: number;
  /** Byte positions of the first skipped regions and of a cut tail (at most MAX_REPORTED_POSITIONS). */
  positions: number[];
  /** Bytes of the torn tail cut off. */
  truncatedBytes: number;
  /** The old-format file migrated from, or null. */
  migratedFrom: string | null;
  /** The copy kept of a damaged file (`keepDamaged`), or null. */
  damagedCopy: string | null;
}

/** What `weir:journal:skipped` publishes (`skippedLines`: damaged entries; the journals were lines once). */
export interface JournalSkipped {
  file: string;
  skippedLines: number;
  positions: number[];
  truncatedBytes: number;
}

export const MAX_REPORTED_POSITIONS = 100;

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

export class Journal {
  readonly file: string;
  private readonly fsync: FsyncPolicy;
  private readonly io: 'sync' | 'async';
  private readonly onSyncError: ((err: LogError) => void) | undefined;
  private fd: number;
  /** Length of the file's whole entries: where a failed append is cut back to. */
  private good: number;
  private count: number;
  private appendSyncs = 0;
  private unsynced = false;
  private syncTimer: ReturnType<typeof setTimeout> | null = null;
  private syncFailing = false;
  /** Set when a failed append could not be cut back: every later append is refused. */
  private brokenBy: LogError | null = null;
  private closed = false;
  private closing: Promise<void> | null = null;
  /** Async flavour: entries of this turn, written together. */
  private queued: Uint8Array[] = [];
  private waiters: Waiter[] = [];
  private scheduled = false;
  /** Async flavour: the steps run one at a time in this order. */
  private chain: Promise<void> = Promise.resolve();
  /** Asynchronous steps enqueued and not finished. */
  private steps = 0;

  private constructor(options: JournalOptions, fd: number, good: number, count: number) {
    this.file = options.file;
    this.fsync = options.fsync;
    this.io = options.io;
    this.onSyncError = options.onSyncError;
    this.fd = fd;
    this.good = good;
    this.count = count;
  }

  /**
   * Open (creating, migrating, recovering) the journal and replay it: `decode` turns each good
   * payload into an entry, or undefined for one it cannot use (counted as skipped). Throws what the
   * file system throws (an unreadable journal is not guessed at).
   */
  static open<T>(options: JournalOptions, decode: (payload: Uint8Array) => T | undefined): { journal: Journal; entries: T[]; recovery: JournalRecovery } {
    const { file, legacy } = options;
    const durable = options.fsync.mode !== 'never';
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const recovery: JournalRecovery = { entries: 0, skipped: 0, positions: [], truncatedBytes: 0, migratedFrom: null, damagedCopy: null };
    let exists = fs.existsSync(file);
    if (legacy && fs.existsSync(legacy.file)) {
      // Migrated already when the new file exists (a crash came between its rename and this removal).
      if (!exists) {
        runSync(replaceFile(file, encodeFrames(legacy.read(legacy.file)), durable));
        recovery.migratedFrom = legacy.file;
        exists = true;
      }
      fs.rmSync(legacy.file, { force: true });
    }
    const bytes = exists ? fs.readFileSync(file) : new Uint8Array(0);
    const scan = scanFrames(bytes);
    const report = (at: number): void => {
      if (recovery.positions.length < MAX_REPORTED_POSITIONS) recovery.positions.push(at);
    };
    const entries: T[] = [];
    let d = 0;
    for (const frame of scan.frames) {
      while (d < scan.damaged.length && scan.damaged[d]!.at < frame.at) {
        recovery.skipped++;
        report(scan.damaged[d++]!.at);
      }
      const entry = decode(frame.payload);
      if (entry === undefined) {
        recovery.skipped++;
        report(frame.at);
      } else entries.push(entry);
    }
    recovery.entries = entries.length;
    if (scan.end < bytes.length) {
      // A crash mid-write: that entry was never acknowledged (an entry counts once written whole).
      recovery.truncatedBytes = bytes.length - scan.end;
      report(scan.end);
    }
    if (recovery.skipped > 0 && options.keepDamaged) {
      recovery.damagedCopy = `${file}.damaged-${Date.now()}`;
      fs.copyFileSync(file, recovery.damagedCopy);
      console.error(`weir: ${file} has ${recovery.skipped} damaged entr${recovery.skipped === 1 ? 'y' : 'ies'} (at bytes ${recovery.positions.join(', ')}); every other entry was replayed, the original is kept as ${recovery.damagedCopy}`);
    }
    if (recovery.truncatedBytes > 0) fs.truncateSync(file, scan.end);
    const fd = fs.openSync(file, 'a');
    // A new file's directory entry must be durable before an fdatasync of it can count.
    if (!exists && durable) runSync(syncDirectory(path.dirname(file)));
    if ((recovery.skipped > 0 || recovery.truncatedBytes > 0) && channels.journalSkipped.hasSubscribers) {
      channels.journalSkipped.publish({ file, skippedLines: recovery.skipped, positions: recovery.positions, truncatedBytes: recovery.truncatedBytes } satisfies JournalSkipped);
    }
    return { journal: new Journal(options, fd, scan.end, scan.frames.length), entries, recovery };
  }

  /** Bytes of whole entries in the file (what compaction thresholds compare). */
  get size(): number {
    return this.good;
  }

  /** Entries in the file (replayed, appended, or written by the last replace). */
  get entries(): number {
    return this.count;
  }

  /**
   * Why the journal refuses every append (a failed write that could not be cut back, or a replace
   * that could not reopen the file), or null. Only reopening it (a restart) clears it.
   */
  get failure(): LogError | null {
    return this.brokenBy;
  }

  /** fdatasyncs of appended entries so far (under always, the interval timer, close); not replaces. */
  get syncs(): number {
    return this.appendSyncs;
  }

  /**
   * Append `payloads` with one write (and, under always, one fdatasync) before returning. Throws
   * STORAGE_FULL / STORAGE_ERROR with none of them in the file when they cannot be stored.
   */
  appendSync(payloads: readonly Uint8Array[]): void {
    this.checkIdle();
    if (this.closed) throw closedError(this.file);
    if (payloads.length === 0) return;
    runSync(this.appendSteps(encodeFrames(payloads), payloads.length));
  }

  /**
   * Append one entry; resolves once it is written (and synced per the policy) together with every
   * other entry appended in this turn, rejects (STORAGE_FULL / STORAGE_ERROR, nothing of that
   * write kept) when they cannot be.
   */
  append(payload: Uint8Array): Promise<void> {
    if (this.closed) return Promise.reject(closedError(this.file));
    if (this.brokenBy) return Promise.reject(this.brokenBy);
    return new Promise((resolve, reject) => {
      this.queued.push(payload);
      this.waiters.push({ resolve, reject });
      if (this.scheduled) return;
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        void this.enqueue(() => this.writeQueued());
      });
    });
  }

  /** Replace the file by `payloads` (compaction), synchronously. On failure the old file stays in use. */
  replaceSync(payloads: readonly Uint8Array[]): void {
    this.checkIdle();
    if (this.closed) throw closedError(this.file);
    runSync(this.replaceSteps(payloads));
  }

  /**
   * Replace the file by `snapshot()` (compaction). The snapshot is taken after every earlier
   * append was written and its callers' continuations ran (the state they applied is in it);
   * entries appended meanwhile are written to the new file after it.
   */
  replace(snapshot: () => readonly Uint8Array[]): Promise<void> {
    if (this.closed) return Promise.reject(closedError(this.file));
    return this.enqueue(async () => {
      await new Promise((r) => setImmediate(r));
      await runAsync(this.replaceSteps(snapshot()));
    });
  }

  /** Sync what is unsynced (interval), close the file. Throws a failed sync (the file is closed anyway). */
  closeSync(): void {
    if (this.closed) return;
    this.checkIdle();
    this.closed = true;
    this.stopTimer();
    runSync(this.closeSteps());
  }

  /** Write what was appended, sync what is unsynced (interval), close the file. Rejects with a failed sync. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    this.stopTimer();
    this.closing = (async () => {
      await new Promise((r) => setImmediate(r)); // a flush scheduled in this turn joins the chain
      await this.chain;
      await runAsync(this.closeSteps());
    })();
    return this.closing;
  }

  /**
   * The synchronous entry points need the asynchronous ones idle (an asynchronous journal may
   * still write its first snapshot synchronously at open).
   */
  private checkIdle(): void {
    if (this.steps > 0 || this.queued.length > 0) throw new WeirError(ErrorCode.INTERNAL, `journal ${this.file}: a synchronous call while asynchronous writes are pending`);
  }

  private enqueue(step: () => Promise<void>): Promise<void> {
    this.steps++;
    const run = this.chain.then(step).finally(() => void this.steps--);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async writeQueued(): Promise<void> {
    const payloads = this.queued;
    const waiters = this.waiters;
    this.queued = [];
    this.waiters = [];
    if (payloads.length === 0) return;
    try {
      await runAsync(this.appendSteps(encodeFrames(payloads), payloads.length));
    } catch (err) {
      for (const w of waiters) w.reject(err as Error);
      return;
    }
    for (const w of waiters) w.resolve();
  }

  private *appendSteps(bytes: Uint8Array, entries: number): Steps<void> {
    if (this.brokenBy) throw this.brokenBy;
    let op = 'write';
    try {
      yield* writeWhole(this.fd, bytes);
      if (this.fsync.mode === 'always') {
        op = 'fdatasync';
        yield* datasync(this.fd);
        this.appendSyncs++;
        publishSync(this.file);
      }
    } catch (err) {
      // Part of it may be in the file (or all of it, not durable): not acknowledged, so cut it back.
      const error = storageErrorFrom(err, op, this.file);
      try {
        yield* truncate(this.fd, this.good);
      } catch (again) {
        this.brokenBy = new StorageError(`${this.file} could not be cut back to its last whole entry after a failed ${op} (${(again as Error).message}); restart the broker`, { op: 'ftruncate', path: this.file }, again);
        console.error(`weir: ${this.brokenBy.message}`);
      }
      throw error;
    }
    this.good += bytes.length;
    this.count += entries;
    if (this.fsync.mode === 'interval') {
      this.unsynced = true;
      this.armSync(this.fsync.intervalMs);
    }
  }

  private *replaceSteps(payloads: readonly Uint8Array[]): Steps<void> {
    if (this.brokenBy) throw this.brokenBy;
    const bytes = encodeFrames(payloads);
    yield* replaceFile(this.file, bytes, this.fsync.mode !== 'never');
    // Appends go to the new file from now on (the old descriptor points at the replaced one).
    const old = this.fd;
    this.fd = -1;
    try {
      yield* close(old);
    } catch {
      // nothing was pending on it
    }
    try {
      this.fd = yield* open(this.file, 'a');
    } catch (err) {
      this.brokenBy = storageErrorFrom(err, 'open', this.file);
      throw this.brokenBy;
    }
    this.good = bytes.length;
    this.count = payloads.length;
    this.unsynced = false;
  }

  private *syncSteps(): Steps<void> {
    if (!this.unsynced || this.fd < 0) return;
    this.unsynced = false;
    try {
      yield* datasync(this.fd);
    } catch (err) {
      this.unsynced = true;
      throw storageErrorFrom(err, 'fdatasync', this.file);
    }
    this.appendSyncs++;
    publishSync(this.file);
  }

  private *closeSteps(): Steps<void> {
    if (this.fd < 0) return;
    try {
      if (this.fsync.mode !== 'never') yield* this.syncSteps();
    } finally {
      const fd = this.fd;
      this.fd = -1;
      yield* close(fd);
    }
  }

  /** Under interval: one fdatasync within `ms` of the first unsynced append; a failed one is tried again. */
  private armSync(ms: number): void {
    if (this.syncTimer || this.closed) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = null;
      if (this.closed || !this.unsynced) return;
      if (this.io === 'sync' && this.steps === 0) {
        try {
          runSync(this.syncSteps());
          this.syncFailing = false;
        } catch (err) {
          this.syncFailed(err as LogError, ms);
        }
      } else {
        this.enqueue(() => runAsync(this.syncSteps())).then(
          () => void (this.syncFailing = false),
          (err: LogError) => this.syncFailed(err, ms),
        );
      }
    }, ms);
    // The interval bounds the loss window; it must not keep a closing process alive.
    this.syncTimer.unref();
  }

  private syncFailed(err: LogError, ms: number): void {
    if (this.onSyncError) this.onSyncError(err);
    else if (!this.syncFailing) console.error(`weir: fdatasync of ${this.file} failed, retrying:`, err.message);
    this.syncFailing = true;
    this.armSync(ms);
  }

  private stopTimer(): void {
    if (this.syncTimer) clearTimeout(this.syncTimer);
    this.syncTimer = null;
  }
}

function closedError(file: string): WeirError {
  return new WeirError(ErrorCode.SHUTTING_DOWN, `${file} is closed`, { retryable: true });
}
