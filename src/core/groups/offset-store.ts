/**
 * Committed consumer-group offsets, durable across broker restarts: an append-only file of
 * fixed-shape JSON lines (`[group, topic, partition, offset]`), replayed at start and compacted into
 * a snapshot when it grows. Writes are synchronous (the main thread commits in batches; one write
 * per batch) and synced per the broker's fsync policy: `always`, before the commit returns (so
 * before it is acknowledged); `interval:MS`, within MS (a timer armed by the first unsynced write);
 * `never`, not at all.
 *
 * A commit is stored whole or not at all: a write that fails (a full disk, or part of the line
 * written) is cut back to the file's last good length and thrown as STORAGE_FULL (retryable) or
 * STORAGE_ERROR, and the offsets in memory stay as they were. Otherwise a partial line would be
 * acknowledged and the next line, glued to it, lost too at replay.
 *
 * Replay applies every line that parses; a line that does not (anywhere in the file) is skipped
 * and reported in `recovery` and on `weir:journal:skipped`, and an unterminated last line (a crash
 * mid-write: never acknowledged) is cut off, so the next append starts on a line of its own.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FsyncPolicy } from '../../common/fsync.js';
import { channels } from '../../common/diagnostics.js';
import { WeirError } from '../../common/errors.js';
import { appendWholeSync, JournalWriteError, replaceJournal, syncJournalSync } from '../../common/journal-sync.js';
import { ErrorCode } from '../../protocol/codes.js';

type Key = string; // `${group}\u0000${topic}\u0000${partition}`

/** What replay found that it could not apply. */
export interface OffsetStoreRecovery {
  /** Lines that did not parse as a commit and were skipped (every other line was applied). */
  skippedLines: number;
  /** Byte positions of the first skipped lines (at most MAX_REPORTED_POSITIONS). */
  positions: number[];
  /** Bytes of an unterminated last line, cut off at open. */
  truncatedBytes: number;
}

/** What `weir:journal:skipped` publishes. */
export interface JournalSkipped extends OffsetStoreRecovery {
  file: string;
}

const MAX_REPORTED_POSITIONS = 100;
/** After a failed compaction, appends go on and compaction is tried again this many lines later. */
const COMPACT_RETRY_LINES = 1024;

export class OffsetStore {
  readonly recovery: OffsetStoreRecovery;
  private readonly offsets = new Map<Key, number>();
  private fd: number;
  private lines = 0;
  /** Length of the file's whole lines: where a failed append is cut back to. */
  private size = 0;
  private readonly file: string;
  private unsynced = false;
  private syncTimer: ReturnType<typeof setTimeout> | null = null;
  private syncFailing = false;
  private compactAfterLines = 0;
  /** Set when a failed append could not be cut back: the file may end in a partial line. */
  private broken: WeirError | null = null;

  constructor(
    dir: string,
    private readonly fsync: FsyncPolicy,
  ) {
    fs.mkdirSync(dir, { recursive: true });
    this.file = path.join(dir, 'offsets.jsonl');
    this.recovery = this.replay();
    if (this.recovery.skippedLines > 0 || this.recovery.truncatedBytes > 0) {
      if (channels.journalSkipped.hasSubscribers) channels.journalSkipped.publish({ file: this.file, ...this.recovery } satisfies JournalSkipped);
    }
    this.fd = fs.openSync(this.file, 'a');
    if (this.compactDue()) this.compact();
  }

  get(group: string, topic: string, partition: number): number | undefined {
    return this.offsets.get(key(group, topic, partition));
  }

  /**
   * Store several commits with one write. Returns once they are written (and, under `always`,
   * synced); throws STORAGE_FULL / STORAGE_ERROR, with nothing of them stored, when they cannot be.
   */
  commit(group: string, topic: string, entries: ReadonlyArray<readonly [number, number]>): void {
    let text = '';
    for (const [p, o] of entries) text += JSON.stringify([group, topic, p, o]) + '\n';
    if (!text) return;
    if (this.broken) throw this.broken;
    const bytes = Buffer.from(text, 'utf8');
    try {
      appendWholeSync(this.fd, bytes, this.size, this.file);
    } catch (err) {
      if (err instanceof JournalWriteError && !err.restored) {
        this.broken = new WeirError(ErrorCode.STORAGE_ERROR, `the group offset store ${this.file} could not be cut back after a failed write; restart the broker`, { cause: err });
        console.error(`weir groups: ${this.broken.message}:`, err.message);
      }
      throw err;
    }
    if (this.fsync.mode === 'always') {
      try {
        syncJournalSync(this.fd, this.file);
      } catch (err) {
        // Written but maybe not durable: not acknowledged, so take it back out of the file.
        this.cutBack();
        throw new JournalWriteError(this.file, err, this.broken === null);
      }
    }
    this.size += bytes.length;
    for (const [p, o] of entries) this.offsets.set(key(group, topic, p), o);
    this.lines += entries.length;
    if (this.fsync.mode === 'interval') {
      this.unsynced = true;
      this.armSync(this.fsync.intervalMs);
    }
    if (this.compactDue()) this.compact();
  }

  close(): void {
    if (this.syncTimer) clearTimeout(this.syncTimer);
    this.syncTimer = null;
    try {
      if (this.unsynced) syncJournalSync(this.fd, this.file);
    } finally {
      fs.closeSync(this.fd);
    }
  }

  private armSync(ms: number): void {
    if (this.syncTimer) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = null;
      if (!this.unsynced) return;
      try {
        syncJournalSync(this.fd, this.file);
        this.unsynced = false;
        this.syncFailing = false;
      } catch (err) {
        if (!this.syncFailing) console.error(`weir groups: fdatasync of ${this.file} failed, retrying:`, (err as Error).message);
        this.syncFailing = true;
        this.armSync(ms);
      }
    }, ms);
    // The interval bounds the loss window; it must not keep a closing process alive.
    this.syncTimer.unref();
  }

  private cutBack(): void {
    try {
      fs.ftruncateSync(this.fd, this.size);
    } catch (err) {
      this.broken = new WeirError(ErrorCode.STORAGE_ERROR, `the group offset store ${this.file} could not be cut back after a failed sync; restart the broker`, { cause: err });
    }
  }

  private compactDue(): boolean {
    return this.lines > 4 * Math.max(1024, this.offsets.size) && this.lines >= this.compactAfterLines;
  }

  /**
   * Rewrite as one line per key: a temp file, fsync, rename over, fsync the directory (the syncs
   * unless the policy is never). Then the appends go to the new file. A failure (disk full) leaves the old file and its descriptor as
   * they were: the commit that triggered it is stored already, so it is not failed for this.
   */
  private compact(): void {
    let text = '';
    for (const [k, o] of this.offsets) {
      const [g, t, p] = k.split('\u0000') as [string, string, string];
      text += JSON.stringify([g, t, Number(p), o]) + '\n';
    }
    try {
      replaceJournal(this.file, text, this.fsync.mode !== 'never');
    } catch (err) {
      this.compactAfterLines = this.lines + COMPACT_RETRY_LINES;
      console.error(`weir groups: compacting ${this.file} failed, appending to it meanwhile:`, (err as Error).message);
      return;
    }
    fs.closeSync(this.fd);
    this.fd = fs.openSync(this.file, 'a');
    this.lines = this.offsets.size;
    this.size = Buffer.byteLength(text);
    this.unsynced = false;
  }

  /** Apply every line that parses; skip (and count) the others; cut an unterminated last line. */
  private replay(): OffsetStoreRecovery {
    const recovery: OffsetStoreRecovery = { skippedLines: 0, positions: [], truncatedBytes: 0 };
    if (!fs.existsSync(this.file)) return recovery;
    const bytes = fs.readFileSync(this.file);
    let at = 0;
    for (;;) {
      const nl = bytes.indexOf(0x0a, at);
      if (nl < 0) break;
      if (nl > at) {
        const entry = parseLine(bytes.toString('utf8', at, nl));
        if (entry) {
          this.offsets.set(key(entry[0], entry[1], entry[2]), entry[3]);
          this.lines++;
        } else {
          recovery.skippedLines++;
          if (recovery.positions.length < MAX_REPORTED_POSITIONS) recovery.positions.push(at);
        }
      }
      at = nl + 1;
    }
    if (at < bytes.length) {
      // A crash mid-write: that commit was never acknowledged (a line counts once written whole).
      recovery.truncatedBytes = bytes.length - at;
      if (recovery.positions.length < MAX_REPORTED_POSITIONS) recovery.positions.push(at);
      fs.truncateSync(this.file, at);
    }
    this.size = at;
    return recovery;
  }
}

/** `[group, topic, partition, offset]`, or null for anything else (a torn or damaged line). */
function parseLine(line: string): [string, string, number, number] | null {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  if (!Array.isArray(v) || v.length !== 4) return null;
  const [g, t, p, o] = v as unknown[];
  if (typeof g !== 'string' || typeof t !== 'string' || !Number.isSafeInteger(p) || !Number.isSafeInteger(o)) return null;
  if ((p as number) < 0 || (o as number) < 0) return null;
  return [g, t, p as number, o as number];
}

function key(group: string, topic: string, partition: number): Key {
  return `${group}\u0000${topic}\u0000${partition}`;
}
