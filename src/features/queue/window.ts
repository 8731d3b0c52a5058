/**
 * The share window of one (queue group, topic, partition): the state of every offset in
 * [start, start + capacity) in typed arrays, indexed by `offset & mask` (a ring that grows by
 * doubling up to MAX_WINDOW). Pure: no IO, no timers; the caller passes `now`.
 *
 *   AVAILABLE ──take──▶ IN_FLIGHT ──ack──▶ DONE
 *       ▲                  │ nack retry ──▶ RETRY_WAIT ──due──▶ AVAILABLE
 *       │                  │ timeout / owner gone (deliveries < max)
 *       └──────────────────┘
 *   IN_FLIGHT ──nack fatal / deliveries ≥ max / expired──▶ DEAD_LETTERING ──appended──▶ DONE
 *
 * Offsets at or above `readNext` are not loaded yet (their records are read from the log later);
 * after a restart some of them may already be DONE or carry a delivery count from the journal.
 * `start` advances past every DONE prefix; the records of a fully DONE prefix are released.
 */
import { MinHeap } from '../../common/min-heap.js';
import { FifoArena } from './arena.js';
import { F_KEY_LENGTH, RECORD_HEADER_BYTES, readU32, readU53, F_OFFSET } from '../../protocol/record.js';

export const AVAILABLE = 0;
export const IN_FLIGHT = 1;
export const DONE = 2;
export const RETRY_WAIT = 3;
export const DEAD_LETTERING = 4;

/** Most offsets a window tracks at once (loaded and not done): reading ahead stops there. */
export const MAX_WINDOW = 1 << 16;
const INITIAL_WINDOW = 1 << 10;

/** Records read from the log: offsets [base, end), `pos[o - base]` = byte position or -1 (gap). */
interface Chunk {
  base: number;
  end: number;
  bytes: Uint8Array;
  pos: Int32Array;
  /** Where `bytes` ends in the window's arena (release it with this), or -1: allocated on its own. */
  arenaEnd: number;
}

/** Read-ahead records kept in one reused buffer per window (arena.ts); a bigger read gets its own. */
export const ARENA_BYTES = 4 << 20;

/** Offsets handed out by take(), and those that must go to the dead-letter topic instead. */
export interface TakeResult {
  offsets: number[];
  expired: number[];
  exhausted: number[];
  /** Not meant for this group (a redriven dead letter of another group): DONE already. */
  skipped: number[];
}

export class ShareWindow {
  start: number;
  /** Offsets below this are loaded (or were skipped as gaps). */
  readNext: number;
  /** One past the highest offset with any state (for advancing `start`). */
  private limit: number;
  private cap = INITIAL_WINDOW;
  private mask = INITIAL_WINDOW - 1;
  private state = new Uint8Array(INITIAL_WINDOW);
  private counts = new Uint16Array(INITIAL_WINDOW);
  private owner = new Int32Array(INITIAL_WINDOW).fill(-1);
  /** IN_FLIGHT: visibility deadline; RETRY_WAIT: when it becomes available again. */
  private due = new Float64Array(INITIAL_WINDOW);
  private chunks: Chunk[] = [];
  private readonly arena = new FifoArena(ARENA_BYTES);
  loadedBytes = 0;
  /** No AVAILABLE loaded offset is below this (unordered scans start here). */
  private scanFrom: number;
  /** AVAILABLE offsets below readNext. */
  availableLoaded = 0;
  inFlight = 0;
  /** Visibility deadlines in delivery order: [deadline, from, to] triples; a hint, `due` decides. */
  private timeouts: number[] = [];
  private timeoutsHead = 0;
  /** Some deadline is earlier than one queued before it: expire() checks every entry, not just the head. */
  private timeoutsUnordered = false;
  /** RETRY_WAIT offsets by due time (key: due, tie: offset); a hint, `due` decides. */
  private readonly dueRetries = new MinHeap(16);

  constructor(start: number) {
    this.start = start;
    this.readNext = start;
    this.limit = start;
    this.scanFrom = start;
  }

  /** How many more offsets may be loaded before the window is full. */
  room(): number {
    return Math.max(0, this.start + MAX_WINDOW - this.readNext);
  }

  stateOf(o: number): number {
    if (o < this.start) return DONE;
    if (o >= this.start + this.cap) return AVAILABLE;
    return this.state[o & this.mask]!;
  }

  deliveries(o: number): number {
    if (o < this.start || o >= this.start + this.cap) return 0;
    return this.counts[o & this.mask]!;
  }

  /** Grow the ring so that `o` fits; false when it would exceed MAX_WINDOW. */
  private fit(o: number): boolean {
    if (o < this.start + this.cap) return true;
    if (o >= this.start + MAX_WINDOW) return false;
    let cap = this.cap;
    while (o >= this.start + cap) cap *= 2;
    const mask = cap - 1;
    const state = new Uint8Array(cap);
    const counts = new Uint16Array(cap);
    const owner = new Int32Array(cap).fill(-1);
    const due = new Float64Array(cap);
    for (let x = this.start; x < this.start + this.cap; x++) {
      const a = x & this.mask;
      const b = x & mask;
      state[b] = this.state[a]!;
      counts[b] = this.counts[a]!;
      owner[b] = this.owner[a]!;
      due[b] = this.due[a]!;
    }
    this.cap = cap;
    this.mask = mask;
    this.state = state;
    this.counts = counts;
    this.owner = owner;
    this.due = due;
    return true;
  }

  // ---------------------------------------------------------------- loading records

  /**
   * Records read from the log at `readNext` (`next` = offset after them), copied: `records` may be
   * a view the caller does not own. Offsets already DONE (journal) stay DONE. Returns how many
   * became available.
   */
  load(view: Uint8Array, count: number, next: number): number {
    const base = this.readNext;
    // A read of `room()` records can span more offsets than that when the log has gaps: keep what
    // fits in the window and read the rest again later (throwing here stalled the partition for good).
    next = Math.min(next, this.start + MAX_WINDOW);
    if (next <= base) return 0;
    const copied = this.arena.copy(view);
    const records = copied === null ? view.slice() : copied.view;
    this.fit(next - 1);
    const pos = new Int32Array(next - base).fill(-1);
    let at = 0;
    for (let i = 0; i < count && at + 4 <= records.length; i++) {
      const o = readU53(records, at + F_OFFSET);
      if (o >= base && o < next) pos[o - base] = at;
      at += 4 + readU32(records, at);
    }
    this.chunks.push({ base, end: next, bytes: records, pos, arenaEnd: copied === null ? -1 : copied.end });
    this.loadedBytes += records.length;
    let added = 0;
    for (let o = base; o < next; o++) {
      const s = o & this.mask;
      if (pos[o - base] === -1) this.state[s] = DONE; // a gap: nothing to deliver
      else if (this.state[s] === AVAILABLE) added++;
    }
    this.readNext = next;
    if (next > this.limit) this.limit = next;
    this.availableLoaded += added;
    this.advance();
    return added;
  }

  /**
   * The group has no consumer left: release the records read ahead (they are read again when a
   * consumer comes back) so an idle group holds no read buffers. Offset states and delivery counts
   * stay. Only valid when nothing is in flight.
   */
  unload(): void {
    if (this.inFlight > 0) return;
    this.chunks = [];
    this.arena.clear(true);
    this.loadedBytes = 0;
    this.availableLoaded = 0;
    this.readNext = this.start;
    this.scanFrom = this.start;
  }

  /**
   * The log no longer has offsets below `logStart` (retention): the ones not loaded yet are lost to
   * this group. Marks [readNext, logStart) DONE, as far as the window reaches; returns the range
   * marked (from, to) so the caller can journal it. Loaded offsets keep their records and stay.
   */
  skipTo(logStart: number): [number, number] {
    const from = this.readNext;
    if (logStart <= from) return [from, from];
    if (this.start === from) {
      this.jumpTo(logStart);
      return [from, logStart];
    }
    const to = Math.min(logStart, this.start + MAX_WINDOW);
    for (let o = from; o < to; o++) {
      this.fit(o);
      this.state[o & this.mask] = DONE;
    }
    this.readNext = to;
    if (to > this.limit) this.limit = to;
    this.advance();
    return [from, to];
  }

  /** Every offset below `to` is done: move `start` there, clearing the ring slots it passes. */
  private jumpTo(to: number): void {
    for (let o = this.start; o < to && o < this.start + this.cap; o++) {
      const s = o & this.mask;
      if (this.state[s] === IN_FLIGHT) this.inFlight--;
      else if (this.state[s] === AVAILABLE && o < this.readNext) this.availableLoaded--;
      this.state[s] = AVAILABLE;
      this.counts[s] = 0;
      this.owner[s] = -1;
      this.due[s] = 0;
    }
    this.start = to;
    if (this.limit < to) this.limit = to;
    this.advance();
  }

  /**
   * The chunk holding loaded offset `o`. Per-message paths go through this (no tuple allocated per
   * record) and try `hint` (the chunk of the previous offset) before the binary search.
   */
  private chunkOf(o: number, hint: Chunk | null = null): Chunk {
    if (hint !== null && o >= hint.base && o < hint.end && hint.pos[o - hint.base]! >= 0) return hint;
    const chunks = this.chunks;
    let lo = 0;
    let hi = chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (chunks[mid]!.base <= o) lo = mid;
      else hi = mid - 1;
    }
    const c = chunks[lo];
    if (!c || o < c.base || o >= c.end || c.pos[o - c.base]! < 0) throw new Error(`offset ${o} is not loaded`);
    return c;
  }

  /** [bytes, position] of a loaded offset's stored record (dead letters: not a per-delivery path). */
  record(o: number): [Uint8Array, number] {
    const c = this.chunkOf(o);
    return [c.bytes, c.pos[o - c.base]!];
  }

  /**
   * The stored records of `offsets` as one batch: a view into the read buffer when they are
   * adjacent there (the common case), else a copy.
   */
  batchOf(offsets: number[]): Uint8Array {
    let bytes: Uint8Array | null = null;
    let first = 0;
    let end = 0;
    let adjacent = true;
    let total = 0;
    let c: Chunk | null = null;
    for (let i = 0; i < offsets.length; i++) {
      c = this.chunkOf(offsets[i]!, c);
      const b = c.bytes;
      const at = c.pos[offsets[i]! - c.base]!;
      const size = 4 + readU32(b, at);
      total += size;
      if (bytes === null) {
        bytes = b;
        first = at;
      } else if (b !== bytes || at !== end) adjacent = false;
      end = at + size;
    }
    if (bytes === null) return new Uint8Array(0);
    if (adjacent) return bytes.subarray(first, end);
    const out = new Uint8Array(total);
    let p = 0;
    c = null;
    for (let i = 0; i < offsets.length; i++) {
      c = this.chunkOf(offsets[i]!, c);
      const b = c.bytes;
      const at = c.pos[offsets[i]! - c.base]!;
      const size = 4 + readU32(b, at);
      out.set(b.subarray(at, at + size), p);
      p += size;
    }
    return out;
  }

  // ---------------------------------------------------------------- handing out

  /**
   * Up to `max` AVAILABLE loaded offsets for `consumer`, in offset order, now IN_FLIGHT until
   * `now + visibilityMs`. Offsets that expired (`expiresAt(bytes, at) <= now`) or whose delivery
   * count reached `maxDeliveries` are returned separately, as DEAD_LETTERING. With `orderedKeys`,
   * an offset whose key has an earlier offset that is not DONE is skipped. Offsets for which
   * `foreign(bytes, at)` holds are DONE at once (`skipped`).
   */
  take(
    consumer: number,
    max: number,
    now: number,
    visibilityMs: number,
    maxDeliveries: number,
    orderedKeys: boolean,
    expiresAt: (bytes: Uint8Array, at: number) => number,
    foreign: (bytes: Uint8Array, at: number) => boolean,
  ): TakeResult {
    const out: TakeResult = { offsets: [], expired: [], exhausted: [], skipped: [] };
    if (this.availableLoaded === 0 || max <= 0) return out;
    const seen = orderedKeys ? new Set<number>() : null;
    let o = orderedKeys ? this.start : this.scanFrom;
    let firstSkipped = -1;
    let chunk: Chunk | null = null;
    const deadline = now + visibilityMs;
    for (; o < this.readNext && out.offsets.length < max && this.availableLoaded > 0; o++) {
      const s = o & this.mask;
      const st = this.state[s]!;
      if (st === DONE) continue;
      if (seen !== null) {
        const key = this.keyHashOf(o, chunk);
        if (key >= 0) {
          if (seen.has(key)) {
            if (st === AVAILABLE && firstSkipped < 0) firstSkipped = o;
            continue;
          }
          seen.add(key);
        }
      }
      if (st !== AVAILABLE) continue;
      chunk = this.chunkOf(o, chunk);
      const bytes = chunk.bytes;
      const at = chunk.pos[o - chunk.base]!;
      this.availableLoaded--;
      if (foreign(bytes, at)) {
        this.state[s] = DONE;
        out.skipped.push(o);
        continue;
      }
      if (expiresAt(bytes, at) <= now) {
        this.state[s] = DEAD_LETTERING;
        out.expired.push(o);
        continue;
      }
      if (this.counts[s]! >= maxDeliveries) {
        this.state[s] = DEAD_LETTERING;
        out.exhausted.push(o);
        continue;
      }
      this.state[s] = IN_FLIGHT;
      this.owner[s] = consumer;
      this.counts[s] = Math.min(0xffff, this.counts[s]! + 1);
      this.due[s] = deadline;
      this.inFlight++;
      out.offsets.push(o);
    }
    if (seen === null) this.scanFrom = o;
    else if (firstSkipped >= 0 && firstSkipped < this.scanFrom) this.scanFrom = firstSkipped;
    const n = out.offsets.length;
    if (n > 0) {
      const t = this.timeouts;
      // The timeout was shortened (alter_topic): this deadline is earlier than ones queued before it.
      if (t.length > this.timeoutsHead && t[t.length - 3]! > deadline) this.timeoutsUnordered = true;
      t.push(deadline, out.offsets[0]!, out.offsets[n - 1]! + 1);
    }
    if (out.skipped.length > 0) this.advance();
    return out;
  }

  /**
   * A 32-bit FNV-1a hash of `o`'s key, or -1 without a key. Ordered keys compare hashes, not
   * strings (no string built per offset scanned): two keys that collide are merely ordered with each
   * other, which delays a message but never breaks a key's order.
   */
  private keyHashOf(o: number, hint: Chunk | null): number {
    const c = this.chunkOf(o, hint);
    const b = c.bytes;
    const at = c.pos[o - c.base]!;
    const kl = readU32(b, at + F_KEY_LENGTH) | 0;
    if (kl < 0) return -1;
    let h = 0x811c9dc5;
    for (let i = at + RECORD_HEADER_BYTES, end = i + kl; i < end; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
    return h >>> 0;
  }

  private makeAvailable(o: number): void {
    const s = o & this.mask;
    this.state[s] = AVAILABLE;
    this.owner[s] = -1;
    if (o < this.readNext) {
      this.availableLoaded++;
      if (o < this.scanFrom) this.scanFrom = o;
    }
  }

  /**
   * A delivered offset comes back (timeout, owner gone): available again, or DEAD_LETTERING
   * (pushed to `exhausted`) once it was delivered `maxDeliveries` times.
   */
  private release(o: number, maxDeliveries: number, exhausted: number[]): void {
    const s = o & this.mask;
    this.inFlight--;
    if (this.counts[s]! >= maxDeliveries) {
      this.state[s] = DEAD_LETTERING;
      this.owner[s] = -1;
      exhausted.push(o);
    } else this.makeAvailable(o);
  }

  private owned(o: number, consumer: number): boolean {
    if (o < this.start || o >= this.readNext) return false;
    const s = o & this.mask;
    return this.state[s] === IN_FLIGHT && this.owner[s] === consumer;
  }

  /** Acknowledge [from, to) of `consumer`; offsets it does not hold are ignored. Ranges applied go to `applied`. */
  ack(consumer: number, from: number, to: number, applied: number[]): number {
    let n = 0;
    let runStart = -1;
    for (let o = Math.max(from, this.start); o < to && o < this.readNext; o++) {
      if (this.owned(o, consumer)) {
        const s = o & this.mask;
        this.state[s] = DONE;
        this.owner[s] = -1;
        this.inFlight--;
        n++;
        if (runStart < 0) runStart = o;
      } else if (runStart >= 0) {
        applied.push(runStart, o);
        runStart = -1;
      }
    }
    if (runStart >= 0) applied.push(runStart, Math.min(to, this.readNext));
    if (n > 0) this.advance();
    return n;
  }

  /**
   * Reject [from, to) of `consumer`. `fatal`: every one goes to DEAD_LETTERING (`deadLetter`).
   * Otherwise each waits `delayOf(deliveries)` ms (RETRY_WAIT, pushed to `retried` as offset, due),
   * or is exhausted when it was delivered `maxDeliveries` times.
   */
  nack(
    consumer: number,
    from: number,
    to: number,
    fatal: boolean,
    now: number,
    maxDeliveries: number,
    delayOf: (deliveries: number) => number,
    deadLetter: number[],
    retried: number[],
  ): number {
    let n = 0;
    for (let o = Math.max(from, this.start); o < to && o < this.readNext; o++) {
      if (!this.owned(o, consumer)) continue;
      n++;
      const s = o & this.mask;
      this.inFlight--;
      this.owner[s] = -1;
      if (fatal || this.counts[s]! >= maxDeliveries) {
        this.state[s] = DEAD_LETTERING;
        deadLetter.push(o);
      } else {
        const due = now + delayOf(this.counts[s]!);
        this.state[s] = RETRY_WAIT;
        this.due[s] = due;
        this.dueRetries.push(due, o);
        retried.push(o, due);
      }
    }
    return n;
  }

  /**
   * Every offset `consumer` holds comes back. `unhandled` (a graceful unsubscribe: the consumer
   * says it never handed them to its application): their delivery is undone and they are pushed to
   * `undone`; otherwise (it disconnected) the delivery counts, and exhausted ones are dead-lettered.
   */
  releaseOwner(consumer: number, maxDeliveries: number, exhausted: number[], unhandled = false, undone: number[] = []): number {
    if (this.inFlight === 0) return 0;
    let n = 0;
    for (let o = this.start; o < this.readNext; o++) {
      if (!this.owned(o, consumer)) continue;
      n++;
      if (unhandled) {
        const s = o & this.mask;
        this.inFlight--;
        if (this.counts[s]! > 0) this.counts[s] = this.counts[s]! - 1;
        this.makeAvailable(o);
        undone.push(o);
      } else this.release(o, maxDeliveries, exhausted);
    }
    return n;
  }

  /**
   * Visibility timeouts and due retries up to `now`. Timed-out offsets are released (`timedOut`
   * gets [offset, owner] pairs so the caller can credit the owners back); due retries become available.
   */
  expire(now: number, maxDeliveries: number, timedOut: number[], exhausted: number[]): number {
    let made = 0;
    const expireRange = (from: number, to: number): void => {
      for (let o = Math.max(from, this.start); o < to && o < this.readNext; o++) {
        const s = o & this.mask;
        if (this.state[s] === IN_FLIGHT && this.due[s]! <= now) {
          timedOut.push(o, this.owner[s]!);
          this.release(o, maxDeliveries, exhausted);
          made++;
        }
      }
    };
    if (this.timeoutsUnordered) {
      // Rare (after a shorter visibility timeout was set): a pass over every queued entry, keeping
      // the ones not due; ordered again once the remaining deadlines are ascending.
      const old = this.timeouts;
      const kept: number[] = [];
      let ordered = true;
      for (let i = this.timeoutsHead; i < old.length; i += 3) {
        if (old[i]! <= now) expireRange(old[i + 1]!, old[i + 2]!);
        else {
          if (kept.length > 0 && kept[kept.length - 3]! > old[i]!) ordered = false;
          kept.push(old[i]!, old[i + 1]!, old[i + 2]!);
        }
      }
      this.timeouts = kept;
      this.timeoutsHead = 0;
      this.timeoutsUnordered = !ordered;
    }
    const t = this.timeouts;
    while (this.timeoutsHead < t.length && t[this.timeoutsHead]! <= now) {
      const from = t[this.timeoutsHead + 1]!;
      const to = t[this.timeoutsHead + 2]!;
      this.timeoutsHead += 3;
      expireRange(from, to);
    }
    if (this.timeoutsHead > 3 * 1024 && this.timeoutsHead * 2 > t.length) {
      this.timeouts = t.slice(this.timeoutsHead);
      this.timeoutsHead = 0;
    }
    const dueRetries = this.dueRetries;
    while (dueRetries.size > 0 && dueRetries.topKey <= now) {
      const due = dueRetries.topKey;
      const o = dueRetries.topTie;
      dueRetries.pop();
      if (o < this.start) continue;
      const s = o & this.mask;
      if (this.state[s] === RETRY_WAIT && this.due[s] === due) {
        this.makeAvailable(o);
        made++;
      }
    }
    return made;
  }

  /** A DEAD_LETTERING offset was appended to the dead-letter topic (or dropped): done. */
  finish(o: number): void {
    if (o < this.start) return;
    const s = o & this.mask;
    if (this.state[s] === DEAD_LETTERING) this.state[s] = DONE;
    this.advance();
  }

  private advance(): void {
    while (this.start < this.limit && this.state[this.start & this.mask] === DONE) {
      const s = this.start & this.mask;
      this.state[s] = AVAILABLE;
      this.counts[s] = 0;
      this.owner[s] = -1;
      this.due[s] = 0;
      this.start++;
    }
    if (this.start >= this.limit) this.limit = this.start;
    if (this.readNext < this.start) this.readNext = this.start;
    if (this.scanFrom < this.start) this.scanFrom = this.start;
    while (this.chunks.length > 0 && this.chunks[0]!.end <= this.start) {
      const c = this.chunks.shift()!;
      this.loadedBytes -= c.bytes.length;
      if (c.arenaEnd >= 0) this.arena.release(c.arenaEnd);
    }
  }

  // ---------------------------------------------------------------- journal replay and snapshot

  /** Replay: offsets [from, to) were each delivered once more. */
  restoreDelivered(from: number, to: number): void {
    for (let o = Math.max(from, this.start); o < to; o++) {
      if (!this.fit(o)) return;
      const s = o & this.mask;
      if (this.state[s] !== DONE) this.counts[s] = Math.min(0xffff, this.counts[s]! + 1);
      if (o + 1 > this.limit) this.limit = o + 1;
    }
  }

  /** Replay: the last delivery of [from, to) was undone (given back unhandled). */
  restoreUndelivered(from: number, to: number): void {
    for (let o = Math.max(from, this.start); o < to && o < this.start + this.cap; o++) {
      const s = o & this.mask;
      if (this.counts[s]! > 0) this.counts[s] = this.counts[s]! - 1;
    }
  }

  /** Replay: offset `o` has been delivered `n` times (snapshot). */
  restoreCount(o: number, n: number): void {
    if (o < this.start || !this.fit(o)) return;
    this.counts[o & this.mask] = Math.min(0xffff, n);
    if (o + 1 > this.limit) this.limit = o + 1;
  }

  /** Replay: [from, to) are done. */
  restoreDone(from: number, to: number): void {
    if (from <= this.start && to > this.start) {
      this.jumpTo(to); // may be far beyond the ring (a retention skip)
      return;
    }
    for (let o = Math.max(from, this.start); o < to; o++) {
      if (!this.fit(o)) break;
      this.state[o & this.mask] = DONE;
      if (o + 1 > this.limit) this.limit = o + 1;
    }
    this.advance();
  }

  /** Replay: `o` waits for a retry until `due`. */
  restoreRetry(o: number, due: number): void {
    if (o < this.start || !this.fit(o)) return;
    const s = o & this.mask;
    if (this.state[s] === DONE) return;
    this.state[s] = RETRY_WAIT;
    this.due[s] = due;
    this.dueRetries.push(due, o);
    if (o + 1 > this.limit) this.limit = o + 1;
  }

  /** Everything replay needs: done ranges, delivery counts and retries above `start`. */
  snapshot(): { start: number; done: number[]; counts: number[]; retries: number[] } {
    const done: number[] = [];
    const counts: number[] = [];
    const retries: number[] = [];
    let runStart = -1;
    for (let o = this.start; o < this.limit; o++) {
      const s = o & this.mask;
      const st = this.state[s]!;
      if (st === DONE) {
        if (runStart < 0) runStart = o;
        continue;
      }
      if (runStart >= 0) {
        done.push(runStart, o);
        runStart = -1;
      }
      if (this.counts[s]! > 0) counts.push(o, this.counts[s]!);
      if (st === RETRY_WAIT) retries.push(o, this.due[s]!);
    }
    if (runStart >= 0) done.push(runStart, this.limit);
    return { start: this.start, done, counts, retries };
  }
}
