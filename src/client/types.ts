/**
 * Public types of the client SDK. Wire shapes come from src/protocol/frames.ts; this file only adds
 * the SDK's own options and results.
 */
import type { Message } from '../protocol/batch-reader.js';
import type { StartPosition } from '../protocol/frames.js';
import type { WeirClientError } from './errors.js';

export type {
  StartPosition,
  TopicInfo,
  TopicConfig,
  CreateTopicResult,
  ListTopicsResult,
  DescribeTopicResult,
  HelloResult,
} from '../protocol/frames.js';
export type { Message } from '../protocol/batch-reader.js';

/** Strings are encoded as UTF-8. */
export type Bytes = string | Uint8Array;

export interface ProduceMessage {
  /** Messages with a key go to murmur2(key) mod partitions; without one, to a round-robin partition. */
  key?: Bytes | null;
  value: Bytes;
  headers?: Record<string, Bytes>;
  // time (docs/time.md): sent as weir- headers; a message with deliverAt or delay goes in its own
  // produce requests and is acknowledged with its place in the schedule log (Ack.scheduled).
  /** Deliver at this time (ms since the epoch, or a Date); invisible to consumers until then. */
  deliverAt?: number | Date;
  /** Deliver this many ms after the broker received it. */
  delay?: number;
  /** Never delivered more than this many ms after it was appended to the topic. */
  ttl?: number;
  /** Never delivered at or after this time (ms since the epoch, or a Date). */
  expiresAt?: number | Date;
}

/** Where message i of a produce() call was stored. */
export interface Ack {
  partition: number;
  offset: number;
  /** time: the message was delayed; `offset` is its place in the schedule log, not in the topic. */
  scheduled?: true;
  /**
   * Idempotent producer: a resend of a message the partition had stored long before (older than
   * the batches it remembers, DUPLICATE_SEQUENCE): it IS stored, once, but its offset is unknown
   * (`offset` is -1). Do not send it again.
   */
  duplicate?: true;
}

export interface ProduceOptions {
  /** Send every message of this call to this partition. */
  partition?: number;
}

export interface FetchOptions {
  maxBytes?: number;
  maxRecords?: number;
  maxWaitMs?: number;
}

export interface FetchResult {
  messages: Message[];
  /** Offset after the last message returned (fetch from here next). */
  next: number;
  /** Log end offset of the partition. */
  end: number;
}

export type MessageHandler = (message: Message) => void | Promise<void>;

export interface SubscribeOptions {
  /** Consumer group: partitions are shared among the group's members and offsets are committed. */
  group?: string;
  /** Where to start when there is no committed offset. Default 'latest' (the broker's default). */
  from?: StartPosition;
  /** Credit window per partition: messages the broker may send ahead of processing. Default 1000, at most 1,000,000 (MAX_CREDITS). */
  credits?: number;
  /** Groups: how often processed offsets are committed. Default 100 ms. */
  commitIntervalMs?: number;
  /** Called for handler failures and subscription-level broker errors. */
  onError?: (error: WeirClientError) => void;
  /**
   * What to do when a partition's messages are lost to damage on the broker's disk (a DATA_LOSS
   * error naming the offsets, details {topic, partition, from, to}) or a record fails the client's
   * CRC check (CORRUPT_RECORD): either way the error is reported (onError, the 'error' event) and
   * then `skip` (the default) goes on after the lost offsets, committing past them in a group;
   * `stop` stops delivering that partition for this subscription, as a failing handler does, and
   * commits nothing past the loss.
   */
  onDataLoss?: 'skip' | 'stop';
}

/** Options of `client.request`. */
export interface RequestOptions {
  /** How long to wait for the reply (including sending the request). Default 30 000 ms. */
  timeout?: number;
  /** Send the request to this partition. */
  partition?: number;
}

/** What a responder's handler returns: the reply's value, or a whole message. */
export type ReplyValue = Bytes | { value: Bytes; key?: Bytes | null; headers?: Record<string, Bytes> };
/** A responder's handler (`client.respond`): the request in, the reply out (a throw answers with RESPONDER_ERROR). */
export type RequestHandler = (request: Message) => ReplyValue | Promise<ReplyValue>;

/** Options of `client.respond`. */
export interface RespondOptions extends SubscribeOptions {
  /** Responders normally share the requests as a consumer group. */
  group?: string;
}

/**
 * The constructor the SDK needs: the browser's `WebSocket`, `ws`'s, or a test double. Only the
 * WHATWG subset below is used (`onopen`/`onmessage`/`onclose`/`onerror`, `send`, `close`).
 */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  readonly bufferedAmount?: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code?: number; reason?: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface ClientOptions {
  /** Default ws://127.0.0.1:7070 */
  url?: string;
  /**
   * Authenticates in `hello` (brokers that require it): a JSON Web Token, an API key (`weir_…`) or
   * the broker's shared token. A function is asked again at each (re)connect: a browser passes one
   * that fetches a fresh short-lived token from its backend.
   */
  token?: string | (() => string | Promise<string>);
  /** Authenticates as a user of the broker's users file, with `password`. */
  user?: string;
  password?: string;
  /** Sent in `hello.client`. */
  clientName?: string;
  /** WebSocket implementation. Default: `ws` in Node, the global `WebSocket` elsewhere. */
  WebSocket?: WebSocketConstructor;
  /**
   * `wss://` in Node (the `ws` package): whom to trust and who to be. Browsers use their own
   * certificate store and ignore this.
   */
  tls?: ClientTlsOptions;

  /**
   * Check every record received against its CRC32C before handing it to the application (Kafka's
   * `check.crcs`). A record that fails is never delivered (CORRUPT_RECORD). Default true.
   */
  checkCrcs?: boolean;

  /** Per-request answer timeout (error code TIMEOUT). Default 30 000. */
  requestTimeoutMs?: number;
  /** Time to open the socket and get the `hello` answer. Default 10 000. */
  connectTimeoutMs?: number;

  /** Reconnect after an unexpected close. Default true. */
  reconnect?: boolean;
  /** First reconnect delay, doubled per attempt up to reconnectMaxDelayMs. Default 50. */
  reconnectDelayMs?: number;
  /** Default 2 000. */
  reconnectMaxDelayMs?: number;
  /** Give up (and close the client with CONNECTION_CLOSED) after this long without a connection. Default 300 000. */
  reconnectForMs?: number;
  /** After this long without a frame from the broker, ping; no answer within it → reconnect. 0 = off. Default 30 000. */
  keepAliveMs?: number;

  /** How long produce() calls are coalesced into one frame. 0 = until the current tick's microtasks ran. Default 1. */
  lingerMs?: number;
  /** Target record bytes per produce frame. Default 256 KiB. */
  batchBytes?: number;
  /** Messages per produce frame. Default 10 000. */
  batchMessages?: number;
  /** Unanswered produce frames. Default 32. Use 1 to keep per-key order under retries. */
  maxInFlightRequests?: number;
  /** Lower the broker's per-connection in-flight budget (hello.maxInFlightBytes); never raises it. */
  maxInFlightBytes?: number;
  /** Record bytes accepted but not yet sent; beyond it produce() waits. Default 64 MiB. */
  maxQueuedBytes?: number;
  /** Retry retryable produce errors for this long (from the first attempt). Default 30 000. */
  retryForMs?: number;
  /** Default 20. */
  retryBackoffMs?: number;
  /** Default 1 000. */
  retryBackoffMaxMs?: number;
  /**
   * Exactly-once append (docs/exactly-once.md): the client gets a producer id, partitions messages
   * itself and numbers each partition's batches, so a batch resent after a failure or reconnect is
   * stored once and acknowledged with its original offsets. Default false.
   */
  idempotent?: boolean;
}

/** TLS options of a Node client (passed to `ws`, then `tls.connect`). */
export interface ClientTlsOptions {
  /** PEM certificate(s) of the CA(s) to trust instead of Node's default list (a broker's private CA). */
  ca?: string | Uint8Array | ReadonlyArray<string | Uint8Array>;
  /** Refuse a broker whose certificate is not trusted or not for the URL's host. Default true: turn it off only for a test. */
  rejectUnauthorized?: boolean;
  /** PEM client certificate (chain) and its key, for a broker started with `--tls-ca`. */
  cert?: string | Uint8Array;
  key?: string | Uint8Array;
}

export interface ClientStats {
  /** Record bytes of produce frames sent (or waiting to be re-sent) and not finally answered. */
  inFlightBytes: number;
  inFlightRequests: number;
  /** Record bytes accepted by produce() but not yet sent (open and sealed batches). */
  queuedBytes: number;
  queuedMessages: number;
  /** produce() calls waiting for queue space (back-pressure). */
  waitingProducers: number;
  produceFrames: number;
  retries: number;
  reconnects: number;
  subscriptions: number;
  /** The limits in force (from hello and options). */
  limits: { maxFrameBytes: number; maxMessageBytes: number; maxInFlightBytes: number };
}
