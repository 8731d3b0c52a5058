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
 * renamed over the old one. A torn last line (crash mid-write) is ignored at load.
 */
import { closeSync, existsSync, fdatasyncSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { writeFileAtomic } from '../../common/atomic-file.js';
import { join } from 'node:path';
import type { FsyncPolicy } from '../../broker.js';

export const COMPACT_BYTES = 16 << 20;
/** Events are gathered this long and written in one line per window. */
const FLUSH_MS = 5;
/** Lines kept for a retry while writes fail (the oldest are dropped beyond it). */
const MAX_UNWRITTEN_LINES = 100_000;

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

  constructor(
    dir: string,
    private readonly fsync: FsyncPolicy,
    /** Lines describing the whole live state, for compaction. */
    private readonly snapshot: () => string[],
    private readonly compactBytes = COMPACT_BYTES,
  ) {
    mkdirSync(dir, { recursive: true });
    this.file = join(dir, 'journal');
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

  private schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    // A few ms, not every event-loop turn: with ack-per-message consumers a turn carries one ack
    // frame, and a write (plus JSON) per turn cost more than the acks themselves. Nothing waits for
    // the journal (a lost tail means redeliveries, never losses), so this only widens that tail.
    this.flushTimer = setTimeout(() => this.flush(), FLUSH_MS);
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
    if (this.lines.length === 0) return;
    const text = this.lines.join('\n') + '\n';
    const bytes = Buffer.from(text, 'utf8');
    try {
      writeSync(this.fd, bytes);
      this.size += bytes.length;
      this.lines = [];
      if (this.fsync.mode === 'always') fdatasyncSync(this.fd);
      else this.unsynced = true;
      if (this.size > this.compactBytes) this.compact();
      this.failing = false;
    } catch (err) {
      // Disk full or another I/O error: queue state stays right in memory; keep the lines (bounded)
      // and try again with the next turn's events. Lost lines mean redeliveries after a restart.
      if (!this.failing) console.error(`weir queues: writing ${this.file} failed, retrying:`, (err as Error).message);
      this.failing = true;
      if (this.lines.length > MAX_UNWRITTEN_LINES) this.lines = this.lines.slice(-MAX_UNWRITTEN_LINES);
    }
  }

  /** Rewrite the journal as a snapshot of the live state. */
  private compact(): void {
    const text = this.snapshot().join('\n') + '\n';
    // Durable: the rename must reach the disk before later appends go to the new file, or a crash
    // could bring back the old journal without them (acks and delivery counts lost). The temp file
    // descriptor is closed even when the write fails (disk full): no leak per failed attempt.
    writeFileAtomic(this.file, text, { durable: true });
    closeSync(this.fd);
    this.fd = openSync(this.file, 'a');
    this.size = Buffer.byteLength(text);
    this.unsynced = false;
  }

  private sync(): void {
    if (!this.unsynced || this.closed) return;
    this.unsynced = false;
    try {
      fdatasyncSync(this.fd);
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
    try {
      if (this.fsync.mode !== 'never') fdatasyncSync(this.fd);
    } finally {
      closeSync(this.fd);
    }
  }
}
