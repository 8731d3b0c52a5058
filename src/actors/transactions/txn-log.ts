/**
 * The transaction log file (`<dataDir>/transactions/txn.log`): the durable half of the
 * coordinator. Every begin, half-message range, decision and apply step is one CRC'd JSON line.
 * Group commit: entries appended during one event-loop turn share one write and, under the
 * broker's fsync policy, one fdatasync; `append` resolves once its entry is durable that way.
 * At open the log is replayed, a torn tail is cut, and the file is rewritten with only what is
 * still unfinished (compaction), which bounds it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { crc32c } from '../../common/crc32c.js';
import type { FsyncPolicy } from '../../broker.js';
import { decodeLog, encodeEntry, type TxnLogEntry } from './book.js';

const crc = (b: Uint8Array): number => crc32c(b);

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

  private constructor(
    readonly file: string,
    private readonly fsync: FsyncPolicy,
  ) {}

  /** Replay the log at `dir`, compact it to `snapshot(entries)` and open it for appending. */
  static async open(dir: string, fsyncPolicy: FsyncPolicy, snapshot: (entries: TxnLogEntry[]) => TxnLogEntry[]): Promise<{ log: TxnLog; entries: TxnLogEntry[]; torn: boolean }> {
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'txn.log');
    const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    const { entries, torn } = decodeLog(text, crc);
    const log = new TxnLog(file, fsyncPolicy);
    await log.rewrite(() => snapshot(entries));
    if (fsyncPolicy.mode === 'interval') {
      log.syncTimer = setInterval(() => void log.syncIfDirty(), fsyncPolicy.intervalMs);
      log.syncTimer.unref();
    }
    return { log, entries, torn };
  }

  /** Queue an entry; resolves once it is written (and synced, per the policy). */
  append(entry: TxnLogEntry): Promise<void> {
    if (this.closed) return Promise.reject(new Error('transaction log is closed'));
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
      const entries = snapshot();
      await this.fh?.close();
      this.fh = null;
      const tmp = this.file + '.tmp';
      fs.writeFileSync(tmp, entries.map((e) => encodeEntry(e, crc)).join(''));
      const fd = fs.openSync(tmp, 'r');
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      fs.renameSync(tmp, this.file);
      const dfd = fs.openSync(path.dirname(this.file), 'r');
      fs.fsyncSync(dfd);
      fs.closeSync(dfd);
      this.fh = await fs.promises.open(this.file, 'a');
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
    try {
      if (!this.fh) throw new Error('transaction log is closed');
      await this.fh.write(lines.join(''));
      if (this.fsync.mode === 'always') await this.fh.datasync();
      else this.dirtySinceSync = true;
      for (const w of waiters) w.resolve();
    } catch (err) {
      for (const w of waiters) w.reject(err as Error);
    }
  }

  private async syncIfDirty(): Promise<void> {
    if (!this.dirtySinceSync || !this.fh) return;
    this.dirtySinceSync = false;
    try {
      await this.fh.datasync();
    } catch {
      /* the next sync or write reports it */
    }
  }
}
