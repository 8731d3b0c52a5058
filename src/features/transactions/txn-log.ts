/**
 * The transaction log file (`<dataDir>/transactions/txn.log`): the durable half of the
 * coordinator. Every begin, half-message range, decision and apply step is one CRC'd JSON line.
 * Group commit: entries appended during one event-loop turn share one write and, under the
 * broker's fsync policy, one fdatasync; `append` resolves once its entry is durable that way.
 * At open the log is replayed, a torn tail is cut, and the file is rewritten with only what is
 * still unfinished (compaction), which bounds it.
 *
 * No synchronous IO after open: writes, fdatasyncs and run-time compactions are asynchronous, so
 * the gateway's thread keeps serving other clients meanwhile.
 *
 * A failed write or fdatasync must not leave a half-written line in the middle of the file: replay
 * stops at the first bad line, so every entry appended after it would be lost at the next start.
 * So a failure truncates the file back to its last good length (the failed entries are rejected,
 * their callers never applied them); if even that fails, the log refuses every later append
 * (STORAGE_ERROR) until the broker restarts, rather than let memory and disk diverge.
 */
import { channels } from '../../common/diagnostics.js';
import fs from 'node:fs';
import path from 'node:path';
import { crc32c } from '../../common/crc32c.js';
import { WeirError } from '../../common/errors.js';
import { replaceJournal, syncJournal } from '../../common/journal-sync.js';
import { ErrorCode } from '../../protocol/codes.js';
import type { FsyncPolicy } from '../../common/fsync.js';
import { decodeLog, encodeEntry, type TxnLogEntry } from './book.js';
import { testHooks } from './internal.js';

const crc = (b: Uint8Array): number => crc32c(b);

/**
 * `weir:txn:error` `{ txn, op, error }`: background work of transactions failed and will be retried
 * (op `apply`: a committed transaction's apply; `timeout`: a timeout rollback; `check`: a checker
 * push; `compact`: a log compaction; `sync`: the periodic fdatasync under `--fsync interval`).
 * Nothing is thrown from timers: a transaction stays in its last durable state and is retried.
 */
export const txnErrorChannel = channels.txnError;

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

export class TxnLog {
  private fh: fs.promises.FileHandle | null = null;
  private queued: string[] = [];
  private waiters: Waiter[] = [];
  private scheduled = false;
  private writing: Promise<void> = Promise.resolve();
  private dirtySinceSync = false;
  private syncTimer: ReturnType<typeof setInterval> | null = null;
  private closed = false;
  /** Bytes of the file known to hold whole, acknowledged lines (where a failed write is cut back to). */
  private goodBytes = 0;
  /** Set when the file could not be restored after a failed write: every append is refused. */
  private failure: WeirError | null = null;

  private constructor(
    readonly file: string,
    private readonly fsync: FsyncPolicy,
  ) {}

  /** Replay the log at `dir`, compact it to `snapshot(entries)` and open it for appending. */
  static async open(dir: string, fsyncPolicy: FsyncPolicy, snapshot: (entries: TxnLogEntry[]) => TxnLogEntry[]): Promise<{ log: TxnLog; entries: TxnLogEntry[]; torn: boolean }> {
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'txn.log');
    const bytes = fs.existsSync(file) ? fs.readFileSync(file) : Buffer.alloc(0);
    const { entries, torn, validBytes } = decodeLog(bytes.toString('utf8'), crc);
    if (torn && bytes.subarray(validBytes, bytes.length - 1).includes(0x0a)) {
      // More than a last line cut short: a damaged line with whole lines after it (a sector lost in
      // a machine crash, or bit rot). Replay stops at the damage and compaction would erase the rest
      // for good: keep the file as it was for an operator.
      const kept = `${file}.damaged-${Date.now()}`;
      fs.copyFileSync(file, kept);
      console.error(`weir transactions: ${file} is damaged at byte ${validBytes} with entries after it; replayed up to there, the original is kept as ${kept}`);
    }
    const log = new TxnLog(file, fsyncPolicy);
    // Startup: nobody is served yet, so the synchronous atomic replace is fine here.
    const compacted = snapshot(entries).map((e) => encodeEntry(e, crc)).join('');
    replaceJournal(file, compacted, fsyncPolicy.mode !== 'never');
    log.goodBytes = Buffer.byteLength(compacted);
    log.fh = await fs.promises.open(file, 'a');
    if (fsyncPolicy.mode === 'interval') {
      log.syncTimer = setInterval(() => void log.syncIfDirty(), fsyncPolicy.intervalMs);
      log.syncTimer.unref();
    }
    return { log, entries, torn };
  }

  /** Queue an entry; resolves once it is written (and synced, per the policy). */
  append(entry: TxnLogEntry): Promise<void> {
    if (this.closed) return Promise.reject(new WeirError(ErrorCode.SHUTTING_DOWN, 'transaction log is closed', { retryable: true }));
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.queued.push(encodeEntry(entry, crc));
      this.waiters.push({ resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.writing = this.writing.then(() => this.flush());
        });
      }
    });
  }

  /**
   * Replace the file's content with `snapshot()` (atomically: temp file, fsync, rename). The
   * snapshot is taken after every earlier write finished and its waiters ran (the state they
   * applied is in it); appends queued meanwhile are written to the new file after it.
   */
  async rewrite(snapshot: () => TxnLogEntry[]): Promise<void> {
    const run = async (): Promise<void> => {
      await new Promise((r) => setImmediate(r));
      if (this.failure) throw this.failure;
      const text = snapshot().map((e) => encodeEntry(e, crc)).join('');
      // writeFileAtomic's steps, asynchronously: temp file, fdatasync, rename, fsync the directory
      // (the syncs unless the policy is never). A crash before the rename leaves the old (longer,
      // equivalent) log.
      const durable = this.fsync.mode !== 'never';
      const tmp = this.file + '.tmp';
      const out = await fs.promises.open(tmp, 'w');
      try {
        await out.writeFile(text);
        if (durable) await syncJournal(out, this.file);
      } finally {
        await out.close();
      }
      await this.fh?.close();
      this.fh = null;
      try {
        await fs.promises.rename(tmp, this.file);
        if (durable) {
          const dir = await fs.promises.open(path.dirname(this.file), 'r');
          try {
            await dir.sync();
          } finally {
            await dir.close();
          }
        }
      } finally {
        // Appends go on to whichever file now has the name (the old one if the rename failed).
        this.fh = await fs.promises.open(this.file, 'a');
        this.goodBytes = (await this.fh.stat()).size;
      }
    };
    const done = this.writing.then(run);
    // A failed rewrite must not stop later appends (they go to whatever file is open).
    this.writing = done.catch(() => undefined);
    await done;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.syncTimer) clearInterval(this.syncTimer);
    // Let a scheduled flush run, then wait for it.
    await new Promise((r) => setImmediate(r));
    await this.writing;
    await this.syncIfDirty();
    await this.fh?.close();
    this.fh = null;
  }

  private async flush(): Promise<void> {
    const lines = this.queued;
    const waiters = this.waiters;
    this.queued = [];
    this.waiters = [];
    if (lines.length === 0) return;
    const data = lines.join('');
    try {
      if (this.failure) throw this.failure;
      if (!this.fh) throw new WeirError(ErrorCode.SHUTTING_DOWN, 'transaction log is closed', { retryable: true });
      testHooks.beforeLogWrite?.(lines);
      // One write may store only part of it (a nearly full disk): write the rest until it fails.
      const bytes = Buffer.from(data, 'utf8');
      for (let at = 0; at < bytes.length; ) {
        const { bytesWritten } = await this.fh.write(bytes, at, bytes.length - at);
        if (bytesWritten <= 0) throw Object.assign(new Error('no space left on device (nothing written)'), { code: 'ENOSPC' });
        at += bytesWritten;
      }
      if (this.fsync.mode === 'always') await syncJournal(this.fh, this.file);
      else if (this.fsync.mode === 'interval') this.dirtySinceSync = true;
      this.goodBytes += bytes.length;
    } catch (err) {
      const error = await this.undoFailedWrite(err);
      for (const w of waiters) w.reject(error);
      return;
    }
    for (const w of waiters) w.resolve();
  }

  /**
   * Cut the file back to its last good length after a failed write or fdatasync, so the next
   * entries do not follow a torn line (which would hide them from replay). Returns the error for
   * the waiters: STORAGE_FULL / STORAGE_ERROR.
   */
  private async undoFailedWrite(err: unknown): Promise<WeirError> {
    if (WeirError.isWeirError(err)) return err;
    const cause = err as NodeJS.ErrnoException;
    const full = cause.code === 'ENOSPC' || cause.code === 'EDQUOT';
    const error = new WeirError(full ? ErrorCode.STORAGE_FULL : ErrorCode.STORAGE_ERROR, `writing the transaction log ${this.file} failed: ${cause.message}`, {
      retryable: full,
    });
    try {
      await this.fh!.truncate(this.goodBytes);
      await syncJournal(this.fh!, this.file);
    } catch (again) {
      this.failure = new WeirError(ErrorCode.STORAGE_ERROR, `the transaction log ${this.file} could not be restored after a failed write (${(again as Error).message}); restart the broker`);
    }
    return error;
  }

  private async syncIfDirty(): Promise<void> {
    if (!this.dirtySinceSync || !this.fh) return;
    this.dirtySinceSync = false;
    try {
      await syncJournal(this.fh, this.file);
    } catch (err) {
      // Under 'interval' nothing else would ever notice: report it, and try again next interval.
      this.dirtySinceSync = true;
      if (txnErrorChannel.hasSubscribers) txnErrorChannel.publish({ txn: null, op: 'sync', error: err });
    }
  }
}
