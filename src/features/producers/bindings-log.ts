/**
 * The producer bindings file (`<dataDir>/producers/bindings.log`), beside the id counter (ids.ts):
 * one CRC'd JSON line per init_producer or reclaim (`{p, e, h, t}`: id, epoch, SHA-256 of the
 * secret, time), so a client can reclaim its id after a broker restart, a crash or a SIGKILL.
 *
 * Durable per the broker's fsync policy: `append` resolves once the line reached the OS (`never`),
 * and also an fdatasync under `always`; under `interval:MS` an fdatasync follows within MS. Group
 * commit: lines appended in one event-loop turn share one write and one fdatasync. At open the file
 * is replayed (a torn last line is cut) and rewritten with what the registry keeps (compaction); the
 * feature rewrites it again when it has grown past twice the live bindings, and with the bindings'
 * last-use times hourly and at close. No synchronous IO after open.
 *
 * A failed write is cut back (truncate to the last good length), so later lines never follow a torn
 * one; if even that fails, every later append is refused (STORAGE_ERROR) until a restart.
 */
import fs from 'node:fs';
import path from 'node:path';
import { crc32c } from '../../common/crc32c.js';
import { writeFileAtomic } from '../../common/atomic-file.js';
import { WeirError } from '../../common/errors.js';
import { ErrorCode } from '../../protocol/codes.js';
import type { FsyncPolicy } from '../../common/fsync.js';
import type { BindingEntry } from './registry.js';

export const BINDINGS_FILE = 'bindings.log';

const encoder = new TextEncoder();

export function encodeLine(entry: BindingEntry): string {
  const json = JSON.stringify(entry);
  return `${crc32c(encoder.encode(json)).toString(16).padStart(8, '0')} ${json}\n`;
}

/** The good prefix of the file: its entries, its length in bytes, and whether anything followed it. */
export function decodeLines(bytes: Uint8Array): { entries: BindingEntry[]; validBytes: number; torn: boolean } {
  const entries: BindingEntry[] = [];
  let at = 0;
  while (at < bytes.length) {
    const nl = bytes.indexOf(0x0a, at);
    if (nl < 0) return { entries, validBytes: at, torn: true };
    const head = Buffer.from(bytes.buffer, bytes.byteOffset + at, Math.min(9, nl - at)).toString('latin1');
    const json = bytes.subarray(at + 9, nl);
    if (nl - at <= 9 || head[8] !== ' ' || !/^[0-9a-f]{8} $/.test(head) || parseInt(head.slice(0, 8), 16) !== crc32c(json)) {
      return { entries, validBytes: at, torn: true };
    }
    try {
      entries.push(JSON.parse(Buffer.from(json.buffer, json.byteOffset, json.length).toString('utf8')) as BindingEntry);
    } catch {
      return { entries, validBytes: at, torn: true };
    }
    at = nl + 1;
  }
  return { entries, validBytes: at, torn: false };
}

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

export class BindingLog {
  /** fdatasyncs of the file so far (appends under `always`, the interval timer, close): tests observe the policy with it. */
  syncs = 0;
  /** Lines appended since the file was last rewritten. */
  linesSinceRewrite = 0;
  private fh: fs.promises.FileHandle | null = null;
  private queued: string[] = [];
  private waiters: Waiter[] = [];
  private scheduled = false;
  private writing: Promise<void> = Promise.resolve();
  private dirtySinceSync = false;
  private syncTimer: ReturnType<typeof setInterval> | null = null;
  private closed = false;
  private goodBytes = 0;
  private failure: WeirError | null = null;

  private constructor(
    readonly file: string,
    private readonly fsync: FsyncPolicy,
  ) {}

  /** Replay the file in `dir`, rewrite it to `snapshot(entries)` and open it for appending. */
  static async open(dir: string, fsyncPolicy: FsyncPolicy, snapshot: (entries: BindingEntry[]) => BindingEntry[]): Promise<BindingLog> {
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, BINDINGS_FILE);
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new WeirError(ErrorCode.STORAGE_ERROR, `cannot read the producer bindings ${file}: ${(err as Error).message}`, { cause: err });
      }
      bytes = Buffer.alloc(0);
    }
    const { entries, validBytes, torn } = decodeLines(bytes);
    if (torn && bytes.subarray(validBytes, bytes.length - 1).includes(0x0a)) {
      // Whole lines after a damaged one: not a torn last write. Keep the original for an operator.
      const kept = `${file}.damaged-${Date.now()}`;
      fs.copyFileSync(file, kept);
      console.error(`weir producers: ${file} is damaged at byte ${validBytes} with lines after it; replayed up to there, the original is kept as ${kept}`);
    }
    const log = new BindingLog(file, fsyncPolicy);
    // Start-up: nobody is served yet, so the synchronous atomic replace is fine here.
    const text = snapshot(entries).map(encodeLine).join('');
    writeFileAtomic(file, text, { durable: true });
    log.goodBytes = Buffer.byteLength(text);
    log.fh = await fs.promises.open(file, 'a');
    if (fsyncPolicy.mode === 'interval') {
      // Through the write chain, so a sync never meets a handle a rewrite is swapping.
      log.syncTimer = setInterval(() => {
        log.writing = log.writing.then(() => log.syncIfDirty());
      }, fsyncPolicy.intervalMs);
      log.syncTimer.unref();
    }
    return log;
  }

  /** Queue a line; resolves once it is written (and synced, per the policy). */
  append(entry: BindingEntry): Promise<void> {
    if (this.closed) return Promise.reject(new WeirError(ErrorCode.SHUTTING_DOWN, 'the producer bindings file is closed', { retryable: true }));
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.queued.push(encodeLine(entry));
      this.waiters.push({ resolve, reject });
      this.linesSinceRewrite++;
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
   * Replace the file with `snapshot()` (temp file, fdatasync, rename, directory fsync). Taken after
   * every earlier write finished; lines queued meanwhile go to the new file after it.
   */
  async rewrite(snapshot: () => BindingEntry[]): Promise<void> {
    const run = async (): Promise<void> => {
      await new Promise((r) => setImmediate(r));
      if (this.failure) throw this.failure;
      const text = snapshot().map(encodeLine).join('');
      const tmp = `${this.file}.tmp`;
      const out = await fs.promises.open(tmp, 'w');
      try {
        await out.writeFile(text);
        await out.datasync();
      } finally {
        await out.close();
      }
      await this.fh?.close();
      this.fh = null;
      try {
        await fs.promises.rename(tmp, this.file);
        const dir = await fs.promises.open(path.dirname(this.file), 'r');
        try {
          await dir.sync();
        } finally {
          await dir.close();
        }
        this.linesSinceRewrite = 0;
      } finally {
        // Appends go on to whichever file now has the name (the old one if the rename failed).
        this.fh = await fs.promises.open(this.file, 'a');
        this.goodBytes = (await this.fh.stat()).size;
      }
    };
    const done = this.writing.then(run);
    this.writing = done.catch(() => undefined);
    await done;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.syncTimer) clearInterval(this.syncTimer);
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
      if (!this.fh) throw new WeirError(ErrorCode.SHUTTING_DOWN, 'the producer bindings file is closed', { retryable: true });
      await this.fh.write(data);
      if (this.fsync.mode === 'always') {
        await this.fh.datasync();
        this.syncs++;
      } else this.dirtySinceSync = true;
      this.goodBytes += Buffer.byteLength(data);
    } catch (err) {
      const error = await this.undoFailedWrite(err);
      for (const w of waiters) w.reject(error);
      return;
    }
    for (const w of waiters) w.resolve();
  }

  private async undoFailedWrite(err: unknown): Promise<WeirError> {
    if (WeirError.isWeirError(err)) return err;
    const cause = err as NodeJS.ErrnoException;
    const full = cause.code === 'ENOSPC' || cause.code === 'EDQUOT';
    const error = new WeirError(full ? ErrorCode.STORAGE_FULL : ErrorCode.STORAGE_ERROR, `writing the producer bindings ${this.file} failed: ${cause.message}`, { retryable: full });
    try {
      await this.fh!.truncate(this.goodBytes);
      await this.fh!.datasync();
    } catch (again) {
      this.failure = new WeirError(ErrorCode.STORAGE_ERROR, `the producer bindings ${this.file} could not be restored after a failed write (${(again as Error).message}); restart the broker`);
    }
    return error;
  }

  private async syncIfDirty(): Promise<void> {
    if (!this.dirtySinceSync || !this.fh) return;
    this.dirtySinceSync = false;
    try {
      await this.fh.datasync();
      this.syncs++;
    } catch (err) {
      // Under 'interval' nothing else would notice: say so, and try again next interval.
      this.dirtySinceSync = true;
      console.error(`weir producers: fdatasync of ${this.file} failed: ${(err as Error).message}`);
    }
  }
}
