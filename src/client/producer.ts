/**
 * Producer: coalesces produce() calls into record batches, keeps the broker's in-flight budget,
 * retries retryable failures, and maps each batch's answer back to per-message acks.
 *
 * Life of a message:
 *
 *   produce() ──(queue space?)──▶ open batch (per topic+partition, lingerMs)
 *       │ waits when queuedBytes > maxQueuedBytes           │ sealed when full or lingerMs passed
 *       ▼                                                   ▼
 *   spaceWaiters (FIFO)                             sendQueue (FIFO, all topics)
 *                                                           │ when inFlightRequests < max and
 *                                                           │ inFlightBytes + bytes ≤ budget
 *                                                           ▼
 *                                                  in flight ──result──▶ acks resolve the calls
 *                                                     ▲   │ retryable error: backoff, same slot
 *                                                     └───┘ other error / retryForMs over: reject
 *
 * Invariants:
 * - `queuedBytes` = record bytes in open and sealed-but-unsent batches. It only exceeds
 *   maxQueuedBytes when a single call is larger than that limit and the queue was empty.
 * - `inFlightBytes` = record bytes of batches sent and not finally answered, INCLUDING batches
 *   waiting out a retry backoff: they keep their slot, so with maxInFlightRequests = 1 nothing sent
 *   later can overtake a batch being retried (per-key order). The broker's own count (unanswered
 *   frames) is therefore never above ours, so a correct broker never answers THROTTLED to us
 *   unless our budget changed under it.
 * - Batches leave `sendQueue` in order; a batch bigger than the remaining budget waits at the head
 *   (no reordering to fill the budget).
 */
import type { BatchBuilder } from '../protocol/batch-builder.js';
import type { ProduceResult } from '../protocol/frames.js';
import { computeAcks } from './acks.js';
import { asClientError, type Connection } from './connection.js';
import type { WeirClientError } from './errors.js';
import { Batch, ProducerBase, newBuilder, openCall, rejectCall, settleSegments, type Call, type ProducerOptions } from './producer-base.js';
import type { Ack, ProduceMessage, ProduceOptions } from './types.js';
import { isScheduled } from './time.js';

/** A batch for one topic (and forced partition), immediate or scheduled messages. */
class TopicBatch extends Batch {
  constructor(
    builder: BatchBuilder,
    byteLimit: number,
    readonly topic: string,
    readonly partition: number | undefined,
    /** time: delayed messages travel in their own requests (the broker refuses mixed ones). */
    readonly scheduled: boolean,
  ) {
    super(builder, byteLimit);
  }
}

interface SpaceWaiter {
  topic: string;
  messages: readonly ProduceMessage[];
  sizes: number[];
  bytes: number;
  partition: number | undefined;
  call: Call;
  scheduled: boolean;
}

const MAX_POOLED_BUILDERS = 8;

export class Producer extends ProducerBase<TopicBatch> {
  private readonly open = new Map<string, TopicBatch>();
  private readonly sendQueue: TopicBatch[] = [];
  private readonly inFlight = new Set<TopicBatch>();
  private readonly retryTimers = new Set<ReturnType<typeof setTimeout>>();
  private spaceWaiters: SpaceWaiter[] = [];
  private readonly pool: BatchBuilder[] = [];

  constructor(conn: Connection, opts: ProducerOptions) {
    super(conn, opts, { stampBytes: 0, largestRecord: 'this broker accepts', refuseScheduled: null });
  }

  protected accept(topic: string, messages: readonly ProduceMessage[], sizes: number[], bytes: number, scheduled: number, options: ProduceOptions): Promise<Ack[]> {
    if (scheduled > 0 && scheduled < messages.length) return this.produceMixed(topic, messages, options);
    const { call, promise } = openCall(messages.length, this.active);
    const waiter: SpaceWaiter = { topic, messages, sizes, bytes, partition: options.partition, call, scheduled: scheduled > 0 };
    // FIFO: once anyone waits for space, later calls queue behind them (no overtaking).
    if (this.spaceWaiters.length === 0 && this.hasSpace(bytes)) this.append(waiter);
    else this.spaceWaiters.push(waiter);
    return promise;
  }

  /** time: a call mixing scheduled and immediate messages is two calls; acks in call order. */
  private produceMixed(topic: string, messages: readonly ProduceMessage[], options: ProduceOptions): Promise<Ack[]> {
    const which = messages.map(isScheduled);
    const later = messages.filter((_, i) => which[i]);
    const now = messages.filter((_, i) => !which[i]);
    return Promise.all([this.produce(topic, now, options), this.produce(topic, later, options)]).then(([a, b]) => {
      let i = 0;
      let j = 0;
      return which.map((s) => (s ? b[j++]! : a[i++]!));
    });
  }

  protected sealOpen(): void {
    for (const batch of [...this.open.values()]) this.seal(batch);
  }

  protected failAll(error: WeirClientError): void {
    for (const timer of this.retryTimers) clearTimeout(timer);
    this.retryTimers.clear();
    const batches = [...this.open.values(), ...this.sendQueue, ...this.inFlight];
    this.open.clear();
    this.sendQueue.length = 0;
    this.inFlight.clear();
    for (const b of batches) {
      if (b.lingerTimer) clearTimeout(b.lingerTimer);
      for (const s of b.segments) rejectCall(s.call, error);
      // Dropped, not pooled: a frame of it may still wait in the connection.
      b.builder = null;
      b.records = null;
    }
    for (const w of this.spaceWaiters) rejectCall(w.call, error);
    this.spaceWaiters = [];
    this.inFlightBytes = 0;
  }

  protected inFlightRequestCount(): number {
    return this.inFlight.size;
  }

  protected waitingCallCount(): number {
    return this.spaceWaiters.length;
  }

  /** The connection came back: sealed batches may go now (in-flight ones are retrying by themselves). */
  onReconnect(): void {
    this.pump();
  }

  // ------------------------------------------------------------------------------ batching

  private append(w: SpaceWaiter): void {
    const { topic, messages, sizes, partition, call } = w;
    this.queuedBytes += w.bytes;
    this.queuedMessages += messages.length;
    const key = batchKey(topic, partition, w.scheduled);
    let i = 0;
    while (i < messages.length) {
      let batch = this.open.get(key);
      if (!batch) {
        batch = this.newBatch(topic, partition, w.scheduled);
        this.open.set(key, batch);
      }
      const first = i;
      const builder = batch.builder!;
      while (i < messages.length) {
        const size = sizes[i]!;
        if (batch.count > 0 && (batch.bytes + size > batch.byteLimit || batch.count >= this.opts.batchMessages)) break;
        const m = messages[i]!;
        builder.add(m.key, m.value, m.headers);
        batch.bytes += size;
        batch.count++;
        i++;
      }
      if (i > first) {
        batch.segments.push({ call, first, count: i - first });
        call.remaining++;
      }
      if (i < messages.length || batch.bytes >= batch.byteLimit || batch.count >= this.opts.batchMessages) this.seal(batch);
      else this.scheduleLinger(batch);
    }
  }

  private newBatch(topic: string, partition: number | undefined, scheduled: boolean): TopicBatch {
    const byteLimit = this.batchByteLimit(topic);
    return new TopicBatch(this.pool.pop() ?? newBuilder(byteLimit), byteLimit, topic, partition, scheduled);
  }

  protected seal(batch: TopicBatch): void {
    if (batch.records !== null || batch.builder === null) return; // already sealed (or destroyed)
    const key = batchKey(batch.topic, batch.partition, batch.scheduled);
    if (this.open.get(key) === batch) this.open.delete(key);
    if (batch.lingerTimer) clearTimeout(batch.lingerTimer);
    batch.lingerTimer = null;
    // No copy: the batch is sent (and resent on retry) from its builder, pooled again in finish().
    batch.records = batch.builder.view();
    if (batch.count === 0) {
      this.release(batch);
      return;
    }
    this.sendQueue.push(batch);
    this.pump();
  }

  // ------------------------------------------------------------------------------ sending

  private pump(): void {
    while (this.sendQueue.length > 0) {
      const batch = this.sendQueue[0]!;
      if (this.inFlight.size >= this.opts.maxInFlightRequests) break;
      // A batch alone may use the whole budget; batch.byteLimit keeps it within the budget.
      if (this.inFlight.size > 0 && this.inFlightBytes + batch.bytes > this.maxInFlightBytes) break;
      this.sendQueue.shift();
      this.queuedBytes -= batch.bytes;
      this.queuedMessages -= batch.count;
      this.inFlight.add(batch);
      this.inFlightBytes += batch.bytes;
      batch.firstSentAt = Date.now();
      this.attempt(batch);
    }
    this.admitWaiters();
  }

  private admitWaiters(): void {
    while (this.spaceWaiters.length > 0 && this.hasSpace(this.spaceWaiters[0]!.bytes)) {
      const w = this.spaceWaiters.shift()!;
      if (!w.call.settled) this.append(w);
    }
  }

  private attempt(batch: TopicBatch): void {
    batch.attempts++;
    this.produceFrames++;
    this.conn
      .request<ProduceResult>({ op: 'produce', topic: batch.topic, records: batch.records!, partition: batch.partition })
      .then(
        (result) => this.onAnswer(batch, result),
        (err: unknown) => this.onFailure(batch, asClientError(err, 'produce')),
      );
  }

  private onAnswer(batch: TopicBatch, result: ProduceResult): void {
    if (!this.inFlight.has(batch)) return; // destroyed meanwhile
    let acks: Ack[];
    try {
      acks = computeAcks(result, batch.count);
      if (batch.scheduled) for (const a of acks) a.scheduled = true;
    } catch (err) {
      this.finish(batch, asClientError(err, 'produce answer'));
      return;
    }
    settleSegments(batch.segments, acks);
    this.finish(batch, null);
  }

  private onFailure(batch: TopicBatch, error: WeirClientError): void {
    if (!this.inFlight.has(batch)) return;
    // Retries continue during close() (it flushes); destroy() took the batch out of inFlight.
    const delay = error.retryable ? this.retryDelay(batch.attempts, batch.firstSentAt) : -1;
    if (delay >= 0) {
      // The batch keeps its in-flight slot and bytes while it waits (see the invariants above).
      const timer = setTimeout(() => {
        this.retryTimers.delete(timer);
        if (this.inFlight.has(batch)) this.attempt(batch);
      }, delay);
      this.retryTimers.add(timer);
      return;
    }
    this.finish(batch, error);
  }

  private finish(batch: TopicBatch, error: WeirClientError | null): void {
    this.inFlight.delete(batch);
    this.inFlightBytes -= batch.bytes;
    if (error) for (const s of batch.segments) rejectCall(s.call, error);
    this.release(batch);
    this.pump();
  }

  private release(batch: TopicBatch): void {
    const builder = batch.builder;
    batch.builder = null;
    batch.records = null;
    if (builder === null) return;
    builder.reset();
    if (this.pool.length < MAX_POOLED_BUILDERS) this.pool.push(builder);
  }
}

/** Open batches are per topic (+ forced partition), scheduled messages apart. */
function batchKey(topic: string, partition: number | undefined, scheduled: boolean): string {
  const k = partition === undefined ? topic : `${topic}\u0000${partition}`;
  return scheduled ? `${k}\u0000scheduled` : k;
}
