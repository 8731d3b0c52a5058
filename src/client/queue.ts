/**
 * Queue subscriptions (competing consumers): `client.subscribe(topic, {mode: 'queue', group}, handler)`.
 *
 * The broker hands each message to one consumer of the group and counts its deliveries; this side
 * runs the handler (`concurrency` at a time, in delivery order) and settles each message:
 * - the handler called `m.ack()` / `m.nack(…)`: that;
 * - it resolved without settling: ack (unless `autoAck: false`: then the message stays held until
 *   the application settles it, or its visibility timeout redelivers it);
 * - it threw: `nack` with retry (reason = the error's message), and an `error` event.
 * Settlements are coalesced per partition into offset ranges and sent once per event-loop turn, or at
 * once when half the prefetch is waiting to be sent (so the broker refills while the rest is handled).
 *
 * After a disconnect the broker redelivers whatever this consumer held, so messages of the old
 * connection are dropped here and their late ack()/nack() calls are no-ops; the subscription is
 * re-created on reconnect.
 */
import { Message, readMessages } from '../protocol/batch-reader.js';
import { ErrorCode, WeirCode } from '../protocol/codes.js';
import type { DeliverFrame, DescribeTopicResult, FetchResult } from '../protocol/frames.js';
import { Header } from '../protocol/headers.js';
import { RECORD_MIN_LENGTH, readU32, verifyRecords } from '../protocol/record.js';
import { asClientError, type Connection, type PushFrame } from './connection.js';
import { Emitter } from './emitter.js';
import { WeirClientError, corruptRecordError, errorFromFrame, handlerError } from './errors.js';

export interface QueueSubscribeOptions {
  mode: 'queue';
  /** The queue group: its consumers share the messages. Required. */
  group: string;
  /** Unacknowledged messages this consumer may hold (delivered, not settled). Default 100. */
  prefetch?: number;
  /** Where a new group starts. Default 'earliest' (a queue keeps what was sent before anyone listened). */
  from?: 'earliest' | 'latest';
  /** Handlers running at once. Default 1 (one at a time, in delivery order). */
  concurrency?: number;
  /** Ack when the handler resolves without settling the message. Default true. */
  autoAck?: boolean;
  /** Handler failures and subscription-level broker errors. */
  onError?: (error: WeirClientError) => void;
}

export interface NackOptions {
  /** Send it to the dead-letter topic now instead of retrying. Default false (retry after the topic's backoff). */
  fatal?: boolean;
  /** Stored in the dead letter's `weir-dlq-reason` header. */
  reason?: string;
}

export type QueueMessageHandler = (message: QueueMessage) => void | Promise<void>;

/** A message of a queue subscription: settle it with ack() or nack(). */
export class QueueMessage extends Message {
  /** @internal */ settledAs: 'ack' | 'nack' | null = null;
  constructor(
    topic: string,
    partition: number,
    buf: Uint8Array,
    at: number,
    /** 1 on the first delivery; higher after timeouts, retries and consumer failures. */
    readonly deliveryCount: number,
    private readonly owner: QueueSubscription,
    /** @internal */ readonly epoch: number,
  ) {
    super(topic, partition, buf, at);
  }
  get settled(): boolean {
    return this.settledAs !== null;
  }
  /** Done with it: it is never delivered again (to this group). Later calls are ignored. */
  ack(): void {
    if (this.settledAs !== null) return;
    this.settledAs = 'ack';
    this.owner.settle(this, null);
  }
  /** Give it back: redelivered after the backoff, or (`fatal`, or deliveries exhausted) dead-lettered. */
  nack(options: NackOptions = {}): void {
    if (this.settledAs !== null) return;
    this.settledAs = 'nack';
    this.owner.settle(this, { action: options.fatal ? 'fatal' : 'retry', reason: options.reason });
  }
}

export interface QueueSubscriptionEvents extends Record<string, unknown> {
  error: WeirClientError;
}

interface NackBatch {
  partition: number;
  action: 'retry' | 'fatal';
  reason: string | undefined;
  offsets: number[];
}

export class QueueSubscription extends Emitter<QueueSubscriptionEvents> {
  readonly topic: string;
  readonly group: string;
  private subId: number | null = null;
  private epoch = 0;
  private state: 'subscribing' | 'active' | 'closing' | 'closed' = 'subscribing';
  private queue: QueueMessage[] = [];
  private head = 0;
  private running = 0;
  private pumping = false;
  /** autoAck: false — messages the handler returned from without settling them. */
  /**
   * Handled but not settled (autoAck: false), by `partition:offset`: a message the broker redelivers
   * (its visibility timeout passed) replaces its earlier copy, so never-settled messages cost a
   * bounded amount (at most the partitions' windows), not one entry per delivery forever.
   */
  private unsettled = new Map<string, QueueMessage>();
  private idle: Array<() => void> = [];
  /** Offsets acked since the last flush, by partition (an array: no Map lookup per message). */
  private acks: Array<number[] | undefined> = [];
  /** Partitions with acks in `acks`, in first-ack order. */
  private ackedPartitions: number[] = [];
  private nacks = new Map<string, NackBatch>();
  private flushScheduled = false;
  /** Settlements gathered since the last flush. */
  private unsent = 0;
  private closing: Promise<void> | null = null;
  private readonly prefetch: number;
  private readonly concurrency: number;
  private readonly autoAck: boolean;
  private readonly listener = (frame: PushFrame): void => this.onPush(frame);
  private readonly offDisconnect: () => void;
  private readonly offReconnect: () => void;

  private constructor(
    private readonly conn: Connection,
    topic: string,
    private readonly opts: QueueSubscribeOptions,
    private readonly handler: QueueMessageHandler,
    private readonly onClosed: (sub: QueueSubscription) => void,
  ) {
    super();
    this.topic = topic;
    this.group = opts.group;
    this.prefetch = opts.prefetch ?? 100;
    this.concurrency = opts.concurrency ?? 1;
    this.autoAck = opts.autoAck ?? true;
    const bad = (field: string, message: string): WeirClientError => new WeirClientError(ErrorCode.BAD_REQUEST, message, { retryable: false, details: { field } });
    if (typeof opts.group !== 'string' || opts.group.length === 0) throw bad('group', 'queue mode needs a group');
    if (!(Number.isInteger(this.prefetch) && this.prefetch >= 1)) throw bad('prefetch', 'prefetch must be an integer ≥ 1');
    if (!(Number.isInteger(this.concurrency) && this.concurrency >= 1)) throw bad('concurrency', 'concurrency must be an integer ≥ 1');
    if (typeof handler !== 'function') throw bad('handler', 'subscribe() needs a handler function');
    this.offDisconnect = conn.on('disconnect', () => this.onDisconnect());
    this.offReconnect = conn.on('reconnect', () => void this.onReconnect());
  }

  static async start(conn: Connection, topic: string, opts: QueueSubscribeOptions, handler: QueueMessageHandler, onClosed: (sub: QueueSubscription) => void): Promise<QueueSubscription> {
    const sub = new QueueSubscription(conn, topic, opts, handler, onClosed);
    try {
      await sub.subscribe();
    } catch (err) {
      sub.destroy();
      throw err;
    }
    sub.state = 'active';
    return sub;
  }

  /** The broker's subscription id on the current connection (changes after a reconnect). */
  get id(): number | null {
    return this.subId;
  }

  /** Messages received and not yet handed to the handler, handlers running, and (autoAck: false) messages handled but not settled. */
  stats(): { queued: number; running: number; unsettled: number } {
    return { queued: this.queue.length - this.head, running: this.running, unsettled: this.unsettled.size };
  }

  /** Stop taking messages, wait for running handlers, send their settlements, leave the group. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closing';
    // Not handled: the broker gives them to another consumer once we leave.
    this.queue = [];
    this.head = 0;
    while (this.running > 0) await new Promise<void>((r) => this.idle.push(r));
    // Handled but left unsettled (autoAck: false): the application saw them, so they count as
    // deliveries; give them back as retries. Everything else we hold was never handled, and the
    // broker undoes those deliveries on unsubscribe.
    for (const m of [...this.unsettled.values()]) m.nack({ reason: 'consumer closed' });
    this.flush();
    const sub = this.subId;
    if (sub !== null && this.conn.state === 'open') {
      await this.conn.request({ op: 'queue_unsubscribe', sub }).catch(() => undefined);
    }
    this.destroy();
  }

  /** Stop at once: held messages are redelivered by the broker once the connection or subscription goes. */
  destroy(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.queue = [];
    this.head = 0;
    this.epoch++;
    this.unsettled.clear();
    if (this.subId !== null) this.conn.unregisterSubscription(this.subId, this.listener);
    this.subId = null;
    this.offDisconnect();
    this.offReconnect();
    this.onClosed(this);
  }

  private async subscribe(): Promise<void> {
    await this.conn.request<{ sub: number }>(
      { op: 'queue_subscribe', topic: this.topic, group: this.group, prefetch: this.prefetch, ...(this.opts.from ? { from: this.opts.from } : {}) },
      {
        onResult: (result) => {
          if (typeof result.sub !== 'number') throw new WeirClientError(WeirCode.BAD_RESPONSE, 'queue_subscribe result has no sub', { retryable: false });
          this.subId = result.sub;
          this.conn.registerSubscription(result.sub, this.listener);
        },
      },
    );
  }

  private onDisconnect(): void {
    if (this.state !== 'active') return;
    if (this.subId !== null) this.conn.unregisterSubscription(this.subId, this.listener);
    this.subId = null;
    this.epoch++; // what we held is redelivered by the broker
    this.unsettled.clear();
    this.queue = [];
    this.head = 0;
    this.acks = [];
    this.ackedPartitions = [];
    this.nacks.clear();
  }

  private async onReconnect(): Promise<void> {
    if (this.state !== 'active') return;
    try {
      await this.subscribe();
    } catch (err) {
      const e = asClientError(err, 'resubscribe');
      if (!e.retryable) {
        this.report(new WeirClientError(e.code, `resubscribing to ${this.topic} failed: ${e.message}`, { retryable: false, details: e.details, cause: e }));
        this.destroy();
      }
    }
  }

  private onPush(frame: PushFrame): void {
    if (this.state === 'closed') return;
    if (frame.op === 'deliver') this.onDeliver(frame);
    else if (frame.op === 'error') this.report(errorFromFrame(frame));
  }

  private onDeliver(f: DeliverFrame): void {
    if (this.state !== 'active' && this.state !== 'subscribing') return;
    const buf = f.records;
    const d = f.deliveries;
    const check = this.conn.checkCrcs;
    let i = 0;
    for (let at = 0; at + 4 <= buf.length; at += 4 + readU32(buf, at), i++) {
      const count = d instanceof Uint8Array && d.length >= 2 * i + 2 ? d[2 * i]! | (d[2 * i + 1]! << 8) : 1;
      const length = readU32(buf, at);
      if (check && (length < RECORD_MIN_LENGTH || at + 4 + length > buf.length)) {
        // The rest of this delivery cannot be read: the broker redelivers it after the visibility timeout.
        this.report(corruptRecordError(this.topic, f.partition, -1, false, 'it will be redelivered after its visibility timeout'));
        break;
      }
      const m = new QueueMessage(this.topic, f.partition, buf, at, count, this, this.epoch);
      if (check && verifyRecords(buf, at, at + 4 + length, m.offset) !== 1) {
        // Never handed out: given back, to be redelivered (or dead-lettered once out of deliveries).
        m.nack({ reason: 'the record failed the client\'s CRC check' });
        this.report(corruptRecordError(this.topic, f.partition, m.offset, true, 'it was given back (nack) to be redelivered'));
        continue;
      }
      this.queue.push(m);
    }
    this.pump();
  }

  /**
   * Hand queued messages to the handler while fewer than `concurrency` run. A handler that returns
   * without a promise is settled on the spot (no microtask per message); re-entrant calls (a
   * handler settling synchronously) only mark work for the running loop.
   */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.running < this.concurrency && this.head < this.queue.length && (this.state === 'active' || this.state === 'subscribing')) {
        const m = this.queue[this.head++]!;
        if (this.head > 1024 && this.head * 2 > this.queue.length) {
          this.queue = this.queue.slice(this.head);
          this.head = 0;
        }
        this.running++;
        let result: unknown;
        try {
          result = this.handler(m);
        } catch (err) {
          this.failed(m, err);
          this.finished();
          continue;
        }
        if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
          (result as PromiseLike<unknown>).then(
            () => {
              this.handled(m);
              this.finished();
              this.pump();
            },
            (err: unknown) => {
              this.failed(m, err);
              this.finished();
              this.pump();
            },
          );
        } else {
          this.handled(m);
          this.finished();
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  private handled(m: QueueMessage): void {
    if (m.settled) return;
    if (this.autoAck) m.ack();
    else this.unsettled.set(`${m.partition}:${m.offset}`, m);
  }

  private failed(m: QueueMessage, err: unknown): void {
    if (!m.settled) m.nack({ reason: err instanceof Error ? err.message : String(err) });
    this.report(handlerError(this.topic, m.partition, m.offset, err));
  }

  private finished(): void {
    this.running--;
    if (this.running === 0) for (const r of this.idle.splice(0)) r();
  }

  /** @internal Called by QueueMessage.ack/nack. */
  settle(m: QueueMessage, nack: { action: 'retry' | 'fatal'; reason: string | undefined } | null): void {
    if (!this.autoAck) {
      const key = `${m.partition}:${m.offset}`;
      if (this.unsettled.get(key) === m) this.unsettled.delete(key);
    }
    if (m.epoch !== this.epoch || this.state === 'closed') return; // from an earlier connection: the broker redelivers it anyway
    const offset = m.offset;
    if (nack === null) {
      const list = this.acks[m.partition];
      if (list === undefined) {
        this.acks[m.partition] = [offset];
        this.ackedPartitions.push(m.partition);
      } else list.push(offset);
    } else {
      const key = `${m.partition}\0${nack.action}\0${nack.reason ?? ''}`;
      let b = this.nacks.get(key);
      if (!b) this.nacks.set(key, (b = { partition: m.partition, action: nack.action, reason: nack.reason, offsets: [] }));
      b.offsets.push(offset);
    }
    // Half the prefetch settled: send now, so the broker refills while the other half is handled.
    if (++this.unsent * 2 >= this.prefetch) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      afterThisTurn(() => this.flush());
    }
  }

  /** Send the settlements gathered since the last flush, as offset ranges. */
  private flush(): void {
    this.flushScheduled = false;
    this.unsent = 0;
    const sub = this.subId;
    if (sub === null) return;
    for (const partition of this.ackedPartitions) {
      this.conn.notify({ op: 'ack', sub, partition, ranges: toRanges(this.acks[partition]!) });
      this.acks[partition] = undefined;
    }
    this.ackedPartitions = [];
    for (const b of this.nacks.values()) {
      this.conn.notify({ op: 'nack', sub, partition: b.partition, ranges: toRanges(b.offsets), action: b.action, ...(b.reason !== undefined ? { reason: b.reason } : {}) });
    }
    this.nacks.clear();
  }

  private report(err: WeirClientError): void {
    if (this.opts.onError) {
      try {
        this.opts.onError(err);
      } catch {
        // the application's error callback must not break delivery
      }
    }
    this.emit('error', err);
  }
}

/**
 * Run `f` once the current event-loop turn's I/O callbacks are done: setImmediate in Node (a
 * timer's 1 ms minimum would cap a consumer at prefetch/ms), a zero timeout in browsers.
 */
const afterThisTurn: (f: () => void) => void =
  typeof (globalThis as { setImmediate?: unknown }).setImmediate === 'function'
    ? (f) => void (globalThis as unknown as { setImmediate: (f: () => void) => unknown }).setImmediate(f)
    : (f) => void setTimeout(f, 0);

const ascending = (a: number, b: number): number => a - b;

/** Sorted offsets as flat [from, to) pairs. */
export function toRanges(offsets: number[]): number[] {
  // Usually ascending already (one partition's messages are handled in delivery order): skip the sort.
  let sorted = true;
  for (let i = 1; i < offsets.length && sorted; i++) if (offsets[i]! < offsets[i - 1]!) sorted = false;
  if (!sorted) offsets.sort(ascending);
  const out: number[] = [];
  for (const o of offsets) {
    const n = out.length;
    if (n > 0 && out[n - 1] === o) out[n - 1] = o + 1;
    else if (n > 0 && out[n - 1]! > o) continue; // duplicate
    else out.push(o, o + 1);
  }
  return out;
}

/** A dead letter: the original message (key, value, headers) plus why, from where and how often. */
export interface DeadLetter {
  message: Message;
  reason: string;
  topic: string;
  partition: number;
  offset: number;
  group: string;
  deliveries: number;
  time: number;
}

/** Read up to `max` dead letters of `topic` (from its dead-letter topic, oldest first per partition). */
export async function readDeadLetters(conn: Connection, topic: string, options: { max?: number } = {}): Promise<DeadLetter[]> {
  const max = options.max ?? 10_000;
  const described = await conn.request<DescribeTopicResult>({ op: 'describe_topic', topic });
  const dlq = described.config.deadLetterTopic;
  if (typeof dlq !== 'string') return [];
  let d: DescribeTopicResult;
  try {
    d = await conn.request<DescribeTopicResult>({ op: 'describe_topic', topic: dlq });
  } catch (err) {
    if (asClientError(err, 'describe').code === ErrorCode.TOPIC_NOT_FOUND) return []; // nothing dead-lettered yet
    throw err;
  }
  const out: DeadLetter[] = [];
  for (const { partition, start, end } of d.offsets) {
    let offset = start;
    while (offset < end && out.length < max) {
      const r = await conn.request<FetchResult>({ op: 'fetch', topic: dlq, partition, offset, maxRecords: Math.min(1000, max - out.length) });
      const messages = readMessages(dlq, partition, r.records instanceof Uint8Array ? r.records : new Uint8Array(0));
      if (messages.length === 0) break;
      for (const m of messages) {
        const h = m.headers;
        out.push({
          message: m,
          reason: h[Header.DLQ_REASON] ?? '',
          topic: h[Header.DLQ_TOPIC] ?? '',
          partition: Number(h[Header.DLQ_PARTITION] ?? -1),
          offset: Number(h[Header.DLQ_OFFSET] ?? -1),
          group: h[Header.DLQ_GROUP] ?? '',
          deliveries: Number(h[Header.DLQ_DELIVERIES] ?? 0),
          time: Number(h[Header.DLQ_TIME] ?? 0),
        });
      }
      offset = r.next;
    }
  }
  return out;
}
