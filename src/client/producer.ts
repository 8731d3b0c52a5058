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
import { BatchBuilder } from '../protocol/batch-builder.js';
import { ErrorCode } from '../protocol/codes.js';
import type { ProduceResult } from '../protocol/frames.js';
import { RECORD_HEADER_BYTES } from '../protocol/record.js';
import { backoffDelay } from './backoff.js';
import { FRAME_OVERHEAD_BYTES, asClientError, type Connection } from './connection.js';
import { WeirClientError, badResponse, badRequest } from './errors.js';
import type { Ack, ClientStats, ProduceMessage, ProduceOptions } from './types.js';
import { isScheduled, withTimeHeaders } from './time.js';

export interface ProducerOptions {
  lingerMs: number;
  batchBytes: number;
  batchMessages: number;
  maxInFlightRequests: number;
  /** Cap below the broker's hello.maxInFlightBytes (Infinity = the broker's). */
  maxInFlightBytes: number;
  maxQueuedBytes: number;
  retryForMs: number;
  retryBackoffMs: number;
  retryBackoffMaxMs: number;
}

/** One produce() call: its acks, filled as the batches holding its messages are answered. */
export interface Call {
  acks: Ack[];
  /** Segments (pieces in batches) not yet acknowledged. */
  remaining: number;
  settled: boolean;
  resolve: (acks: Ack[]) => void;
  reject: (err: WeirClientError) => void;
}

/** A run of one call's messages inside one batch. */
export interface Segment {
  call: Call;
  /** Index in call.acks of the segment's first message. */
  first: number;
  count: number;
}

interface Batch {
  topic: string;
  partition: number | undefined;
  /** Holds the records from the first add until the batch is finally answered (they are sent from it). */
  builder: BatchBuilder | null;
  /** Set when sealed: a view of the builder's bytes. */
  records: Uint8Array | null;
  segments: Segment[];
  bytes: number;
  count: number;
  byteLimit: number;
  lingerTimer: ReturnType<typeof setTimeout> | null;
  lingerPending: boolean;
  /** time: delayed messages travel in their own requests (the broker refuses mixed ones). */
  scheduled: boolean;
  attempts: number;
  firstSentAt: number;
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

/** The producer's share of ClientStats (documented there). */
export type ProducerStats = Pick<
  ClientStats,
  'inFlightBytes' | 'inFlightRequests' | 'queuedBytes' | 'queuedMessages' | 'waitingProducers' | 'produceFrames' | 'retries'
>;

const MAX_POOLED_BUILDERS = 8;

export class Producer {
  private readonly open = new Map<string, Batch>();
  private readonly sendQueue: Batch[] = [];
  private readonly inFlight = new Set<Batch>();
  private readonly retryTimers = new Set<ReturnType<typeof setTimeout>>();
  private readonly active = new Set<Promise<Ack[]>>();
  private spaceWaiters: SpaceWaiter[] = [];
  private readonly pool: BatchBuilder[] = [];
  private inFlightBytes = 0;
  private queuedBytes = 0;
  private queuedMessages = 0;
  private produceFrames = 0;
  private retries = 0;
  private closedError: WeirClientError | null = null;

  constructor(
    private readonly conn: Connection,
    private readonly opts: ProducerOptions,
  ) {}

  /** The budget in force: the broker's (from the latest hello), lowered by the option. */
  get maxInFlightBytes(): number {
    return Math.min(this.conn.hello.maxInFlightBytes, this.opts.maxInFlightBytes);
  }

  produce(topic: string, messages: readonly ProduceMessage[], options: ProduceOptions = {}): Promise<Ack[]> {
    if (this.closedError) return Promise.reject(this.closedError);
    if (!Array.isArray(messages)) return Promise.reject(badRequest('produce() takes an array of messages', 'messages'));
    if (typeof topic !== 'string' || topic.length === 0) return Promise.reject(badRequest('topic must be a non-empty string', 'topic'));
    const partition = options.partition;
    if (partition !== undefined && !(Number.isInteger(partition) && partition >= 0 && partition <= 0xffff)) {
      return Promise.reject(badRequest(`partition must be an integer in 0-65535, got ${String(partition)}`, 'partition'));
    }
    if (messages.length === 0) return Promise.resolve([]);

    // Validate every message before taking any: a call is accepted or refused whole. One pass:
    // it also turns time fields (deliverAt/delay/ttl/expiresAt) into weir- headers and counts the
    // scheduled messages (sent separately); a message without time fields or headers pays only a
    // few property reads for that.
    const hello = this.conn.hello;
    const maxRecord = Math.min(hello.maxMessageBytes, this.maxInFlightBytes, hello.maxFrameBytes - FRAME_OVERHEAD_BYTES - utf8Length(topic));
    const sizes = new Array<number>(messages.length);
    let bytes = 0;
    let scheduledCount = 0;
    let prepared: ProduceMessage[] | null = null;
    for (let i = 0; i < messages.length; i++) {
      let m = messages[i]!;
      let size: number;
      try {
        const timed = withTimeHeaders(m);
        if (timed !== m) (prepared ??= messages.slice())[i] = m = timed;
      } catch (err) {
        return Promise.reject(asClientError(err, 'messages'));
      }
      if (isScheduled(m)) scheduledCount++;
      try {
        size = recordSize(m);
      } catch (err) {
        return Promise.reject(asClientError(err, `message ${i}`));
      }
      if (size > maxRecord) {
        return Promise.reject(
          new WeirClientError(ErrorCode.MESSAGE_TOO_LARGE, `message ${i} is a ${size}-byte record; the largest this broker accepts is ${maxRecord} bytes`, {
            retryable: false,
            details: { index: i, recordBytes: size, maxMessageBytes: hello.maxMessageBytes, limit: maxRecord },
          }),
        );
      }
      sizes[i] = size;
      bytes += size;
    }
    if (prepared) messages = prepared;
    if (scheduledCount > 0 && scheduledCount < messages.length) return this.produceMixed(topic, messages, options);
    const scheduled = scheduledCount > 0;

    const { call, promise } = openCall(messages.length, this.active);

    const waiter: SpaceWaiter = { topic, messages, sizes, bytes, partition, call, scheduled };
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

  /** Send everything open now and wait until every accepted call is settled. */
  async flush(): Promise<void> {
    for (;;) {
      for (const batch of [...this.open.values()]) this.seal(batch);
      if (this.active.size === 0) return;
      await Promise.allSettled([...this.active]);
    }
  }

  /** Refuse new calls (with `error`), then flush what was accepted. */
  async close(error: WeirClientError): Promise<void> {
    this.closedError ??= error;
    await this.flush();
  }

  /** Fail every call that is not settled, at once. */
  destroy(error: WeirClientError): void {
    this.closedError ??= error;
    for (const timer of this.retryTimers) clearTimeout(timer);
    this.retryTimers.clear();
    const batches = [...this.open.values(), ...this.sendQueue, ...this.inFlight];
    this.open.clear();
    this.sendQueue.length = 0;
    this.inFlight.clear();
    for (const b of batches) {
      if (b.lingerTimer) clearTimeout(b.lingerTimer);
      for (const s of b.segments) this.rejectCall(s.call, error);
      // Dropped, not pooled: a frame of it may still wait in the connection.
      b.builder = null;
      b.records = null;
    }
    for (const w of this.spaceWaiters) this.rejectCall(w.call, error);
    this.spaceWaiters = [];
    this.inFlightBytes = this.queuedBytes = this.queuedMessages = 0;
  }

  stats(): ProducerStats {
    return {
      inFlightBytes: this.inFlightBytes,
      inFlightRequests: this.inFlight.size,
      queuedBytes: this.queuedBytes,
      queuedMessages: this.queuedMessages,
      waitingProducers: this.spaceWaiters.length,
      produceFrames: this.produceFrames,
      retries: this.retries,
    };
  }

  /** The connection came back: sealed batches may go now (in-flight ones are retrying by themselves). */
  onReconnect(): void {
    this.pump();
  }

  // ------------------------------------------------------------------------------ batching

  private hasSpace(bytes: number): boolean {
    return this.queuedBytes === 0 || this.queuedBytes + bytes <= this.opts.maxQueuedBytes;
  }

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

  private newBatch(topic: string, partition: number | undefined, scheduled: boolean): Batch {
    const hello = this.conn.hello;
    // One frame must fit the broker's frame limit and, alone, the in-flight budget.
    const byteLimit = Math.max(
      1,
      Math.min(this.opts.batchBytes, hello.maxFrameBytes - FRAME_OVERHEAD_BYTES - utf8Length(topic), this.maxInFlightBytes),
    );
    return {
      topic,
      partition,
      builder: this.pool.pop() ?? new BatchBuilder(Math.min(byteLimit, 64 * 1024)),
      records: null,
      segments: [],
      bytes: 0,
      count: 0,
      byteLimit,
      lingerTimer: null,
      lingerPending: false,
      scheduled,
      attempts: 0,
      firstSentAt: 0,
    };
  }

  private scheduleLinger(batch: Batch): void {
    if (batch.lingerTimer || batch.lingerPending) return;
    if (this.opts.lingerMs <= 0) {
      batch.lingerPending = true;
      queueMicrotask(() => this.seal(batch));
    } else {
      batch.lingerTimer = setTimeout(() => this.seal(batch), this.opts.lingerMs);
    }
  }

  private seal(batch: Batch): void {
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

  private attempt(batch: Batch): void {
    batch.attempts++;
    this.produceFrames++;
    this.conn
      .request<ProduceResult>({ op: 'produce', topic: batch.topic, records: batch.records!, partition: batch.partition })
      .then(
        (result) => this.onAnswer(batch, result),
        (err: unknown) => this.onFailure(batch, asClientError(err, 'produce')),
      );
  }

  private onAnswer(batch: Batch, result: ProduceResult): void {
    if (!this.inFlight.has(batch)) return; // destroyed meanwhile
    let acks: Ack[];
    try {
      acks = computeAcks(result, batch.count);
      if (batch.scheduled) for (const a of acks) a.scheduled = true;
    } catch (err) {
      this.finish(batch, asClientError(err, 'produce answer'));
      return;
    }
    let at = 0;
    for (const s of batch.segments) {
      const call = s.call;
      for (let j = 0; j < s.count; j++) call.acks[s.first + j] = acks[at + j]!;
      at += s.count;
      if (--call.remaining === 0 && !call.settled) {
        call.settled = true;
        call.resolve(call.acks);
      }
    }
    this.finish(batch, null);
  }

  private onFailure(batch: Batch, error: WeirClientError): void {
    if (!this.inFlight.has(batch)) return;
    // Retries continue during close() (it flushes); destroy() took the batch out of inFlight.
    if (error.retryable) {
      const delay = backoffDelay(batch.attempts - 1, this.opts.retryBackoffMs, this.opts.retryBackoffMaxMs);
      if (Date.now() + delay - batch.firstSentAt <= this.opts.retryForMs) {
        this.retries++;
        // The batch keeps its in-flight slot and bytes while it waits (see the invariants above).
        const timer = setTimeout(() => {
          this.retryTimers.delete(timer);
          if (this.inFlight.has(batch)) this.attempt(batch);
        }, delay);
        this.retryTimers.add(timer);
        return;
      }
    }
    this.finish(batch, error);
  }

  private finish(batch: Batch, error: WeirClientError | null): void {
    this.inFlight.delete(batch);
    this.inFlightBytes -= batch.bytes;
    if (error) for (const s of batch.segments) this.rejectCall(s.call, error);
    this.release(batch);
    this.pump();
  }

  private release(batch: Batch): void {
    const builder = batch.builder;
    batch.builder = null;
    batch.records = null;
    if (builder === null) return;
    builder.reset();
    if (this.pool.length < MAX_POOLED_BUILDERS) this.pool.push(builder);
  }

  private rejectCall(call: Call, error: WeirClientError): void {
    if (call.settled) return;
    call.settled = true;
    call.reject(error);
  }
}

/**
 * A produce() call's promise and the record its batches settle, tracked in `active` until it
 * settles. A function of its own so that the closures, which live until the last ack, do not
 * share a context with produce()'s `messages`: the caller's message objects would live (and be
 * promoted by the GC) until the answer.
 */
export function openCall(count: number, active: Set<Promise<Ack[]>>): { call: Call; promise: Promise<Ack[]> } {
  let call!: Call;
  const promise = new Promise<Ack[]>((resolve, reject) => {
    call = { acks: new Array<Ack>(count), remaining: 0, settled: false, resolve, reject };
  });
  active.add(promise);
  const forget = (): void => {
    active.delete(promise);
  };
  promise.then(forget, forget);
  return { call, promise };
}

/**
 * Per-message acks of a batch of `count` messages from a produce result (docs/protocol.md,
 * "Acknowledgements"): message i went to route[i] (or the only partition in `parts`) and has offset
 * baseOffset(route[i]) + the number of earlier messages of the batch that went to that partition.
 */
export function computeAcks(result: ProduceResult, count: number): Ack[] {
  const parts = result?.parts;
  if (!Array.isArray(parts) || parts.length === 0) throw badResponse('produce result has no parts');
  const route = result.route as Uint8Array | number[] | undefined;
  if (parts.length === 1 && (route === undefined || route === null)) {
    // The common answer (one partition): no maps.
    const part = producePart(parts[0]);
    const p = part[0];
    const base = part[1];
    const n = part[2];
    if (n !== count) throw badResponse(`produce result acknowledges ${n} messages, the batch had ${count}`, { total: n, count });
    const acks = new Array<Ack>(count);
    for (let i = 0; i < count; i++) acks[i] = { partition: p, offset: base + i };
    return acks;
  }
  const next = new Map<number, number>();
  const expectedEnd = new Map<number, number>();
  let total = 0;
  for (const raw of parts) {
    const [p, base, n] = producePart(raw);
    next.set(p, base);
    expectedEnd.set(p, base + n);
    total += n;
  }
  if (total !== count) throw badResponse(`produce result acknowledges ${total} messages, the batch had ${count}`, { total, count });
  const acks = new Array<Ack>(count);
  // One part without a route was answered above.
  if (route === undefined || route === null) throw badResponse('produce result touches several partitions but has no route');
  const at: (i: number) => number =
    route instanceof Uint8Array
      ? (i) => route[2 * i]! | (route[2 * i + 1]! << 8)
      : Array.isArray(route)
        ? (i) => route[i]! // lenient: an array of partition numbers
        : () => -1;
  const routeLength = route instanceof Uint8Array ? route.length / 2 : Array.isArray(route) ? route.length : -1;
  if (routeLength !== count) throw badResponse(`produce result route has ${routeLength} entries, the batch had ${count}`);
  for (let i = 0; i < count; i++) {
    const p = at(i);
    const offset = next.get(p);
    if (offset === undefined) throw badResponse(`produce result routes message ${i} to partition ${p}, which is not in parts`);
    acks[i] = { partition: p, offset };
    next.set(p, offset + 1);
  }
  for (const [p, end] of expectedEnd) {
    if (next.get(p) !== end) throw badResponse(`produce result route and parts disagree for partition ${p}`);
  }
  return acks;
}

/** One `[partition, baseOffset, count, …]` entry of a produce result's `parts`: numbers only. */
function producePart(part: unknown): [number, number, number, ...number[]] {
  let numbers = Array.isArray(part) && part.length >= 3;
  for (let i = 0; numbers && i < (part as unknown[]).length; i++) numbers = typeof (part as unknown[])[i] === 'number';
  if (!numbers) throw badResponse('produce result has a malformed part', { part });
  return part as [number, number, number, ...number[]];
}

/** Open batches are per topic (+ forced partition), scheduled messages apart. */
function batchKey(topic: string, partition: number | undefined, scheduled: boolean): string {
  const k = partition === undefined ? topic : `${topic}\u0000${partition}`;
  return scheduled ? `${k}\u0000scheduled` : k;
}

/** Exact size of the record BatchBuilder.add writes for `m`. */
export function recordSize(m: ProduceMessage): number {
  if (m === null || typeof m !== 'object') throw badRequest('a message must be an object with a value', 'messages');
  let size = RECORD_HEADER_BYTES + bytesLength(m.value, 'value');
  if (m.key != null) size += bytesLength(m.key, 'key');
  if (m.headers) {
    let n = 0;
    for (const name in m.headers) {
      const nameBytes = utf8Length(name);
      if (nameBytes > 0xffff) throw badRequest('a header name is longer than 65535 bytes', 'headers');
      size += 6 + nameBytes + bytesLength(m.headers[name]!, 'headers');
      n++;
    }
    if (n > 0xffff) throw badRequest('at most 65535 headers per message', 'headers');
  }
  return size;
}

function bytesLength(v: unknown, field: string): number {
  if (typeof v === 'string') return utf8Length(v);
  if (v instanceof Uint8Array) return v.length;
  throw badRequest(`${field} must be a string or a Uint8Array`, field);
}

/** UTF-8 length of a JS string, as TextEncoder encodes it (lone surrogates become U+FFFD, 3 bytes). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}


