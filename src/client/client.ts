/**
 * The public client: one connection, one producer, any number of subscriptions.
 *
 *   const client = await connect('ws://127.0.0.1:7070');
 *   await client.createTopic('orders', { partitions: 8 });
 *   const [ack] = await client.produce('orders', [{ key: 'k1', value: 'hello' }]);
 *   const sub = await client.subscribe('orders', { group: 'g1', from: 'earliest' }, async (m) => { … });
 *   await sub.close(); await client.close();
 *
 * close() drains (flushes produces, closes subscriptions with a final commit, then the socket);
 * destroy() fails everything at once (undici's close/destroy split).
 */
import { readMessages } from '../protocol/batch-reader.js';
import { ErrorCode } from '../protocol/codes.js';
import type {
  CreateTopicResult,
  DescribeTopicResult,
  DlqRedriveResult,
  FetchResult as FetchFrameResult,
  HelloResult,
  ListTopicsResult,
  TopicConfig,
  TopicInfo,
} from '../protocol/frames.js';
import { Connection } from './connection.js';
import { Emitter } from './emitter.js';
import { WeirClientError, connectionClosedError } from './errors.js';
import { Producer } from './producer.js';
import { Subscription } from './subscription.js';
import { QueueSubscription, readDeadLetters, type DeadLetter, type QueueMessageHandler, type QueueSubscribeOptions } from './queue.js';
import type {
  Ack,
  ClientOptions,
  ClientStats,
  FetchOptions,
  FetchResult,
  MessageHandler,
  ProduceMessage,
  ProduceOptions,
  SubscribeOptions,
} from './types.js';

export const DEFAULT_URL = 'ws://127.0.0.1:7070';
const CLIENT_NAME = 'weir-js/0.1.0';

export interface ClientEvents extends Record<string, unknown> {
  /** Connection-level errors that belong to no request (e.g. BAD_FRAME from the broker). */
  error: WeirClientError;
  /** The socket dropped; the client is reconnecting. */
  disconnect: WeirClientError;
  /** A new socket is up (hello done) and subscriptions are being re-established. */
  reconnect: HelloResult;
  /** The client is closed for good. */
  close: WeirClientError;
}

export class WeirClient extends Emitter<ClientEvents> {
  private readonly subscriptions = new Set<Subscription>();
  private readonly queueSubscriptions = new Set<QueueSubscription>();
  private closing: Promise<void> | null = null;
  private closedByUs = false;

  private constructor(
    private readonly conn: Connection,
    private readonly producer: Producer,
  ) {
    super();
    conn.on('disconnect', (err) => {
      for (const s of this.subscriptions) s.onDisconnect();
      this.emit('disconnect', err);
    });
    conn.on('reconnect', (hello) => {
      this.producer.onReconnect();
      for (const s of this.subscriptions) void s.onReconnect();
      this.emit('reconnect', hello);
    });
    conn.on('error', (err) => this.emit('error', err));
    conn.on('close', (err) => {
      if (!this.closedByUs) {
        // Gave up reconnecting, or a fatal hello error: nothing outstanding can complete.
        this.producer.destroy(err);
        for (const s of [...this.subscriptions]) s.destroy();
        for (const s of [...this.queueSubscriptions]) s.destroy();
      }
      this.emit('close', err);
    });
  }

  static async connect(target: string | ClientOptions = {}, options: ClientOptions = {}): Promise<WeirClient> {
    const o: ClientOptions = typeof target === 'string' ? { ...options, url: target } : { ...target };
    const conn = await Connection.open({
      url: o.url ?? DEFAULT_URL,
      token: o.token,
      clientName: o.clientName ?? CLIENT_NAME,
      WebSocket: o.WebSocket,
      requestTimeoutMs: positive(o.requestTimeoutMs, 30_000, 'requestTimeoutMs'),
      connectTimeoutMs: positive(o.connectTimeoutMs, 10_000, 'connectTimeoutMs'),
      reconnect: o.reconnect ?? true,
      reconnectDelayMs: positive(o.reconnectDelayMs, 50, 'reconnectDelayMs'),
      reconnectMaxDelayMs: positive(o.reconnectMaxDelayMs, 2_000, 'reconnectMaxDelayMs'),
      reconnectForMs: nonNegative(o.reconnectForMs, 300_000, 'reconnectForMs'),
      keepAliveMs: nonNegative(o.keepAliveMs, 30_000, 'keepAliveMs'),
    });
    const producer = new Producer(conn, {
      lingerMs: nonNegative(o.lingerMs, 1, 'lingerMs'),
      batchBytes: positive(o.batchBytes, 256 * 1024, 'batchBytes'),
      batchMessages: positive(o.batchMessages, 10_000, 'batchMessages'),
      maxInFlightRequests: positive(o.maxInFlightRequests, 32, 'maxInFlightRequests'),
      maxInFlightBytes: positive(o.maxInFlightBytes, Infinity, 'maxInFlightBytes'),
      maxQueuedBytes: positive(o.maxQueuedBytes, 64 * 1024 * 1024, 'maxQueuedBytes'),
      retryForMs: nonNegative(o.retryForMs, 30_000, 'retryForMs'),
      retryBackoffMs: positive(o.retryBackoffMs, 20, 'retryBackoffMs'),
      retryBackoffMaxMs: positive(o.retryBackoffMaxMs, 1_000, 'retryBackoffMaxMs'),
    });
    return new WeirClient(conn, producer);
  }

  /** The broker's `hello` answer (limits, fsync policy) on the current connection. */
  get broker(): HelloResult {
    return { ...this.conn.hello };
  }

  get url(): string {
    return this.conn.url;
  }

  /**
   * Create a topic; resolves (created: false) if it exists with the same partition count. `config`
   * (queue, dead-letter, expiry and transaction settings) applies only when it is created.
   */
  async createTopic(topic: string, options: { partitions: number; config?: TopicConfig }): Promise<CreateTopicResult> {
    const r = await this.conn.request<CreateTopicResult>({ op: 'create_topic', topic, partitions: options?.partitions, config: options?.config });
    return { topic: r.topic, partitions: r.partitions, created: r.created, config: r.config };
  }

  /** Change some settings of a topic (the others keep their value); resolves with all of them. */
  async alterTopic(topic: string, config: TopicConfig): Promise<TopicConfig> {
    const r = await this.conn.request<{ config: TopicConfig }>({ op: 'alter_topic', topic, config });
    return r.config;
  }

  async listTopics(): Promise<TopicInfo[]> {
    const r = await this.conn.request<ListTopicsResult>({ op: 'list_topics' });
    return (Array.isArray(r.topics) ? r.topics : []).map((t) => ({ topic: t.topic, partitions: t.partitions }));
  }

  async describeTopic(topic: string): Promise<DescribeTopicResult> {
    const r = await this.conn.request<DescribeTopicResult>({ op: 'describe_topic', topic });
    return { topic: r.topic, partitions: r.partitions, config: r.config, offsets: Array.isArray(r.offsets) ? r.offsets.map((o) => ({ ...o })) : [] };
  }

  /**
   * Produce messages; resolves with one ack per message, in order, once all of them are durable
   * under the broker's fsync policy. Calls within `lingerMs` share frames. Retryable failures are
   * retried for `retryForMs` (at-least-once: a retried batch may be stored twice).
   */
  produce(topic: string, messages: readonly ProduceMessage[], options?: ProduceOptions): Promise<Ack[]> {
    return this.producer.produce(topic, messages, options);
  }

  /** Read stored messages of one partition from `offset`. */
  async fetch(topic: string, partition: number, offset: number, options: FetchOptions = {}): Promise<FetchResult> {
    const r = await this.conn.request<FetchFrameResult>({
      op: 'fetch',
      topic,
      partition,
      offset,
      maxBytes: options.maxBytes,
      maxRecords: options.maxRecords,
      maxWaitMs: options.maxWaitMs,
    });
    const records = r.records instanceof Uint8Array ? r.records : new Uint8Array(0);
    return { messages: readMessages(topic, partition, records), next: r.next, end: r.end };
  }

  /**
   * Subscribe: `handler` is called for each message, one at a time per partition. Resolves once the
   * broker accepted the subscription (assignments follow).
   */
  subscribe(topic: string, options: QueueSubscribeOptions, handler: QueueMessageHandler): Promise<QueueSubscription>;
  subscribe(topic: string, options: SubscribeOptions, handler: MessageHandler): Promise<Subscription>;
  async subscribe(
    topic: string,
    options: SubscribeOptions | QueueSubscribeOptions,
    handler: MessageHandler | QueueMessageHandler,
  ): Promise<Subscription | QueueSubscription> {
    if (this.closing) throw connectionClosedError('client closed', false);
    if (options && 'mode' in options && options.mode === 'queue') {
      // Work queue (docs/queues.md): competing consumers, per-message ack/nack.
      const q = await QueueSubscription.start(this.conn, topic, options, handler as QueueMessageHandler, (s) => this.queueSubscriptions.delete(s));
      this.queueSubscriptions.add(q);
      return q;
    }
    const sub = await Subscription.start(this.conn, topic, options ?? {}, handler as MessageHandler, (s) => this.subscriptions.delete(s));
    this.subscriptions.add(sub);
    return sub;
  }

  /** Move the dead letters of `topic` (not redriven before) back to it; resolves with how many. */
  async redrive(topic: string): Promise<number> {
    const r = await this.conn.request<DlqRedriveResult>({ op: 'dlq_redrive', topic });
    return r.moved;
  }

  /** Read the dead letters of `topic` (its dead-letter topic), with why and from where. */
  deadLetters(topic: string, options?: { max?: number }): Promise<DeadLetter[]> {
    return readDeadLetters(this.conn, topic, options);
  }

  /** Round trip to the broker, in ms. */
  async ping(): Promise<number> {
    const t0 = Date.now();
    await this.conn.request({ op: 'ping' });
    return Date.now() - t0;
  }

  /** Send every pending produce now and wait for all of them to settle. */
  flush(): Promise<void> {
    return this.producer.flush();
  }

  /** Flush produces, close subscriptions (final commits), close the socket. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.producer.close(connectionClosedError('client closed', false));
        await Promise.all([...this.subscriptions].map((s) => s.close()));
        await Promise.all([...this.queueSubscriptions].map((s) => s.close()));
      } finally {
        this.closedByUs = true;
        await this.conn.close();
      }
    })();
    return this.closing;
  }

  /** Close now: pending produces, requests and subscriptions fail with CONNECTION_CLOSED. */
  destroy(error?: WeirClientError): void {
    const err = error ?? connectionClosedError('client destroyed', false);
    this.closedByUs = true;
    this.closing ??= Promise.resolve();
    this.producer.destroy(err);
    for (const s of [...this.subscriptions]) s.destroy();
    for (const s of [...this.queueSubscriptions]) s.destroy();
    this.conn.destroy(err);
  }

  stats(): ClientStats {
    const hello = this.conn.hello;
    return {
      ...this.producer.stats(),
      reconnects: this.conn.reconnects,
      subscriptions: this.subscriptions.size + this.queueSubscriptions.size,
      limits: { maxFrameBytes: hello.maxFrameBytes, maxMessageBytes: hello.maxMessageBytes, maxInFlightBytes: this.producer.maxInFlightBytes },
    };
  }
}

/** Connect to a broker: `connect(url)`, `connect(url, options)` or `connect({ url, ...options })`. */
export function connect(target?: string | ClientOptions, options?: ClientOptions): Promise<WeirClient> {
  return WeirClient.connect(target, options);
}

function positive(v: number | undefined, fallback: number, name: string): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !(v > 0)) throw new WeirClientError(ErrorCode.BAD_REQUEST, `option ${name} must be a positive number`, { retryable: false, details: { field: name } });
  return v;
}

function nonNegative(v: number | undefined, fallback: number, name: string): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !(v >= 0)) throw new WeirClientError(ErrorCode.BAD_REQUEST, `option ${name} must be a number ≥ 0`, { retryable: false, details: { field: name } });
  return v;
}
