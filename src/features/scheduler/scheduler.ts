/**
 * The scheduler of one topic's delayed messages (the IO shell around DueIndex and FiredLog).
 *
 * Delayed messages are stored in the internal topic `__delay.<topic>` (same partition count, same
 * routing, so a message keeps its partition). Per schedule partition a tail reader indexes every
 * record not yet fired as (due, partition, offset), keeping the record's bytes in a bounded cache
 * when it is due soon. One timer fires at the earliest due time; a firing round takes every due
 * entry, reads the uncached records back from the schedule log, appends them (without their delay
 * headers) to the topic's same partition in due order, and then marks them fired in the FiredLog.
 *
 * Crash safety: the schedule log is the source of truth; a restart re-indexes it from each
 * partition's low-water mark and skips fired offsets. A message whose append succeeded but whose
 * "fired" mark did not reach the disk (a crash within that event-loop turn) is delivered again on
 * restart: at-least-once. A graceful stop waits for the round in flight, so it does not duplicate.
 */
import { WeirError, lostRange } from '../../common/errors.js';
import { ErrorCode } from '../../protocol/codes.js';
import { Header } from '../../protocol/headers.js';
import { readU32, recordOffset } from '../../protocol/record.js';
import type { FeatureHost, ReadResult } from '../../core/feature-host.js';
import type { Topic } from '../../core/topics/registry.js';
import { DueIndex } from './due-index.js';
import type { FiredLog } from './fired-log.js';
import { absoluteExpiryOf, concatRecords, dueTimeOf, rewriteRecord } from '../../protocol/time-headers.js';
import { SCHEDULE_TOPIC_PREFIX } from '../../core/topics/names.js';

export { SCHEDULE_TOPIC_PREFIX };
export const scheduleTopicOf = (topic: string): string => `${SCHEDULE_TOPIC_PREFIX}${topic}`;

export interface SchedulerOptions {
  /** Records due within this many ms of being indexed keep their bytes in memory. */
  cacheHorizonMs: number;
  /** Bytes of cached records, at most. */
  cacheBytes: number;
  /** Entries taken per firing round, at most (bounds a round's memory). */
  maxRoundEntries: number;
  /** Record bytes per append to the topic (keep well below the partition ring's size). */
  appendBytes: number;
  /** After a failed append, try again this much later. */
  retryMs: number;
}

/** The broker services a scheduler uses (a test can give it just these). */
export type SchedulerHost = Pick<FeatureHost, 'append' | 'read' | 'ensureTopic'>;

export const DEFAULT_SCHEDULER_OPTIONS: SchedulerOptions = {
  cacheHorizonMs: 10 * 60_000,
  cacheBytes: 64 * 1024 * 1024,
  maxRoundEntries: 50_000,
  appendBytes: 128 * 1024,
  retryMs: 100,
};

/**
 * Where the scheduler reads the time and arms its timer: the system's, or a test's (which then
 * sees every timer armed and can move time on).
 */
export interface SchedulerClock {
  now(): number;
  setTimer(fire: () => void, ms: number): unknown;
  clearTimer(timer: unknown): void;
}
export const SYSTEM_CLOCK: SchedulerClock = {
  now: () => Date.now(),
  setTimer: (fire, ms) => setTimeout(fire, ms),
  clearTimer: (timer) => clearTimeout(timer as ReturnType<typeof setTimeout>),
};
/**
 * The longest delay setTimeout honours (about 24.8 days): Node runs a longer one after 1 ms, with a
 * warning, so a far-off due time is waited for in steps of at most this.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

const DELAY_HEADERS: ReadonlySet<string> = new Set([Header.DELIVER_AT, Header.DELAY]);
/** A dead letter must not expire in the dead-letter topic too (the reason header says why it is there). */
const EXPIRY_HEADERS: ReadonlySet<string> = new Set([Header.EXPIRES_AT, Header.TTL]);
/** Firing rounds in flight at once. */
const MAX_ROUNDS = 4;
/** Appends of one partition's due records in flight at once (each ≤ appendBytes). */
const MAX_APPENDS_IN_FLIGHT = 2;
/** Schedule-log bytes read per request (indexing them is one synchronous step: keep it short). */
const TAIL_MAX_BYTES = 256 * 1024;
/** Offsets this close together are read with one request. */
const READ_GAP = 64;
/** Partition numbers are < 1024 (registry.MAX_PARTITIONS): a cache key is offset * 1024 + partition. */
const key = (partition: number, offset: number): number => offset * 1024 + partition;
/** A WeirError the broker marks not retryable (MESSAGE_TOO_LARGE, BAD_REQUEST, …) does not heal by waiting. */
const isPermanent = (err: unknown): boolean => WeirError.isWeirError(err) && !err.retryable;

export interface SchedulerStats {
  pending: number;
  indexBytes: number;
  cachedRecords: number;
  cachedBytes: number;
  fired: number;
  expired: number;
  lost: number;
  /** Schedule partitions whose boot catch-up read is still running (0: nothing polls the log). */
  tailing: number;
}

export class TopicScheduler {
  private readonly index = new DueIndex();
  private readonly cache = new Map<number, Uint8Array>();
  private cachedBytes = 0;
  private timer: unknown = null;
  private timerAt = Infinity;
  private readonly rounds = new Set<Promise<void>>();
  private closed = false;
  private firedCount = 0;
  private expiredCount = 0;
  private lostCount = 0;
  /** Schedule partitions still being read to their end (boot catch-up); 0 once caught up. */
  private tailing = 0;

  constructor(
    private readonly host: SchedulerHost,
    readonly schedule: Topic,
    readonly target: Topic,
    private readonly log: FiredLog,
    private readonly opts: SchedulerOptions = DEFAULT_SCHEDULER_OPTIONS,
    private readonly clock: SchedulerClock = SYSTEM_CLOCK,
  ) {}

  /**
   * Index every partition up to its current end (then keep tailing), and deliver what fell due
   * while the broker was down (for at most `catchUpMs`) before resolving: the broker serves once
   * that backlog is in the topics, so it does not compete with messages falling due afterwards.
   */
  async start(catchUpMs = 10_000): Promise<void> {
    await Promise.all(this.schedule.actors.map((_, p) => new Promise<void>((resolve) => void this.tail(p, resolve))));
    const startedAt = this.clock.now();
    const giveUpAt = Date.now() + catchUpMs; // a budget of real time, whatever the clock says
    while (!this.closed && Date.now() < giveUpAt) {
      if (this.rounds.size === 0 && this.index.peekDue() <= startedAt) this.fire();
      if (this.rounds.size === 0) break;
      await Promise.race(this.rounds);
    }
  }

  stats(): SchedulerStats {
    return {
      pending: this.index.size,
      indexBytes: this.index.memoryBytes,
      cachedRecords: this.cache.size,
      cachedBytes: this.cachedBytes,
      fired: this.firedCount,
      expired: this.expiredCount,
      lost: this.lostCount,
      tailing: this.tailing,
    };
  }

  /** Stop the timer and readers; wait (bounded) for the round in flight so its marks are written. */
  async close(graceMs = 3_000): Promise<void> {
    this.closed = true;
    if (this.timer !== null) this.clock.clearTimer(this.timer);
    this.timer = null;
    if (this.rounds.size > 0) await Promise.race([Promise.all(this.rounds), new Promise((r) => setTimeout(r, graceMs))]);
  }

  // ------------------------------------------------------------------ indexing

  /**
   * Catch up on schedule partition `p` from its low-water mark to its end, then stop: every later
   * schedule append passes through the time interceptor, which indexes it from its acknowledgement
   * (indexAppended). If the partition cannot be read for 30 s, the broker's start stops waiting
   * (`ready`) and this keeps trying in the background.
   */
  private async tail(p: number, ready: () => void): Promise<void> {
    let next = this.log.sets[p]!.low;
    let indexed = false;
    const giveUpAt = Date.now() + 30_000;
    this.tailing++;
    while (!this.closed) {
      let r: ReadResult;
      try {
        r = await this.host.read(this.schedule, p, next, { maxBytes: TAIL_MAX_BYTES, maxRecords: 10_000, maxWaitMs: 0 });
      } catch (err) {
        const start = WeirError.isWeirError(err) ? (err.details?.start as number | undefined) : undefined;
        if (WeirError.isWeirError(err) && err.code === ErrorCode.OFFSET_OUT_OF_RANGE && typeof start === 'number' && start > next) {
          next = start; // retention removed records that never fired: they are lost
          continue;
        }
        const lost = lostRange(err);
        if (lost !== null && lost.to > next) {
          this.lostCount += lost.to - Math.max(lost.from, next); // damaged on disk: they never fire
          next = lost.to;
          continue;
        }
        if (!indexed && Date.now() > giveUpAt) {
          indexed = true; // do not hold the broker's start forever; keep trying in the background
          ready();
        }
        await new Promise((res) => setTimeout(res, this.opts.retryMs));
        continue;
      }
      if (this.closed) break;
      this.indexRecords(p, r.records);
      next = r.next;
      if (r.count === 0 || next >= r.end) break; // caught up
    }
    this.tailing--;
    if (!indexed) ready();
  }

  private indexRecords(p: number, records: Uint8Array): void {
    const now = this.clock.now();
    for (let at = 0; at < records.length; ) {
      const size = 4 + readU32(records, at);
      this.indexOne(p, recordOffset(records, at), records, at, size, now);
      at += size;
    }
    this.arm();
  }

  /**
   * Index records the schedule log just acknowledged (the time interceptor's append): `records`
   * in produce form, `parts` and `route` as the append answered them ([partition, base, count]
   * per partition; `route` = the partition of each record, u16 little-endian, when more than one).
   * A partition's records have consecutive offsets from its base, in batch order.
   */
  indexAppended(records: Uint8Array, parts: ReadonlyArray<readonly [number, number, number]>, route?: Uint8Array): void {
    if (this.closed || parts.length === 0) return;
    const nextOffset = new Map<number, number>();
    for (const [p, base] of parts) nextOffset.set(p, base);
    const routeView = route ? new DataView(route.buffer, route.byteOffset, route.byteLength) : null;
    const only = parts[0]![0];
    const now = this.clock.now();
    for (let at = 0, i = 0; at < records.length; i++) {
      const size = 4 + readU32(records, at);
      const p = routeView ? routeView.getUint16(2 * i, true) : only;
      const offset = nextOffset.get(p);
      if (offset !== undefined) {
        nextOffset.set(p, offset + 1);
        this.indexOne(p, offset, records, at, size, now);
      }
      at += size;
    }
    this.arm();
  }

  private indexOne(p: number, offset: number, records: Uint8Array, at: number, size: number, now: number): void {
    if (this.log.sets[p]!.has(offset)) return;
    const due = dueTimeOf(records, at);
    this.index.push(due, p, offset);
    if (due - now <= this.opts.cacheHorizonMs && this.cachedBytes + size <= this.opts.cacheBytes) {
      // Cached as it will be appended (delay headers stripped): less work when it is due.
      const ready = rewriteRecord(records, at, DELAY_HEADERS);
      this.cache.set(key(p, offset), ready);
      this.cachedBytes += ready.length;
    }
  }

  // ------------------------------------------------------------------ firing

  private arm(): void {
    if (this.closed || this.rounds.size >= MAX_ROUNDS) return; // a round re-arms when it ends
    const due = this.index.peekDue();
    if (due >= this.timerAt) return;
    if (this.timer !== null) this.clock.clearTimer(this.timer);
    this.timer = null;
    this.timerAt = Infinity;
    if (due === Infinity) return;
    this.timerAt = due;
    // Clamped: a timer due past MAX_TIMER_MS fires early; fire() then finds nothing due and arms
    // again for what is left.
    this.timer = this.clock.setTimer(() => {
      this.timer = null;
      this.timerAt = Infinity;
      this.fire();
    }, Math.min(MAX_TIMER_MS, Math.max(0, due - this.clock.now())));
  }

  private fire(): void {
    if (this.closed || this.rounds.size >= MAX_ROUNDS) return;
    const now = this.clock.now();
    const byPartition = new Map<number, number[]>();
    this.index.popDue(
      now,
      (_due, p, offset) => {
        let list = byPartition.get(p);
        if (!list) byPartition.set(p, (list = []));
        list.push(offset);
      },
      this.opts.maxRoundEntries,
    );
    if (byPartition.size === 0) {
      this.arm();
      return;
    }
    // Rounds overlap (a slow append does not hold back what falls due meanwhile); each appends its
    // records in due order.
    const round: Promise<void> = Promise.all([...byPartition].map(([p, offsets]) => this.firePartition(p, offsets)))
      .then(() => undefined)
      .catch((err: unknown) => console.error('weir scheduler: firing round failed', err))
      .finally(() => {
        this.rounds.delete(round);
        this.arm();
      });
    this.rounds.add(round);
    this.arm();
  }

  /** Deliver the due `offsets` (in due order) of schedule partition `p` to the topic's partition `p`. */
  private async firePartition(p: number, offsets: number[]): Promise<void> {
    // Records as they will be appended: from the cache, or read back and rewritten.
    const bytes = new Map<number, Uint8Array>();
    const missing: number[] = [];
    for (const o of offsets) {
      const b = this.cache.get(key(p, o));
      if (b) bytes.set(o, b);
      else missing.push(o);
    }
    if (missing.length > 0) {
      try {
        const read = new Map<number, Uint8Array>();
        await this.readBack(p, missing, read);
        for (const [o, b] of read) bytes.set(o, rewriteRecord(b, 0, DELAY_HEADERS));
      } catch {
        // Try the unread ones again later; deliver the cached ones now.
        for (const o of missing) bytes.delete(o);
        this.retry(p, missing);
        offsets = offsets.filter((o) => bytes.has(o));
      }
    }
    const now = this.clock.now();
    let chunk: Uint8Array[] = [];
    let chunkOffsets: number[] = [];
    let chunkBytes = 0;
    const expired: Array<[number, Uint8Array]> = [];
    // Chunks go out back to back (a partition appends them in order), a few in flight at a time.
    const inFlight = new Set<Promise<void>>();
    const flush = async (): Promise<void> => {
      if (chunk.length === 0) return;
      const batch = concatRecords(chunk);
      const done = chunkOffsets;
      const doneRecords = chunk;
      chunk = [];
      chunkOffsets = [];
      chunkBytes = 0;
      const sent: Promise<void> = this.host.append(this.target, batch, p).then(
        () => {
          for (const o of done) this.markFired(p, o);
          this.firedCount += done.length;
        },
        (err: unknown) => (isPermanent(err) ? this.appendEach(p, done, doneRecords) : this.retry(p, done)),
      );
      inFlight.add(sent);
      void sent.finally(() => inFlight.delete(sent));
      if (inFlight.size >= MAX_APPENDS_IN_FLIGHT) await Promise.race(inFlight);
    };
    for (const o of offsets) {
      const b = bytes.get(o);
      if (!b) {
        this.markFired(p, o); // no longer in the schedule log (retention): lost
        this.lostCount++;
        continue;
      }
      if (absoluteExpiryOf(b, 0) <= now) {
        expired.push([o, b]);
        continue;
      }
      if (chunkBytes + b.length > this.opts.appendBytes) await flush();
      chunk.push(b);
      chunkOffsets.push(o);
      chunkBytes += b.length;
    }
    await flush();
    await Promise.all(inFlight);
    if (expired.length > 0) await this.expire(p, expired, now);
  }

  /**
   * Delayed messages that expired before they were due are never delivered; with the topic's
   * deadLetterExpired they go (once: the scheduler is their only reader) to its dead-letter topic.
   */
  private async expire(p: number, expired: Array<[number, Uint8Array]>, now: number): Promise<void> {
    const config = this.target.config;
    if (config.deadLetterExpired && config.deadLetterTopic !== null) {
      try {
        const dlq = await this.host.ensureTopic(config.deadLetterTopic, this.target.partitions);
        const records = expired.map(([o, b]) =>
          rewriteRecord(b, 0, EXPIRY_HEADERS, [
            [Header.DLQ_REASON, 'expired'],
            [Header.DLQ_TOPIC, this.target.name],
            [Header.DLQ_PARTITION, String(p)],
            [Header.DLQ_OFFSET, String(o)],
            [Header.DLQ_TIME, String(now)],
          ]),
        );
        await this.host.append(dlq, concatRecords(records), p % dlq.partitions);
      } catch (err) {
        if (!isPermanent(err)) {
          this.retry(
            p,
            expired.map(([o]) => o),
          );
          return;
        }
        // An invalid dead-letter topic (or a dead letter it refuses) does not heal by retrying.
        this.reportLost(`dead-lettering ${expired.length} expired delayed messages of ${this.target.name}/${p}`, err);
      }
    }
    for (const [o] of expired) this.markFired(p, o);
    this.expiredCount += expired.length;
  }

  private async readBack(p: number, offsets: number[], out: Map<number, Uint8Array>): Promise<void> {
    const sorted = [...offsets].sort((a, b) => a - b);
    const wanted = new Set(sorted);
    for (let i = 0; i < sorted.length; ) {
      let j = i;
      while (j + 1 < sorted.length && sorted[j + 1]! - sorted[j]! <= READ_GAP) j++;
      let from = sorted[i]!;
      const last = sorted[j]!;
      while (from <= last) {
        let r: ReadResult;
        try {
          r = await this.host.read(this.schedule, p, from, { maxRecords: last - from + 1, maxBytes: TAIL_MAX_BYTES });
        } catch (err) {
          const start = WeirError.isWeirError(err) ? (err.details?.start as number | undefined) : undefined;
          if (WeirError.isWeirError(err) && err.code === ErrorCode.OFFSET_OUT_OF_RANGE && typeof start === 'number' && start > from) {
            from = start; // below the log start: those records are gone
            continue;
          }
          const lost = lostRange(err);
          if (lost !== null && lost.to > from) {
            from = lost.to; // damaged on disk: not read back, so counted lost by firePartition
            continue;
          }
          throw err;
        }
        for (let at = 0; at < r.records.length; ) {
          const size = 4 + readU32(r.records, at);
          const o = recordOffset(r.records, at);
          if (wanted.has(o)) out.set(o, r.records.subarray(at, at + size));
          at += size;
        }
        if (r.count === 0) break;
        from = r.next;
      }
      i = j + 1;
    }
  }

  /**
   * A batch append failed with a permanent error (MESSAGE_TOO_LARGE, …): append its records one
   * at a time so that only the offending ones are given up (marked fired, counted lost, logged).
   */
  private async appendEach(p: number, offsets: number[], records: Uint8Array[]): Promise<void> {
    for (let i = 0; i < offsets.length; i++) {
      const o = offsets[i]!;
      try {
        await this.host.append(this.target, records[i]!, p);
        this.markFired(p, o);
        this.firedCount++;
      } catch (err) {
        if (!isPermanent(err)) {
          this.retry(p, offsets.slice(i));
          return;
        }
        this.markFired(p, o);
        this.lostCount++;
        this.reportLost(`delayed message ${this.schedule.name}/${p}@${o} cannot be delivered to ${this.target.name}`, err);
      }
    }
  }

  /** Log a permanent failure (the first of each error code per scheduler: no log flood). */
  private reportLost(what: string, err: unknown): void {
    const code = WeirError.isWeirError(err) ? err.code : 'unknown';
    if (this.reportedCodes.has(code)) return;
    this.reportedCodes.add(code);
    console.error(`weir scheduler: ${what}; given up (not retryable): ${(err as Error)?.message ?? String(err)}`);
  }
  private readonly reportedCodes = new Set<string>();

  private retry(p: number, offsets: number[]): void {
    const at = this.clock.now() + this.opts.retryMs;
    for (const o of offsets) this.index.push(at, p, o);
  }

  private markFired(p: number, offset: number): void {
    const k = key(p, offset);
    const b = this.cache.get(k);
    if (b) {
      this.cachedBytes -= b.length;
      this.cache.delete(k);
    }
    this.log.fired(p, offset);
  }
}
