/**
 * The idempotent producer (`connect(url, { idempotent: true })`): exactly-once append.
 *
 * It gets a producer id from the broker (`init_producer`), partitions messages itself (murmur2 of
 * the key like the gateway, one round-robin partition per call for unkeyed messages; the partition
 * count comes from describe_topic) and keeps one *stream* per (topic, partition): batches get the
 * stream's next sequence numbers when they are first sent, in order, and keep them for every
 * resend. The partition acknowledges a resent batch it already holds with its original offsets and
 * does not store it again, so retries and reconnects never duplicate a message.
 *
 * Per stream, up to maxInFlightRequests batches are on the wire. When one fails retryably (or with
 * OUT_OF_ORDER_SEQUENCE because an earlier batch of the stream was not written), the stream starts
 * a new *epoch*: after a backoff it resends every unanswered batch from the oldest, in order;
 * answers to the old epoch's requests still count if they are results (same offsets either way),
 * their errors are ignored. A non-retryable failure (or retries exhausted) fails that batch and
 * every later batch of the stream, which then continues under a fresh producer id from sequence 0.
 *
 * A producer id is bound to the connection that obtained it. init_producer also answers a secret
 * (kept here, per id in use) and an epoch; after a reconnect, before anything else goes on the new
 * socket (a Connection reopen step), the producer reclaims each id it uses with its secret, which
 * moves the id to the new socket at the next epoch and fences the old one. Produce frames carry the
 * epoch, except frames queued while reconnecting (written right after the reclaim, on the socket
 * that now holds the id). An id the broker no longer knows (forgotten, or its binding lost in a
 * crash under `--fsync never`) fails the batches of its streams for good (PRODUCER_ID_NOT_OWNED).
 */
import { ErrorCode } from '../protocol/codes.js';
import type { DescribeTopicResult, InitProducerResult, ProduceRequest, ProduceResult } from '../protocol/frames.js';
import { partitionForKey } from '../common/murmur2.js';
import { computeAcks } from './acks.js';
import { asClientError, type Connection } from './connection.js';
import { WeirClientError, badRequest, badResponse } from './errors.js';
import { Batch, ProducerBase, newBuilder, openCall, rejectCall, settleSegments, type Call, type ProducerOptions, type Segment } from './producer-base.js';
import type { Ack, Bytes, ProduceMessage, ProduceOptions } from './types.js';

/** Bytes the gateway adds to a batch (producer headers): counted against the broker's in-flight budget. */
const STAMP_BYTES = 96;
const encoder = new TextEncoder();

/** A batch of one stream: its sequence numbers are assigned at its first send. */
class StreamBatch extends Batch {
  /** Assigned at the first send, kept for every resend. -1 before. */
  producerId = -1;
  sequence = -1;
  done = false;

  constructor(
    byteLimit: number,
    readonly stream: Stream,
  ) {
    super(newBuilder(byteLimit), byteLimit);
  }
}

/** One (topic, partition): its sequence and its batches, sent in order. */
interface Stream {
  topic: string;
  partition: number;
  /** undefined: a fresh id is needed (after a fatal failure) before the next batch goes. */
  producerId: number | undefined;
  nextSeq: number;
  open: StreamBatch | null;
  /** Sealed batches not finally answered, in sequence order. */
  queue: StreamBatch[];
  /** queue[0, sent) went out in the current epoch. */
  sent: number;
  /** Requests on the wire, of any epoch. */
  inFlight: number;
  epoch: number;
  retryTimer: ReturnType<typeof setTimeout> | null;
  fetchingId: boolean;
  /** Created after idle streams were dropped: it may be one of them, so it never reuses the client's id. */
  ownId: boolean;
}

type ProduceRequestBody = Omit<ProduceRequest, 'id'>;

/** Streams kept; beyond it idle ones (nothing queued or in flight) are dropped. */
const MAX_STREAMS = 4096;
/** Topics whose partition count is cached. */
const MAX_CACHED_TOPICS = 1024;

export class IdempotentProducer extends ProducerBase<StreamBatch> {
  private readonly streams = new Map<string, Stream>();
  private readonly partitionCounts = new Map<string, Promise<number>>();
  /** Streams that stopped sending because the connection's in-flight bytes were used up. */
  private readonly blockedOnBytes = new Set<Stream>();
  /** Idle streams were dropped: a stream created from now on may continue a dropped one. */
  private streamsDropped = false;
  private readonly sticky = new Map<string, number>();
  private producerIdPromise: Promise<number> | null = null;
  /** The id producerIdPromise resolved to (the one fresh streams share). */
  private clientId: number | undefined;
  /** Per producer id in use: the secret to reclaim it on a new socket, and its current epoch. */
  private readonly credentials = new Map<number, { secret: Uint8Array; epoch: number }>();
  /** produce() calls are admitted in call order through this chain. */
  private admission: Promise<void> = Promise.resolve();
  private spaceWaiters: Array<() => void> = [];
  private waitingCalls = 0;
  private destroyed = false;

  constructor(conn: Connection, opts: ProducerOptions) {
    super(conn, opts, { stampBytes: STAMP_BYTES, largestRecord: 'an idempotent producer can send here', refuseScheduled: delayedRefused });
    conn.addReopenStep((send) => this.reclaimIds(send));
  }

  /** The producer id of this client (after the first produce), for logs and support. */
  get producerId(): Promise<number> {
    return this.ensureProducerId();
  }

  /**
   * Admit a checked call in call order, once its topic's partition count and a producer id are
   * known and the queue has room. (time: ttl/expiresAt travel as weir- headers; delayed messages
   * were refused, see delayedRefused.)
   */
  protected accept(topic: string, messages: readonly ProduceMessage[], sizes: number[], bytes: number, _scheduled: number, options: ProduceOptions): Promise<Ack[]> {
    const forced = options.partition;
    const { call, promise } = openCall(messages.length, this.active);
    this.waitingCalls++;
    this.admission = this.admission.then(async () => {
      try {
        const partitions = await this.partitionCount(topic);
        await this.ensureProducerId();
        while (!this.hasSpace(bytes) && !this.destroyed) {
          await new Promise<void>((r) => this.spaceWaiters.push(r));
        }
        if (this.destroyed) throw this.closedError!;
        if (forced !== undefined && forced >= partitions) {
          throw new WeirClientError(ErrorCode.PARTITION_NOT_FOUND, `topic ${topic} has partitions 0..${partitions - 1}, not ${forced}`, { retryable: false });
        }
        this.append(topic, partitions, messages, sizes, forced, call);
      } catch (err) {
        rejectCall(call, asClientError(err, 'produce'));
      } finally {
        this.waitingCalls--;
      }
    });
    return promise;
  }

  protected override admitting(): Promise<void> {
    return this.admission;
  }

  protected sealOpen(): void {
    for (const s of this.streams.values()) if (s.open) this.seal(s.open);
  }

  protected failAll(error: WeirClientError): void {
    this.destroyed = true;
    for (const s of this.streams.values()) {
      if (s.retryTimer) clearTimeout(s.retryTimer);
      s.retryTimer = null;
      const batches = s.open ? [...s.queue, s.open] : s.queue;
      for (const b of batches) this.failBatch(b, error);
      s.queue = [];
      s.open = null;
      s.sent = 0;
    }
    for (const w of this.spaceWaiters.splice(0)) w();
  }

  protected inFlightRequestCount(): number {
    let n = 0;
    for (const s of this.streams.values()) n += s.inFlight;
    return n;
  }

  protected waitingCallCount(): number {
    return this.waitingCalls;
  }

  onReconnect(): void {
    this.pumpAll();
  }

  // ------------------------------------------------------------------------------ setup

  private partitionCount(topic: string): Promise<number> {
    let p = this.partitionCounts.get(topic);
    if (!p) {
      p = this.conn.request<DescribeTopicResult>({ op: 'describe_topic', topic }).then((r) => {
        if (typeof r.partitions !== 'number' || r.partitions < 1) throw badRequest(`describe_topic of ${topic} has no partition count`, 'topic');
        return r.partitions;
      });
      if (this.partitionCounts.size >= MAX_CACHED_TOPICS) this.partitionCounts.delete(this.partitionCounts.keys().next().value as string);
      this.partitionCounts.set(topic, p);
      p.catch(() => this.partitionCounts.delete(topic)); // asked again on the next call
    }
    return p;
  }

  private ensureProducerId(): Promise<number> {
    if (!this.producerIdPromise) {
      const p = this.initProducer();
      this.producerIdPromise = p;
      p.then(
        (id) => {
          if (this.producerIdPromise === p) this.clientId = id;
        },
        () => {
          if (this.producerIdPromise === p) this.producerIdPromise = null;
        },
      );
    }
    return this.producerIdPromise;
  }

  private async initProducer(): Promise<number> {
    const r = await this.conn.request<InitProducerResult>({ op: 'init_producer' });
    if (typeof r.producerId !== 'number' || !Number.isSafeInteger(r.producerId)) throw badRequest('init_producer answered without a producerId', 'producerId');
    // A copy: decoded byte strings view the socket's message buffer. No secret: a broker from before
    // producer ids were bound to connections (nothing to reclaim there).
    if (r.secret instanceof Uint8Array && r.secret.length > 0) {
      this.credentials.set(r.producerId, { secret: r.secret.slice(), epoch: typeof r.epoch === 'number' ? r.epoch : 0 });
    }
    return r.producerId;
  }

  /**
   * The reopen step: on a new socket, reclaim every producer id a stream (or the client) uses, with
   * its secret; forget the credentials of ids nothing uses any more. Retryable failures abandon the
   * socket (the connection reconnects again); an id the broker refuses is lost (lostId).
   */
  private async reclaimIds(send: <T>(frame: { op: 'init_producer'; producerId: number; secret: Uint8Array }) => Promise<T>): Promise<void> {
    const inUse = new Set<number>();
    if (this.clientId !== undefined) inUse.add(this.clientId);
    for (const s of this.streams.values()) if (s.producerId !== undefined) inUse.add(s.producerId);
    for (const id of [...this.credentials.keys()]) if (!inUse.has(id)) this.credentials.delete(id);
    for (const [id, c] of [...this.credentials]) {
      try {
        const r = await send<InitProducerResult>({ op: 'init_producer', producerId: id, secret: c.secret });
        if (typeof r.epoch !== 'number') throw badResponse('init_producer (reclaim) answered without an epoch', { field: 'epoch' });
        c.epoch = r.epoch;
      } catch (err) {
        const error = asClientError(err, 'init_producer');
        if (error.retryable) throw error;
        this.lostId(id, error);
      }
    }
  }

  /**
   * The broker refused to give `id` back (it forgot it, or lost its binding in a crash): its
   * unanswered batches cannot be resent under it, nor safely under another id (one may be stored),
   * so they fail with `error`; its streams continue under fresh ids.
   */
  private lostId(id: number, error: WeirClientError): void {
    this.credentials.delete(id);
    if (this.clientId === id) {
      this.clientId = undefined;
      this.producerIdPromise = null;
    }
    for (const s of this.streams.values()) if (s.producerId === id) this.fatal(s, error);
  }

  // ------------------------------------------------------------------------------ batching

  private append(topic: string, partitions: number, messages: readonly ProduceMessage[], sizes: number[], forced: number | undefined, call: Call): void {
    let unkeyed = -1;
    let last: { batch: StreamBatch; segment: Segment } | null = null;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      let p: number;
      if (forced !== undefined) p = forced;
      else if (m.key != null) p = keyPartition(m.key, partitions);
      else {
        if (unkeyed < 0) {
          unkeyed = (this.sticky.get(topic) ?? 0) % partitions;
          this.sticky.set(topic, (unkeyed + 1) % partitions);
        }
        p = unkeyed;
      }
      const s = this.stream(topic, p);
      let batch = s.open;
      if (batch && batch.count > 0 && (batch.bytes + sizes[i]! > batch.byteLimit || batch.count >= this.opts.batchMessages)) {
        this.seal(batch);
        batch = null;
      }
      if (!batch) {
        batch = new StreamBatch(this.batchByteLimit(topic), s);
        s.open = batch;
      }
      batch.builder!.add(m.key, m.value, m.headers);
      batch.bytes += sizes[i]!;
      batch.count++;
      this.queuedBytes += sizes[i]!;
      this.queuedMessages++;
      if (last && last.batch === batch && last.segment.first + last.segment.count === i) last.segment.count++;
      else {
        const segment: Segment = { call, first: i, count: 1 };
        batch.segments.push(segment);
        call.remaining++;
        last = { batch, segment };
      }
      if (batch.bytes >= batch.byteLimit || batch.count >= this.opts.batchMessages) this.seal(batch);
      else this.scheduleLinger(batch);
    }
  }

  private stream(topic: string, partition: number): Stream {
    const key = `${topic}\u0000${partition}`;
    let s = this.streams.get(key);
    if (!s) {
      if (this.streams.size >= MAX_STREAMS) this.dropIdleStreams();
      s = { topic, partition, producerId: undefined, nextSeq: 0, open: null, queue: [], sent: 0, inFlight: 0, epoch: 0, retryTimer: null, fetchingId: false, ownId: this.streamsDropped };
      this.streams.set(key, s);
    }
    return s;
  }

  /**
   * Forget the streams with nothing queued or in flight. Their sequence is forgotten with them, so
   * whatever is sent to their partitions later goes under a fresh producer id (Stream.ownId).
   */
  private dropIdleStreams(): void {
    for (const [key, s] of this.streams) {
      if (s.open === null && s.queue.length === 0 && s.inFlight === 0 && s.retryTimer === null && !s.fetchingId) {
        this.streams.delete(key);
        this.blockedOnBytes.delete(s);
        this.streamsDropped = true;
      }
    }
  }

  protected seal(batch: StreamBatch): void {
    if (batch.records !== null || batch.builder === null) return;
    const s = batch.stream;
    if (s.open === batch) s.open = null;
    if (batch.lingerTimer) clearTimeout(batch.lingerTimer);
    batch.lingerTimer = null;
    batch.records = batch.builder.take();
    batch.builder = null;
    if (batch.count === 0) return;
    s.queue.push(batch);
    this.pump(s);
  }

  // ------------------------------------------------------------------------------ sending

  private pumpAll(): void {
    for (const s of this.streams.values()) this.pump(s);
  }

  private pump(s: Stream): void {
    if (this.destroyed || s.retryTimer !== null) return;
    if (s.producerId === undefined) {
      if (s.queue.length === 0) return;
      this.acquireId(s);
      return;
    }
    while (s.sent < s.queue.length && s.inFlight < this.opts.maxInFlightRequests) {
      const b = s.queue[s.sent]!;
      const cost = b.bytes + STAMP_BYTES;
      if (this.inFlightBytes > 0 && this.inFlightBytes + cost > this.maxInFlightBytes) {
        this.blockedOnBytes.add(s); // resumed when an answer gives bytes back (answered)
        break;
      }
      if (b.sequence < 0) {
        b.producerId = s.producerId;
        b.sequence = s.nextSeq;
        s.nextSeq += b.count;
        b.firstSentAt = Date.now();
      }
      s.sent++;
      this.attempt(s, b, cost);
    }
  }

  /** A stream restarting after a fatal failure takes the client's id if it is new, else a fresh one. */
  private acquireId(s: Stream): void {
    if (s.fetchingId) return;
    s.fetchingId = true;
    const fresh = s.nextSeq === 0 && s.epoch === 0 && !s.ownId;
    (fresh ? this.ensureProducerId() : this.initProducer()).then(
      (id) => {
        s.fetchingId = false;
        s.producerId = id;
        s.nextSeq = 0;
        this.pump(s);
      },
      (err: unknown) => {
        s.fetchingId = false;
        // Cannot get an id: fail what waits; the next produce() tries again.
        const error = asClientError(err, 'init_producer');
        for (const b of s.queue.splice(0)) this.failBatch(b, error);
        s.sent = 0;
      },
    );
  }

  private attempt(s: Stream, b: StreamBatch, cost: number): void {
    b.attempts++;
    s.inFlight++;
    this.inFlightBytes += cost;
    this.produceFrames++;
    const epoch = s.epoch;
    const frame: ProduceRequestBody = { op: 'produce', topic: s.topic, partition: s.partition, producerId: b.producerId, sequence: b.sequence, records: b.records! };
    // While reconnecting the frame waits for the next socket, where the reclaim sets a newer epoch:
    // send it without one there (the binding to that socket is what the broker checks).
    const credentials = this.credentials.get(b.producerId);
    if (credentials !== undefined && this.conn.state === 'open') frame.epoch = credentials.epoch;
    this.conn
      .request<ProduceResult>(frame)
      .then(
        (result) => this.answered(s, b, cost, () => this.onResult(s, b, result)),
        (err: unknown) => this.answered(s, b, cost, () => this.onFailure(s, b, epoch, asClientError(err, 'produce'))),
      );
  }

  private answered(s: Stream, _b: StreamBatch, cost: number, handle: () => void): void {
    s.inFlight--;
    this.inFlightBytes -= cost;
    if (!this.destroyed) handle();
    // Only this stream and the streams waiting for in-flight bytes can move now.
    this.pump(s);
    if (this.blockedOnBytes.size > 0) {
      const waiting = [...this.blockedOnBytes];
      this.blockedOnBytes.clear();
      for (const w of waiting) this.pump(w);
    }
  }

  private onResult(s: Stream, b: StreamBatch, result: ProduceResult): void {
    if (b.done) return;
    let acks: Ack[];
    try {
      acks = computeAcks(result, b.count);
    } catch (err) {
      this.fatal(s, asClientError(err, 'produce answer'));
      return;
    }
    this.settle(s, b, acks);
  }

  /** The batch is stored: resolve its messages' calls with `acks` and take it off the stream. */
  private settle(s: Stream, b: StreamBatch, acks: Ack[]): void {
    settleSegments(b.segments, acks);
    this.retire(b);
    const i = s.queue.indexOf(b);
    if (i >= 0) {
      s.queue.splice(i, 1);
      if (i < s.sent) s.sent--;
    }
  }

  private onFailure(s: Stream, b: StreamBatch, epoch: number, error: WeirClientError): void {
    if (b.done || epoch !== s.epoch) return; // answered already, or a resend from the head is under way
    if (error.code === ErrorCode.DUPLICATE_SEQUENCE) {
      // A resend of a batch the partition stored so long ago that it forgot its offsets: stored,
      // exactly once. Failing it would invite the caller to send it again (a duplicate).
      const acks: Ack[] = Array.from({ length: b.count }, () => ({ partition: s.partition, offset: -1, duplicate: true as const }));
      this.settle(s, b, acks);
      return;
    }
    const head = s.queue[0];
    // OUT_OF_ORDER_SEQUENCE behind an unanswered earlier batch: that one was not written (yet).
    const retry = error.retryable || (error.code === ErrorCode.OUT_OF_ORDER_SEQUENCE && head !== b);
    const delay = retry && head ? this.retryDelay(Math.min(head.attempts, b.attempts), head.firstSentAt) : -1;
    if (delay >= 0) {
      s.epoch++;
      s.retryTimer = setTimeout(() => {
        s.retryTimer = null;
        s.sent = 0;
        this.pump(s);
      }, delay);
      return;
    }
    this.fatal(s, error);
  }

  /**
   * The stream's sequence is broken (a batch failed for good): fail it and every later batch (they
   * would all be out of order), and continue under a fresh producer id.
   */
  private fatal(s: Stream, error: WeirClientError): void {
    for (const b of s.queue.splice(0)) this.failBatch(b, error);
    s.sent = 0;
    s.epoch++;
    s.producerId = undefined;
    s.nextSeq = 0;
  }

  private failBatch(b: StreamBatch, error: WeirClientError): void {
    if (b.done) return;
    if (b.lingerTimer) clearTimeout(b.lingerTimer);
    for (const seg of b.segments) rejectCall(seg.call, error);
    this.retire(b);
  }

  private retire(b: StreamBatch): void {
    b.done = true;
    b.records = null;
    this.queuedBytes -= b.bytes;
    this.queuedMessages -= b.count;
    if (this.queuedBytes < 0) this.queuedBytes = 0;
    if (this.queuedMessages < 0) this.queuedMessages = 0;
    for (const w of this.spaceWaiters.splice(0)) w();
  }
}

/**
 * A delayed message would go to the schedule log, outside the partition's sequence check, so it
 * cannot be sent exactly once.
 */
function delayedRefused(index: number, message: ProduceMessage): WeirClientError {
  return new WeirClientError(
    ErrorCode.BAD_REQUEST,
    `message ${index} is delayed (deliverAt / delay): an idempotent producer cannot send delayed messages; send them with a plain client`,
    { retryable: false, details: { field: message.deliverAt !== undefined ? 'deliverAt' : 'delay', index } },
  );
}

/** The gateway's partitioner (docs/protocol.md, Partitioning), shared with it: murmur2 of the key bytes. */
export function keyPartition(key: Bytes, partitions: number): number {
  const bytes = typeof key === 'string' ? encoder.encode(key) : key;
  return partitionForKey(bytes, 0, bytes.length, partitions);
}

