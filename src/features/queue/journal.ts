/**
 * The queue feature's durable state: one append-only journal, `<dataDir>/queues/journal`, of JSON
 * lines, written every FLUSH_MS (group commit) and fsync'ed per the broker's policy.
 *
 *   {"w":1,"g":"group","t":"topic","p":0,"s":0}      window 1 is (group, topic, partition 0), first offset 0
 *   {"w":1,"v":[s,e,…],"u":[s,e,…],"r":[o,due,…],"d":[s,e,…]}
 *                                                    delivered once more / delivery undone (given back
 *                                                    unhandled) / waiting for a retry until due / done
 *   {"w":1,"snap":1,"s":S,"d":[…],"c":[o,n,…],"r":[…]} a whole window (after compaction)
 *   {"rd":"topic","p":0,"o":N}                        redrive cursor: dead letters of topic/p before N were redriven
 *
 * Events of one flush are merged per window into one line (ranges are half-open, adjacent ones
 * joined). When the file passes COMPACT_BYTES it is rewritten from the live state (a snapshot) and
 * renamed over the old one. A torn last line (crash mid-write) is ignored at load and cut at open.
 *
 * Durability per the broker's fsync policy: `always`, every write is fdatasynced, and
 * `whenDurable` callbacks (ack/nack answers) run only after the write holding their events was;
 * `interval:MS`, an fdatasync every MS while something is unsynced; `never`, none. A write is whole
 * or not there: a failed write or sync is cut back to the last good length (no partial line for the
 * next one to be glued to) and its lines are kept and written again.
 */
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { FsyncPolicy } from '../../common/fsync.js';
import type { WeirError } from '../../common/errors.js';
import { appendWholeSync, JournalWriteError, replaceJournal, syncJournalSync } from '../../common/journal-sync.js';

export const COMPACT_BYTES = 16 << 20;
/** Events are gathered this long and written in one line per window. */
const FLUSH_MS = 5;
/** Lines kept for a retry while writes fail (the oldest are dropped beyond it). */
const MAX_UNWRITTEN_LINES = 100_000;
/** After a failed write, the kept lines are tried again this much later (doubling up to the max). */
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

export type JournalEntry = Record<string, unknown>;

interface Pending {
  v: number[];
  u: number[];
  r: number[];
  d: number[];
}

/** Append [from, to) to a flat range list, joining it with the last range when adjacent. */
function addRange(list: number[], from: number, to: number): void {
  const n = list.length;
  if (n >= 2 && list[n - 1] === from) list[n - 1] = to;
  else list.push(from, to);
}

/** Parse journal text; a line that does not parse (a torn tail) is skipped. */
export function parseJournal(text: string): JournalEntry[] {
  const out: JournalEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.length === 0) continue;
    try {
      const e = JSON.parse(line) as unknown;
      if (typeof e === 'object' && e !== null && !Array.isArray(e)) out.push(e as JournalEntry);
    } catch {
      // torn write at the tail: everything before it is intact
    }
  }
  return out;
}

export class QueueJournal {
  private readonly file: string;
  private fd: number;
  private size: number;
  private pending = new Map<number, Pending>();
  private lines: string[] = [];
  private scheduled = false;
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  private syncTimer: ReturnType<typeof setInterval> | null = null;
  private unsynced = false;
  private closed = false;
  private failing = false;
  private retryMs = RETRY_MIN_MS;
  /** Set when a failed write could not be cut back: nothing more is appended (until a restart). */
  private broken = false;
  /** Called once the events before them are written and synced (`always`). */
  private waiters: Array<(err: WeirError | null) => void> = [];

  constructor(
    dir: string,
    private readonly fsync: FsyncPolicy,
    /** Lines describing the whole live state, for compaction. */
    private readonly snapshot: () => string[],
    private readonly compactBytes = COMPACT_BYTES,
  ) {
    mkdirSync(dir, { recursive: true });
    this.file = join(dir, 'journal');
    cutTornTail(this.file);
    this.fd = openSync(this.file, 'a');
    this.size = statSync(this.file).size;
    if (fsync.mode === 'interval') {
      this.syncTimer = setInterval(() => this.sync(), fsync.intervalMs);
      this.syncTimer.unref();
    }
  }

  static read(dir: string): JournalEntry[] {
    const file = join(dir, 'journal');
    return existsSync(file) ? parseJournal(readFileSync(file, 'utf8')) : [];
  }

  line(entry: JournalEntry): void {
    this.lines.push(JSON.stringify(entry));
    this.schedule();
  }

  delivered(w: number, from: number, to: number): void {
    addRange(this.of(w).v, from, to);
  }
  undelivered(w: number, from: number, to: number): void {
    addRange(this.of(w).u, from, to);
  }
  done(w: number, from: number, to: number): void {
    addRange(this.of(w).d, from, to);
  }
  retry(w: number, offset: number, due: number): void {
    this.of(w).r.push(offset, due);
  }

  private of(w: number): Pending {
    let p = this.pending.get(w);
    if (!p) {
      p = { v: [], u: [], r: [], d: [] };
      this.pending.set(w, p);
      this.schedule();
    }
    return p;
  }

  /**
   * Call `done` once every event recorded so far is durable: under `always` after the write that
   * holds them was fdatasynced (with the error if that write failed: the events stay queued and
   * are written again), otherwise at once.
   */
  whenDurable(done: (err: WeirError | null) => void): void {
    if (this.fsync.mode !== 'always' || this.closed) return done(null);
    this.waiters.push(done);
    this.schedule();
  }

  private schedule(delayMs = FLUSH_MS): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    // A few ms, not every event-loop turn: with ack-per-message consumers a turn carries one ack
    // frame, and a write (plus JSON) per turn cost more than the acks themselves. Only ack answers
    // under `always` wait for the journal; otherwise a lost tail means redeliveries, never losses.
    this.flushTimer = setTimeout(() => this.flush(), delayMs);
  }

  /** Write everything of this turn in one write; compact when the file grew too big. */
  flush(): void {
    this.scheduled = false;
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (this.closed) return;
    for (const [w, p] of this.pending) {
      const e: JournalEntry = { w };
      if (p.v.length > 0) e.v = p.v;
      if (p.u.length > 0) e.u = p.u;
      if (p.r.length > 0) e.r = p.r;
      if (p.d.length > 0) e.d = p.d;
      this.lines.push(JSON.stringify(e));
    }
    this.pending.clear();
    const waiters = this.waiters;
    this.waiters = [];
    if (this.lines.length === 0) {
      for (const w of waiters) w(null);
      return;
    }
    const error = this.write();
    for (const w of waiters) w(error);
    if (error === null && this.size > this.compactBytes) this.compact();
  }

  /** Append the kept lines whole (and sync them under `always`); null, or the error they failed with. */
  private write(): WeirError | null {
    const bytes = Buffer.from(this.lines.join('\n') + '\n', 'utf8');
    try {
      if (this.broken) throw new JournalWriteError(this.file, new Error('an earlier failed write could not be cut back; restart the broker'), false);
      appendWholeSync(this.fd, bytes, this.size, this.file);
      if (this.fsync.mode === 'always') {
        try {
          syncJournalSync(this.fd, this.file);
        } catch (err) {
          // Written but maybe not durable: take it back out, it is written again with the retry.
          let restored = true;
          try {
            ftruncateSync(this.fd, this.size);
          } catch {
            restored = false;
          }
          throw new JournalWriteError(this.file, err, restored);
        }
      } else if (this.fsync.mode === 'interval') this.unsynced = true;
    } catch (err) {
      // Disk full or another I/O error: queue state stays right in memory; keep the lines (bounded)
      // and try again shortly. Lost lines mean redeliveries after a restart.
      const error = err instanceof JournalWriteError ? err : new JournalWriteError(this.file, err, true);
      if (!error.restored) this.broken = true;
      if (!this.failing) console.error(`weir queues: writing ${this.file} failed, retrying:`, error.message);
      this.failing = true;
      if (this.lines.length > MAX_UNWRITTEN_LINES) this.lines = this.lines.slice(-MAX_UNWRITTEN_LINES);
      if (!this.broken) {
        this.schedule(this.retryMs);
        this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
      }
      return error;
    }
    this.size += bytes.length;
    this.lines = [];
    this.failing = false;
    this.retryMs = RETRY_MIN_MS;
    return null;
  }

  /** Rewrite the journal as a snapshot of the live state. */
  private compact(): void {
    const text = this.snapshot().join('\n') + '\n';
    // Durable (unless the policy is never): the rename must reach the disk before later appends go
    // to the new file, or a crash could bring back the old journal without them (acks and delivery
    // counts lost). A failure (disk full) leaves the journal as it was: appends go on, compaction
    // is tried after the next write.
    try {
      replaceJournal(this.file, text, this.fsync.mode !== 'never');
    } catch (err) {
      console.error(`weir queues: compacting ${this.file} failed, appending to it meanwhile:`, (err as Error).message);
      return;
    }
    closeSync(this.fd);
    this.fd = openSync(this.file, 'a');
    this.size = Buffer.byteLength(text);
    this.unsynced = false;
  }

  private sync(): void {
    if (!this.unsynced || this.closed) return;
    this.unsynced = false;
    try {
      syncJournalSync(this.fd, this.file);
    } catch (err) {
      this.unsynced = true;
      console.error(`weir queues: fsync of ${this.file} failed:`, (err as Error).message);
    }
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    if (this.syncTimer) clearInterval(this.syncTimer);
    if (this.flushTimer !== null) clearTimeout(this.flushTimer); // a retry after a failed last write
    this.flushTimer = null;
    try {
      if (this.unsynced) syncJournalSync(this.fd, this.file);
    } finally {
      closeSync(this.fd);
    }
  }
}

/** Cut an unterminated last line (a crash mid-write), so the next append starts a line of its own. */
function cutTornTail(file: string): void {
  if (!existsSync(file)) return;
  const size = statSync(file).size;
  if (size === 0) return;
  const fd = openSync(file, 'r+');
  try {
    const last = Buffer.alloc(1);
    readSync(fd, last, 0, 1, size - 1);
    if (last[0] === 0x0a) return;
    const text = readFileSync(fd);
    ftruncateSync(fd, text.lastIndexOf(0x0a) + 1);
  } finally {
    closeSync(fd);
  }
}
