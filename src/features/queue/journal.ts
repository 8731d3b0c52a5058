/**
 * The queue feature's durable state: one journal (src/journal/), `<dataDir>/queues/queue.journal`,
 * of JSON entries, written every FLUSH_MS (group commit) and fsync'ed per the broker's policy.
 *
 *   {"w":1,"g":"group","t":"topic","p":0,"s":0}      window 1 is (group, topic, partition 0), first offset 0
 *   {"w":1,"v":[s,e,…],"u":[s,e,…],"r":[o,due,…],"d":[s,e,…]}
 *                                                    delivered once more / delivery undone (given back
 *                                                    unhandled) / waiting for a retry until due / done
 *   {"w":1,"snap":1,"s":S,"d":[…],"c":[o,n,…],"r":[…]} a whole window (after compaction)
 *   {"rd":"topic","p":0,"o":N}                        redrive cursor: dead letters of topic/p before N were redriven
 *
 * Events of one flush are merged per window into one entry (ranges are half-open, adjacent ones
 * joined). When the file passes COMPACT_BYTES it is replaced by the live state (a snapshot). A torn
 * last entry (crash mid-write) is cut at open; a damaged one is skipped and reported.
 *
 * Durability per the broker's fsync policy: `always`, every write is fdatasynced, and
 * `whenDurable` callbacks (ack/nack answers) run only after the write holding their events was;
 * `interval:MS`, an fdatasync within MS of a write; `never`, none. A write is whole or not there
 * (the journal cuts a failed one back); its entries are kept and written again.
 *
 * The format before the journal, `<dataDir>/queues/journal` (the same JSON, one per line), is read
 * once and rewritten as the journal.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WeirError } from '../../common/errors.js';
import { Journal, parseJsonPayload, readJournalFile, type FsyncPolicy } from '../../journal/index.js';

export const QUEUE_JOURNAL_FILE = 'queue.journal';
/** The line format before the journal (read once, then removed). */
export const LEGACY_QUEUE_JOURNAL_FILE = 'journal';

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

const encoder = new TextEncoder();

/** An entry of the journal, or undefined for a payload that is not one. */
function entryOf(v: unknown): JournalEntry | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as JournalEntry) : undefined;
}

/** Parse the line format (before the journal); a line that does not parse (a torn tail) is skipped. */
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
  readonly file: string;
  private readonly journal: Journal;
  private pending = new Map<number, Pending>();
  private lines: string[] = [];
  private scheduled = false;
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  private closed = false;
  private failing = false;
  private retryMs = RETRY_MIN_MS;
  /** Called once the events before them are written and synced (`always`). */
  private waiters: Array<(err: WeirError | null) => void> = [];

  constructor(
    dir: string,
    private readonly fsync: FsyncPolicy,
    /** Entries (JSON text) describing the whole live state, for compaction. */
    private readonly snapshot: () => string[],
    private readonly compactBytes = COMPACT_BYTES,
  ) {
    this.file = join(dir, QUEUE_JOURNAL_FILE);
    const legacy = { file: join(dir, LEGACY_QUEUE_JOURNAL_FILE), read: (f: string) => parseJournal(readFileSync(f, 'utf8')).map((e) => encoder.encode(JSON.stringify(e))) };
    // The service replays with `read` before it opens the journal: open only checks the entries.
    this.journal = Journal.open({ file: this.file, fsync, io: 'sync', legacy }, (p) => (entryOf(parseJsonPayload(p)) ? true : undefined)).journal;
  }

  /** The journal's entries (of the line format, when the journal was not written yet). */
  static read(dir: string): JournalEntry[] {
    const file = join(dir, QUEUE_JOURNAL_FILE);
    const legacy = join(dir, LEGACY_QUEUE_JOURNAL_FILE);
    if (!existsSync(file) && existsSync(legacy)) return parseJournal(readFileSync(legacy, 'utf8'));
    const out: JournalEntry[] = [];
    for (const p of readJournalFile(file).payloads) {
      const e = entryOf(parseJsonPayload(p));
      if (e) out.push(e);
    }
    return out;
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
    if (error === null && this.journal.size > this.compactBytes) this.compact();
  }

  /** Append the kept entries whole (and sync them under `always`); null, or the error they failed with. */
  private write(): WeirError | null {
    try {
      this.journal.appendSync(this.lines.map((l) => encoder.encode(l)));
    } catch (err) {
      // Disk full or another I/O error: queue state stays right in memory; keep the entries
      // (bounded) and try again shortly. Lost entries mean redeliveries after a restart.
      const error = err as WeirError;
      if (!this.failing) console.error(`weir queues: writing ${this.file} failed, retrying:`, error.message);
      this.failing = true;
      if (this.lines.length > MAX_UNWRITTEN_LINES) this.lines = this.lines.slice(-MAX_UNWRITTEN_LINES);
      // A journal that could not cut a failed write back refuses everything until a restart.
      if (this.journal.failure === null) {
        this.schedule(this.retryMs);
        this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
      }
      return error;
    }
    this.lines = [];
    this.failing = false;
    this.retryMs = RETRY_MIN_MS;
    return null;
  }

  /**
   * Replace the journal by a snapshot of the live state: durable (unless the policy is never)
   * before later appends go to the new file. A failure (disk full) leaves the journal as it was:
   * appends go on, compaction is tried after the next write.
   */
  private compact(): void {
    try {
      this.journal.replaceSync(this.snapshot().map((l) => encoder.encode(l)));
    } catch (err) {
      console.error(`weir queues: compacting ${this.file} failed, appending to it meanwhile:`, (err as Error).message);
    }
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    if (this.flushTimer !== null) clearTimeout(this.flushTimer); // a retry after a failed last write
    this.flushTimer = null;
    this.journal.closeSync();
  }
}
