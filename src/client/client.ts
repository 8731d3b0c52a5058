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
import { readCheckedMessages, readMessages, type CorruptRecord } from '../protocol/batch-reader.js';
import { ErrorCode } from '../protocol/codes.js';
import type {
  CreateTopicResult,
  DescribeTopicResult,
  DlqRedriveResult,
  FetchResult as FetchFrameResult,
  HelloResult,
  ListTopicsResult,
  ResetOffsetsResult,
  ResetTarget,
  TopicConfig,
  TopicInfo,
} from '../protocol/frames.js';
import { Connection } from './connection.js';
import { Emitter } from './emitter.js';
import { WeirClientError, connectionClosedError, corruptRecordError } from './errors.js';
import { Producer } from './producer.js';
import { IdempotentProducer } from './idempotent-producer.js';
import { Subscription } from './subscription.js';
import { PatternSubscription } from './pattern-subscription.js';
import { Requester, responderHandler } from './request.js';
import type { Message } from '../protocol/batch-reader.js';
import { Transaction, TransactionChecker, decide, listTransactions, type BeginTransactionOptions, type TransactionCheckHandler, type TxnInfo, type TxnState } from './transaction.js';
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
  RequestHandler,
  RequestOptions,
  RespondOptions,
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
  private readonly patterns = new Set<PatternSubscription>();
  private readonly requester: Requester;
  private readonly checkers = new Map<string, TransactionChecker>();
  private readonly queueSubscriptions = new Set<QueueSubscription>();
  private closing: Promise<void> | null = null;
  private closedByUs = false;

  private constructor(
    private readonly conn: Connection,
    private readonly producer: Producer | IdempotentProducer,
  ) {
    super();
    this.requester = new Requester(conn, (topic, messages, options) => this.producer.produce(topic, messages, options));
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
        for (const s of [...this.patterns]) s.destroy();
        this.requester.destroy(err);
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
      user: o.user,
      password: o.password,
      clientName: o.clientName ?? CLIENT_NAME,
      WebSocket: o.WebSocket,
      tls: o.tls,
      requestTimeoutMs: positive(o.requestTimeoutMs, 30_000, 'requestTimeoutMs'),
      connectTimeoutMs: positive(o.connectTimeoutMs, 10_000, 'connectTimeoutMs'),
      reconnect: o.reconnect ?? true,
      reconnectDelayMs: positive(o.reconnectDelayMs, 50, 'reconnectDelayMs'),
      reconnectMaxDelayMs: positive(o.reconnectMaxDelayMs, 2_000, 'reconnectMaxDelayMs'),
      reconnectForMs: nonNegative(o.reconnectForMs, 300_000, 'reconnectForMs'),
      keepAliveMs: nonNegative(o.keepAliveMs, 30_000, 'keepAliveMs'),
      checkCrcs: o.checkCrcs ?? true,
    });
    const producerOptions = {
      lingerMs: nonNegative(o.lingerMs, 1, 'lingerMs'),
      batchBytes: positive(o.batchBytes, 256 * 1024, 'batchBytes'),
      batchMessages: positive(o.batchMessages, 10_000, 'batchMessages'),
      maxInFlightRequests: positive(o.maxInFlightRequests, 32, 'maxInFlightRequests'),
      maxInFlightBytes: positive(o.maxInFlightBytes, Infinity, 'maxInFlightBytes'),
      maxQueuedBytes: positive(o.maxQueuedBytes, 64 * 1024 * 1024, 'maxQueuedBytes'),
      retryForMs: nonNegative(o.retryForMs, 30_000, 'retryForMs'),
      retryBackoffMs: positive(o.retryBackoffMs, 20, 'retryBackoffMs'),
      retryBackoffMaxMs: positive(o.retryBackoffMaxMs, 1_000, 'retryBackoffMaxMs'),
    };
    const producer = o.idempotent === true ? new IdempotentProducer(conn, producerOptions) : new Producer(conn, producerOptions);
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
   * retried for `retryForMs` (at-least-once: a retried batch may be stored twice; with the
   * `idempotent` option, exactly once).
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
    if (!this.conn.checkCrcs) return { messages: readMessages(topic, partition, records), next: r.next, end: r.end };
    const corrupt: CorruptRecord[] = [];
    const messages = readCheckedMessages(topic, partition, records, corrupt);
    if (corrupt.length > 0) throw corruptRecordError(topic, partition, corrupt[0]!.offset, corrupt[0]!.framed, 'nothing of this fetch was returned');
    return { messages, next: r.next, end: r.end };
  }

  /**
   * Subscribe: `handler` is called for each message, one at a time per partition. Resolves once the
   * broker accepted the subscription (assignments follow).
   */
  subscribe(topic: string, options: QueueSubscribeOptions, handler: QueueMessageHandler): Promise<QueueSubscription>;
  subscribe(topic: string, options: SubscribeOptions, handler: MessageHandler): Promise<Subscription>;
  /** Subscribe to every topic matching `pattern` (`*` one word, `#` zero or more; see subscribePattern). */
  subscribe(target: { pattern: string }, options: SubscribeOptions, handler: MessageHandler): Promise<PatternSubscription>;
  async subscribe(
    topic: string | { pattern: string },
    options: SubscribeOptions | QueueSubscribeOptions,
    handler: MessageHandler | QueueMessageHandler,
  ): Promise<Subscription | QueueSubscription | PatternSubscription> {
    if (typeof topic === 'object' && topic !== null) return this.subscribePattern(topic.pattern, options as SubscribeOptions, handler as MessageHandler);
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

  /**
   * Subscribe to every topic whose name matches `pattern`: words separated by `.`, `*` matches one
   * word, `#` zero or more (`orders.*.paid`, `logs.#`). Topics created later are included. With a
   * group, this is one member of the group for each matching topic.
   */
  async subscribePattern(pattern: string, options: SubscribeOptions, handler: MessageHandler): Promise<PatternSubscription> {
    if (this.closing) throw connectionClosedError('client closed', false);
    const sub = await PatternSubscription.start(this.conn, pattern, options ?? {}, handler, (s) => this.patterns.delete(s));
    this.patterns.add(sub);
    return sub;
  }

  /**
   * Send `message` to `topic` as a request (a durable message with reply-to and correlation-id
   * headers) and resolve with the reply: TIMEOUT after `options.timeout` (default 30 s),
   * RESPONDER_ERROR when the responder's handler threw.
   */
  request(topic: string, message: ProduceMessage, options?: RequestOptions): Promise<Message> {
    if (this.closing) return Promise.reject(connectionClosedError('client closed', false));
    return this.requester.request(topic, message, options);
  }

  /**
   * Answer requests sent to `topic` with what `handler` returns (usually with a `group`, so the
   * responders share them). A handler that throws answers with RESPONDER_ERROR.
   */
  respond(topic: string, options: RespondOptions, handler: RequestHandler): Promise<Subscription> {
    return this.subscribe(topic, options, responderHandler(this.conn, handler, options?.onError));
  }

  /**
   * Replay: move the committed offsets of `group` on `topic` (every partition) to `to`: 'earliest',
   * 'latest', {offset} (clamped to each partition's range), {timestamp: ms} or a Date. Live members
   * of the group are rebalanced and restart from the new offsets. Log-mode groups only.
   */
  async resetOffsets(group: string, topic: string, to: ResetTarget | Date): Promise<Array<[partition: number, offset: number]>> {
    const target: ResetTarget = to instanceof Date ? { timestamp: to.getTime() } : to;
    const r = await this.conn.request<ResetOffsetsResult>({ op: 'reset_offsets', group, topic, to: target });
    return Array.isArray(r.offsets) ? r.offsets.map(([p, o]) => [p, o] as [number, number]) : [];
  }

  // ------------------------------------------------------------ transactions (src/client/transaction.ts)

  /** Open a transaction: its messages stay invisible until `commit()` (docs/transactions.md). */
  beginTransaction(topic: string, options: BeginTransactionOptions): Promise<Transaction> {
    return Transaction.begin(this.conn, topic, options);
  }

  /** Answer the broker's questions about undecided transactions of `producerGroup`. */
  transactionChecker(producerGroup: string, handler: TransactionCheckHandler): Promise<TransactionChecker> {
    return TransactionChecker.start(this.conn, producerGroup, handler, this.checkers, (err) => this.emit('error', err));
  }

  /** Open and committing transactions (`all`: also those recently finished). */
  listTransactions(options?: { topic?: string; all?: boolean }): Promise<TxnInfo[]> {
    return listTransactions(this.conn, options);
  }

  /** Commit or roll back any transaction by its number (operators; producers use their Transaction). */
  decideTransaction(txn: number, decision: 'commit' | 'rollback'): Promise<TxnState> {
    return decide(this.conn, txn, decision, 'admin');
  }

  // ------------------------------------------------------------ queues (src/client/queue.ts)

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
        await Promise.all([...this.patterns].map((s) => s.close()));
        this.requester.destroy(connectionClosedError('client closed', false));
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
    for (const s of [...this.patterns]) s.destroy();
    this.requester.destroy(err);
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
