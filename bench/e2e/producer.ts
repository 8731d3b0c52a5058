/**
 * A rate-limited producer with an intended send schedule (OMB's UniformRateLimiter + publish delay).
 *
 * At rate R message i of the schedule is due at t0 + i/R. A wake-up takes every due message, in
 * batches of at most `batchSize`; a partial batch waits until its oldest message is `lingerMs` old
 * (or the batch fills). Each message carries its intended send time, and publish latency is
 * ack time − INTENDED send time, per message: when the producer falls behind (at most
 * `maxInFlightBatches` unacknowledged, a slow event loop, a stalled broker) the schedule does not
 * slip, the messages are simply sent late, and the delay shows in the latency tail instead of being
 * hidden (coordinated omission, https://www.youtube.com/watch?v=lJ8ydIuPFeU).
 *
 * At rate 0 (max rate) the producer keeps `maxInFlightBatches` full batches in flight; a batch's
 * intended send time is when it was built. With `maxBacklog` it also waits while that many messages
 * are sent and not yet consumed (flow.ts).
 */
import type { Histogram } from '../../src/common/histogram.js';
import { now, within, writeStamp } from './clock.js';
import type { Driver, ProduceBatch } from './driver.js';
import type { FlowCounters } from './flow.js';
import { latencyHistogram, zeroCounters, type Counters } from './stats.js';
import type { Workload } from './workload.js';

export interface ProducerLoopOptions {
  driver: Driver;
  topic: string;
  workload: Workload;
  /** This producer's messages/s; 0 = max rate. */
  rate: number;
  /** Seed for payload bytes and random keys. */
  seed: number;
  /** First produce error (later ones are only counted). */
  onError?: (err: unknown) => void;
  /** Sent/received totals of the run (`workload.maxBacklog`), and this producer's slot in it. */
  flow: FlowCounters;
  index: number;
}

/** After a failed batch, wait this long before sending again (no hot loop against a broken broker). */
const ERROR_PAUSE_MS = 100;
/** Held back by `workload.maxBacklog`: look at the consumers' progress again this often. */
const BACKLOG_POLL_MS = 1;

export class ProducerLoop {
  /** Window histogram (reset at the end of warm-up) and per-tick histogram, µs. */
  readonly publish: Histogram = latencyHistogram();
  readonly tick: Histogram = latencyHistogram();
  readonly counters: Counters = zeroCounters();

  private readonly w: Workload;
  private readonly template: Uint8Array;
  /** Payload buffers of settled batches, reused (a copy of `template`; only the stamps change). */
  private readonly spare: Uint8Array[] = [];
  private readonly keyPool: string[] | null;
  private keyCursor = 0;
  private rng: () => number;
  private rate = 0;
  private interval = 0;
  private t0 = 0;
  /** Index in the schedule of the next message to send. */
  private next = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** A spin or sleep wake-up is queued with setImmediate (instead of a timer). */
  private turnPending = false;
  /** sleepMs pacing: the futex word slept on (never notified: the timeout is the wake-up) and until when. */
  private readonly sleepCell = new Int32Array(new SharedArrayBuffer(4));
  private sleepUntil = 0;
  private running = false;
  private pausedUntil = 0;
  private inFlight = 0;
  private idle: (() => void) | null = null;
  private errored = false;

  constructor(private readonly o: ProducerLoopOptions) {
    this.w = o.workload;
    this.rng = mulberry32(o.seed);
    // Payload: random bytes (not compressible), the first 8 of each message overwritten by the stamp.
    this.template = new Uint8Array(this.w.batchSize * this.w.messageSize);
    for (let i = 0; i < this.template.length; i++) this.template[i] = (this.rng() * 256) | 0;
    this.keyPool = this.w.keyDistribution === 'none' ? null : Array.from({ length: this.w.keys }, (_, i) => `key-${i}`);
    this.keyCursor = o.seed % this.w.keys;
    this.setRate(o.rate);
  }

  start(): void {
    this.running = true;
    this.setRate(this.rate);
    this.wake();
  }

  /** Change the rate from now on (0 = max); the schedule restarts at the current time. */
  setRate(rate: number): void {
    this.rate = rate;
    this.interval = rate > 0 ? 1000 / rate : 0;
    this.t0 = now();
    this.next = 0;
    if (this.running) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      this.wake();
    }
  }

  /** Zero the window counters and histograms (end of warm-up). */
  resetWindow(): void {
    this.publish.reset();
    const c = this.counters;
    c.sent = c.acked = c.ackedBytes = c.failed = 0;
  }

  /** Stop sending; resolve once every batch in flight settled or `timeoutMs` passed. */
  async stop(timeoutMs: number): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.inFlight === 0) return;
    await within(new Promise<void>((r) => (this.idle = r)), timeoutMs);
  }

  private wake = (): void => {
    this.timer = null;
    if (!this.running) return;
    const w = this.w;
    const t = now();
    if (t < this.pausedUntil) return this.schedule(this.pausedUntil);
    if (this.rate === 0) {
      while (this.inFlight < w.maxInFlightBatches && this.running) {
        if (w.maxBacklog > 0 && this.o.flow.backlog() + w.batchSize > w.maxBacklog) return this.schedule(now() + BACKLOG_POLL_MS);
        this.send(w.batchSize, now(), 0);
      }
      return; // acks wake us
    }
    const interval = this.interval;
    let due = Math.floor((t - this.t0) / interval) + 1 - this.next;
    while (due > 0 && this.inFlight < w.maxInFlightBatches) {
      const n = Math.min(due, w.batchSize);
      const first = this.t0 + this.next * interval;
      if (n < w.batchSize && first + w.lingerMs > t) break; // partial batch, still lingering
      this.send(n, first, interval);
      this.next += n;
      due -= n;
    }
    if (this.inFlight >= w.maxInFlightBatches) return; // an ack wakes us
    // Next: when the oldest unsent message has lingered enough, or a batch is full, whichever is first.
    const oldest = this.t0 + this.next * interval;
    const full = this.t0 + (this.next + w.batchSize - 1) * interval;
    this.schedule(Math.min(oldest + w.lingerMs, full));
  };

  private schedule(at: number): void {
    if (this.timer || this.turnPending || !this.running) return;
    const wait = at - now();
    if (this.rate > 0 && wait <= this.w.sleepMs) {
      // One turn first (acks, errors), then sleep the rest of the wait on a futex.
      this.turnPending = true;
      this.sleepUntil = at;
      setImmediate(this.sleep);
      return;
    }
    if (wait <= this.w.spinMs && this.rate > 0) {
      this.turnPending = true;
      setImmediate(this.spin);
      return;
    }
    this.timer = setTimeout(this.wake, Math.max(0, wait - Math.max(this.w.spinMs, this.w.sleepMs)));
  }

  private spin = (): void => {
    this.turnPending = false;
    this.wake();
  };

  private sleep = (): void => {
    const rest = this.sleepUntil - now();
    // Nothing else runs on this thread meanwhile: it is the producer's own worker thread.
    if (rest > 0) Atomics.wait(this.sleepCell, 0, 0, rest);
    this.turnPending = false;
    this.wake();
  };

  /** Send `n` messages whose intended send times are first, first + step, … */
  private send(n: number, first: number, step: number): void {
    const w = this.w;
    const size = w.messageSize;
    const payload = this.spare.pop() ?? this.template.slice();
    const values = payload.subarray(0, n * size);
    // Delayed runs stamp the due time: the consumer's latency is then lateness after due.
    const due = first + w.delayMs;
    for (let k = 0; k < n; k++) writeStamp(values, k * size, due + k * step);
    let keys: string[] | null = null;
    const pool = this.keyPool;
    if (pool !== null) {
      keys = new Array<string>(n);
      if (w.keyDistribution === 'round-robin') {
        for (let k = 0; k < n; k++) {
          keys[k] = pool[this.keyCursor]!;
          this.keyCursor = this.keyCursor + 1 === pool.length ? 0 : this.keyCursor + 1;
        }
      } else {
        for (let k = 0; k < n; k++) keys[k] = pool[(this.rng() * pool.length) | 0]!;
      }
    }
    const batch: ProduceBatch = { values, size, count: n, keys };
    this.inFlight++;
    this.counters.inFlight = this.inFlight;
    this.counters.sent += n;
    this.counters.sentTotal += n;
    this.o.flow.sent(this.o.index, this.counters.sentTotal);
    this.o.driver.produce(this.o.topic, batch).then(
      () => this.settled(payload, n, first, step, true),
      (err: unknown) => {
        if (!this.errored) {
          this.errored = true;
          this.o.onError?.(err);
        }
        this.settled(payload, n, first, step, false);
      },
    );
  }

  private settled(payload: Uint8Array, n: number, first: number, step: number, ok: boolean): void {
    this.inFlight--;
    this.spare.push(payload);
    const c = this.counters;
    c.inFlight = this.inFlight;
    if (ok) {
      const t = now();
      if (step === 0) {
        const us = (t - first) * 1000;
        this.publish.record(us, n);
        this.tick.record(us, n);
      } else {
        for (let k = 0; k < n; k++) {
          const us = (t - (first + k * step)) * 1000;
          this.publish.record(us);
          this.tick.record(us);
        }
      }
      const bytes = n * this.w.messageSize;
      c.acked += n;
      c.ackedBytes += bytes;
      c.ackedTotal += n;
      c.ackedBytesTotal += bytes;
    } else {
      c.failed += n;
      this.pausedUntil = now() + ERROR_PAUSE_MS;
    }
    if (this.inFlight === 0 && this.idle) {
      this.idle();
      this.idle = null;
    }
    if (this.running && this.timer === null) this.wake();
  }
}

/** mulberry32: small, fast, seeded. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
