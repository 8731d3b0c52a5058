/**
 * What the two producers (Producer, IdempotentProducer) do alike: a produce() call is checked and
 * measured whole, then its messages are written into batches as runs (segments) of the call; a
 * batch is sealed when full or when lingerMs passed; an answer settles the segments it carries; a
 * retryable failure is retried with backoff while retryForMs allows; flush, close, destroy and the
 * stats. How batches are keyed, ordered, sent and resent is each producer's own (see their files).
 *
 * produce() is the hot path: one pass over the messages, no object or closure per message, one
 * call into the subclass per produce() call (accept).
 */
import { BatchBuilder } from '../protocol/batch-builder.js';
import { ErrorCode } from '../protocol/codes.js';
import { backoffDelay } from './backoff.js';
import { FRAME_OVERHEAD_BYTES, asClientError, type Connection } from './connection.js';
import { WeirClientError, badRequest } from './errors.js';
import { recordSize, utf8Length } from './record-size.js';
import { isScheduled, withTimeHeaders } from './time.js';
import type { Ack, ClientStats, ProduceMessage, ProduceOptions } from './types.js';

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

/** The producer's share of ClientStats (documented there). */
export type ProducerStats = Pick<
  ClientStats,
  'inFlightBytes' | 'inFlightRequests' | 'queuedBytes' | 'queuedMessages' | 'waitingProducers' | 'produceFrames' | 'retries'
>;

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

/** A batch of records being filled, then sent (and resent) until it is finally answered. */
export class Batch {
  /** Sealed: the records to send. */
  records: Uint8Array | null = null;
  readonly segments: Segment[] = [];
  bytes = 0;
  count = 0;
  lingerTimer: ReturnType<typeof setTimeout> | null = null;
  lingerPending = false;
  attempts = 0;
  firstSentAt = 0;

  constructor(
    /** Holds the records until sealed (the Producer also sends them from it, see its seal). */
    public builder: BatchBuilder | null,
    readonly byteLimit: number,
  ) {}
}

/** Where the producers differ inside the shared code. */
export interface ProducerRules {
  /** Bytes the gateway adds to each batch (producer headers), taken off every limit. */
  stampBytes: number;
  /** How MESSAGE_TOO_LARGE names the limit: "the largest <this> is N bytes". */
  largestRecord: string;
  /** The error for a delayed message (deliverAt / delay), or null when delayed messages are sent. */
  refuseScheduled: ((index: number, message: ProduceMessage) => WeirClientError) | null;
}

/** A new batch's builder starts at most this big (it grows). */
const BUILDER_INITIAL_BYTES = 64 * 1024;

export abstract class ProducerBase<B extends Batch> {
  protected readonly active = new Set<Promise<Ack[]>>();
  protected closedError: WeirClientError | null = null;
  /** Bytes of requests sent and not finally answered, as the broker's in-flight budget counts them. */
  protected inFlightBytes = 0;
  protected queuedBytes = 0;
  protected queuedMessages = 0;
  protected produceFrames = 0;
  protected retries = 0;

  constructor(
    protected readonly conn: Connection,
    protected readonly opts: ProducerOptions,
    private readonly rules: ProducerRules,
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
    // scheduled messages; a message without time fields or headers pays only a few property reads
    // for that.
    const hello = this.conn.hello;
    const { stampBytes, refuseScheduled } = this.rules;
    const maxRecord = Math.min(
      hello.maxMessageBytes - stampBytes,
      this.maxInFlightBytes - stampBytes,
      hello.maxFrameBytes - FRAME_OVERHEAD_BYTES - stampBytes - utf8Length(topic),
    );
    const sizes = new Array<number>(messages.length);
    let bytes = 0;
    let scheduled = 0;
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
      if (isScheduled(m)) {
        if (refuseScheduled !== null) return Promise.reject(refuseScheduled(i, messages[i]!));
        scheduled++;
      }
      try {
        size = recordSize(m);
      } catch (err) {
        return Promise.reject(asClientError(err, `message ${i}`));
      }
      if (size > maxRecord) {
        return Promise.reject(
          new WeirClientError(ErrorCode.MESSAGE_TOO_LARGE, `message ${i} is a ${size}-byte record; the largest ${this.rules.largestRecord} is ${maxRecord} bytes`, {
            retryable: false,
            details: { index: i, recordBytes: size, maxMessageBytes: hello.maxMessageBytes, limit: maxRecord },
          }),
        );
      }
      sizes[i] = size;
      bytes += size;
    }
    return this.accept(topic, prepared ?? messages, sizes, bytes, scheduled, options);
  }

  /**
   * Take a checked call: `sizes[i]` is message i's record size, `bytes` their sum, `scheduled` how
   * many are delayed; options.partition is valid.
   */
  protected abstract accept(
    topic: string,
    messages: readonly ProduceMessage[],
    sizes: number[],
    bytes: number,
    scheduled: number,
    options: ProduceOptions,
  ): Promise<Ack[]>;

  /** Send everything open now and wait until every accepted call is settled. */
  async flush(): Promise<void> {
    for (;;) {
      const admitting = this.admitting();
      if (admitting !== null) await admitting;
      this.sealOpen();
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
    this.failAll(error);
    this.queuedBytes = this.queuedMessages = 0;
  }

  stats(): ProducerStats {
    return {
      inFlightBytes: this.inFlightBytes,
      inFlightRequests: this.inFlightRequestCount(),
      queuedBytes: this.queuedBytes,
      queuedMessages: this.queuedMessages,
      waitingProducers: this.waitingCallCount(),
      produceFrames: this.produceFrames,
      retries: this.retries,
    };
  }

  /** The connection came back: what waited for it may go now. */
  abstract onReconnect(): void;

  /** Calls accepted but not yet in batches: flush waits for them first (null: none can be). */
  protected admitting(): Promise<void> | null {
    return null;
  }
  /** Seal every batch still open (flush). */
  protected abstract sealOpen(): void;
  /** Stop timers, fail every unsettled call with `error`, drop every batch (destroy). */
  protected abstract failAll(error: WeirClientError): void;
  protected abstract inFlightRequestCount(): number;
  protected abstract waitingCallCount(): number;
  /** Close `batch` to more records and queue it for sending (nothing when it is sealed already). */
  protected abstract seal(batch: B): void;

  // ------------------------------------------------------------------------------ batching

  /** A call of `bytes` may be queued now (one call alone always may, into an empty queue). */
  protected hasSpace(bytes: number): boolean {
    return this.queuedBytes === 0 || this.queuedBytes + bytes <= this.opts.maxQueuedBytes;
  }

  /** A new batch's byte limit: one frame must fit the broker's frame limit and, alone, the in-flight budget. */
  protected batchByteLimit(topic: string): number {
    const stampBytes = this.rules.stampBytes;
    return Math.max(
      1,
      Math.min(this.opts.batchBytes, this.conn.hello.maxFrameBytes - FRAME_OVERHEAD_BYTES - stampBytes - utf8Length(topic), this.maxInFlightBytes - stampBytes),
    );
  }

  /** Seal `batch` after lingerMs (at the end of this task when lingerMs is 0), unless it is already due. */
  protected scheduleLinger(batch: B): void {
    if (batch.lingerTimer || batch.lingerPending) return;
    if (this.opts.lingerMs <= 0) {
      batch.lingerPending = true;
      queueMicrotask(() => this.seal(batch));
    } else {
      batch.lingerTimer = setTimeout(() => this.seal(batch), this.opts.lingerMs);
    }
  }

  /**
   * The backoff before the next attempt of a request that was tried `attempts` times since
   * `firstSentAt`, counted as a retry; -1 when waiting it would pass retryForMs (give up).
   */
  protected retryDelay(attempts: number, firstSentAt: number): number {
    const delay = backoffDelay(attempts - 1, this.opts.retryBackoffMs, this.opts.retryBackoffMaxMs);
    if (Date.now() + delay - firstSentAt > this.opts.retryForMs) return -1;
    this.retries++;
    return delay;
  }
}

/** A builder for a batch of at most `byteLimit` bytes. */
export function newBuilder(byteLimit: number): BatchBuilder {
  return new BatchBuilder(Math.min(byteLimit, BUILDER_INITIAL_BYTES));
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

/** A batch was stored: give each segment its acks (the batch's, in order) and resolve the calls it completes. */
export function settleSegments(segments: readonly Segment[], acks: readonly Ack[]): void {
  let at = 0;
  for (const s of segments) {
    const call = s.call;
    for (let j = 0; j < s.count; j++) call.acks[s.first + j] = acks[at + j]!;
    at += s.count;
    if (--call.remaining === 0 && !call.settled) {
      call.settled = true;
      call.resolve(call.acks);
    }
  }
}

export function rejectCall(call: Call, error: WeirClientError): void {
  if (call.settled) return;
  call.settled = true;
  call.reject(error);
}
