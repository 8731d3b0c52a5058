/**
 * Weir wire protocol v1: every WebSocket message is one binary frame holding one CBOR map.
 * This file is the single source of the protocol's types (docs/protocol.md is its prose form).
 * Control fields travel as CBOR; messages travel as one record batch (record.ts) in a byte string.
 */
export const PROTOCOL_VERSION = 1;

/** Most credit one subscription partition holds at the broker; `subscribe`/`credit` beyond it are clamped. */
export const MAX_CREDITS = 1_000_000;

/** Where a subscription starts when no committed offset applies. */
export type StartPosition =
  | 'earliest'
  | 'latest'
  | { offset: number } // same offset for every partition
  | { offsets: Record<string, number> } // per partition; others start at 'latest'
  | { timestamp: number }; // first message at or after this time (ms since epoch)

/** Per-topic settings of the messaging features; every field optional (defaults in docs/protocol.md). */
export interface TopicConfig {
  /** Queue mode: a delivered message not acked within this is redelivered. Default 30 000. */
  visibilityTimeoutMs?: number;
  /** Queue mode: deliveries before a message is dead-lettered. Default 5. */
  maxDeliveries?: number;
  /** Queue mode: redelivery delay after `nack` with retry. Default {100, 30 000, 2, 0.2}. */
  retryBackoff?: { initialMs?: number; maxMs?: number; multiplier?: number; jitter?: number };
  /** Queue mode: a key's next message waits until the previous one is acked. Default false. */
  orderedKeys?: boolean;
  /** Where rejected, exhausted (and, with deadLetterExpired, expired) messages go. Default `<topic>.dlq`; null: drop. */
  deadLetterTopic?: string | null;
  /** Messages older than this are never delivered. Default null (no expiry). */
  ttlMs?: number | null;
  /** Expired messages go to the dead-letter topic instead of being dropped. Default false. */
  deadLetterExpired?: boolean;
  /** Transactions: ask the producer's checker about a half message open this long. Default 5 000. */
  transactionCheckMs?: number;
  /** Transactions: roll back a half message still undecided after this long. Default 60 000. */
  transactionTimeoutMs?: number;
}

// ---------------------------------------------------------------- client → broker requests
/** Credentials when the broker requires authentication: `token` (a JWT, an API key, the shared token), or `user` and `password`. */
export interface HelloRequest { op: 'hello'; id: number; version: number; client?: string; token?: string; user?: string; password?: string }
export interface CreateTopicRequest { op: 'create_topic'; id: number; topic: string; partitions: number; config?: TopicConfig }
/** Change settings of an existing topic (fields not given keep their value). */
export interface AlterTopicRequest { op: 'alter_topic'; id: number; topic: string; config: TopicConfig }
export interface ListTopicsRequest { op: 'list_topics'; id: number }
export interface DescribeTopicRequest { op: 'describe_topic'; id: number; topic: string }
/** `records` is a record batch. `partition` forces one partition; otherwise keyed messages go to
 *  murmur2(key) mod partitions and unkeyed ones to a partition picked round-robin per request. */
export interface ProduceRequest {
  op: 'produce'; id: number; topic: string; records: Uint8Array; partition?: number;
  /** Exactly-once append (see the section below): both with `partition`, or neither. */
  producerId?: number; sequence?: number;
  /** Exactly-once append: the epoch init_producer answered; a batch at an older one is fenced. */
  epoch?: number;
}
export interface FetchRequest {
  op: 'fetch'; id: number; topic: string; partition: number; offset: number;
  maxBytes?: number; maxRecords?: number; maxWaitMs?: number;
}
export interface SubscribeRequest {
  op: 'subscribe'; id: number; topic: string; group?: string; from?: StartPosition;
  /** Initial credit (messages) granted per assigned partition. */
  credits: number;
}
export interface CreditRequest { op: 'credit'; sub: number; partition: number; credits: number }
export interface CommitRequest { op: 'commit'; id: number; sub: number; offsets: Array<[partition: number, nextOffset: number]> }
export interface RevokedRequest { op: 'revoked'; sub: number; generation: number }
export interface UnsubscribeRequest { op: 'unsubscribe'; id: number; sub: number }
export interface PingRequest { op: 'ping'; id: number }

export type Request =
  | HelloRequest | CreateTopicRequest | AlterTopicRequest | ListTopicsRequest | DescribeTopicRequest | ProduceRequest
  | FetchRequest | SubscribeRequest | CreditRequest | CommitRequest | RevokedRequest
  | UnsubscribeRequest | PingRequest
  | RoutingRequest
  | InitProducerRequest
  | TxnBeginRequest | TxnProduceRequest | TxnCommitRequest | TxnRollbackRequest | TxnCheckerRequest | TxnListRequest
  | QueueRequest;
export type RequestOp = Request['op'];

// ---------------------------------------------------------------- broker → client
export interface HelloResult { version: number; broker: string; maxFrameBytes: number; maxMessageBytes: number; maxInFlightBytes: number; fsync: string }
export interface TopicInfo { topic: string; partitions: number }
export interface TopicDescription extends TopicInfo { config: TopicConfig }
export interface CreateTopicResult extends TopicDescription { created: boolean }
export interface ListTopicsResult { topics: TopicInfo[] }
export interface DescribeTopicResult extends TopicDescription {
  /** `host`: where the partition's actor runs now, `gateway` (the gateway's thread) or `threads` (a worker thread). */
  offsets: Array<{ partition: number; start: number; end: number; host: 'gateway' | 'threads' }>;
}
/**
 * `parts[j] = [partition, baseOffset, count]` for each partition the batch touched.
 * `route`, present when more than one partition was touched, is a byte string of u16
 * little-endian partition numbers, one per message in request order; message i's offset is
 * baseOffset(route[i]) + (number of earlier messages with the same partition).
 */
export interface ProduceResult { parts: Array<[partition: number, baseOffset: number, count: number]>; route?: Uint8Array }
export interface FetchResult { topic: string; partition: number; records: Uint8Array; count: number; next: number; end: number }
export interface SubscribeResult { sub: number }

export interface ResultFrame { op: 'result'; id: number; [field: string]: unknown }
export interface ErrorFrame {
  op: 'error'; id?: number; sub?: number; code: string; message: string; retryable: boolean;
  details?: Record<string, unknown>;
}
/** Push: a batch of stored records for a subscription. Uses one credit per record. */
export interface DeliverFrame {
  op: 'deliver'; sub: number; topic: string; partition: number; records: Uint8Array; count: number; next: number;
  /** Queue subscriptions: u16 LE delivery count per record; absent when every one is a first delivery. */
  deliveries?: Uint8Array;
}
/** Push: partitions this subscription now owns, with the offset delivery starts from. */
export interface AssignFrame { op: 'assign'; sub: number; generation: number; partitions: Array<[partition: number, offset: number]> }
/** Push (groups): stop, commit what was processed, then answer with `revoked`. */
export interface RevokeFrame { op: 'revoke'; sub: number; generation: number }

export type ServerFrame = ResultFrame | ErrorFrame | DeliverFrame | AssignFrame | RevokeFrame | MatchedFrame | ReplyFrame;

// ---------------------------------------------------------------- routing (docs/routing.md)
/**
 * `subscribe` with `pattern` instead of `topic` (exactly one of them): words separated by `.`, `*`
 * one word, `#` zero or more. Answered with `{patternSub}` (the pattern subscription's id), then one `matched` push per matching topic
 * (now and whenever one is created); each names an ordinary subscription (`sub`) of that topic.
 */
export interface PatternSubscribeRequest {
  op: 'subscribe'; id: number; pattern: string; group?: string; from?: StartPosition; credits: number;
  /** Per topic, per partition: where to start instead of `from` (a client resubscribing after a reconnect). */
  resume?: Record<string, Record<string, number>>;
  /** Topics not to cover (their subscription was closed by the client before a reconnect). */
  exclude?: string[];
}
export interface PatternSubscribeResult { patternSub: number }
/** Push: pattern subscription `patternSub` now also covers `topic` through subscription `sub`. */
export interface MatchedFrame { op: 'matched'; patternSub: number; topic: string; sub: number }
/** End a pattern subscription and every subscription it opened. */
export interface UnsubscribePatternRequest { op: 'unsubscribe_pattern'; id: number; patternSub: number }
/** Bind a reply inbox to this connection; `name` re-claims an earlier one (after a reconnect) if free. */
export interface InboxRequest { op: 'inbox'; id: number; name?: string }
export interface InboxResult { inbox: string }
/** Push `records` (a producer record batch, not stored) to the connection that owns inbox `to`. */
/** `topic`: the topic the request came from (needs `respond` on it when the broker requires authentication). */
export interface ReplyRequest { op: 'reply'; id: number; to: string; records: Uint8Array; topic?: string }
/** Push: replies for inbox `inbox` (records in producer form: offsets and timestamps are 0). */
export interface ReplyFrame { op: 'reply'; inbox: string; records: Uint8Array }
/** A pushed frame (already decoded, op 'matched') that has MatchedFrame's fields and types. */
export function isMatchedFrame(f: { readonly [field: string]: unknown }): f is MatchedFrame & { readonly [field: string]: unknown } {
  return f.op === 'matched' && typeof f.patternSub === 'number' && typeof f.topic === 'string' && typeof f.sub === 'number';
}
/** A pushed frame (already decoded, op 'reply') that has ReplyFrame's fields and types. */
export function isReplyFrame(f: { readonly [field: string]: unknown }): f is ReplyFrame & { readonly [field: string]: unknown } {
  return f.op === 'reply' && typeof f.inbox === 'string' && f.records instanceof Uint8Array;
}
/** Where reset_offsets moves a group: every partition to the same rule. */
export type ResetTarget = 'earliest' | 'latest' | { offset: number } | { timestamp: number };
/** Replay: move a (log-mode) group's committed offsets of `topic`; live members restart from them. */
export interface ResetOffsetsRequest { op: 'reset_offsets'; id: number; group: string; topic: string; to: ResetTarget }
export interface ResetOffsetsResult { group: string; topic: string; offsets: Array<[partition: number, offset: number]> }
export type RoutingRequest = PatternSubscribeRequest | UnsubscribePatternRequest | InboxRequest | ReplyRequest | ResetOffsetsRequest;

/**
 * Topic names: 1–249 of [A-Za-z0-9._-], not "." or "..", not starting with "__": that prefix names
 * the broker's internal topics (delayed messages, half messages), created only by the broker.
 * A broker may allow fewer characters (`maxLength`): what its data directory can hold
 * (src/core/topics/names.ts; 247 on the usual file systems).
 */
export const INTERNAL_TOPIC_PREFIX = '__';
export const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;
const TOPIC_CHARS = /^[A-Za-z0-9._-]+$/;
export function topicNameProblem(name: unknown, maxLength = 249): string | null {
  if (typeof name !== 'string') return 'topic name must be a string';
  if (!TOPIC_CHARS.test(name) || name.length > maxLength) return `topic name must be 1-${maxLength} characters of A-Z a-z 0-9 . _ -`;
  if (name === '.' || name === '..') return 'topic name cannot be "." or ".."';
  if (name.startsWith('__')) return 'topic names starting with "__" are reserved';
  return null;
}
export const GROUP_NAME = /^[A-Za-z0-9._-]{1,249}$/;

// ---------------------------------------------------------------- exactly-once append (idempotent producers)
/**
 * Get a producer id (unique for the data directory's life), bound to this connection at epoch 0,
 * and its `secret`. Then `produce` with `producerId`, `epoch`, `partition` and `sequence` = the
 * batch's first message sequence on that partition (0, then + count of each batch): a resent batch
 * is acknowledged with its original offsets, not stored twice. On another connection (after a
 * reconnect or a broker restart) first reclaim the id: `init_producer` with `producerId` and
 * `secret` answers the next `epoch`, and the connection that held it before is fenced.
 * Errors: OUT_OF_ORDER_SEQUENCE (gap or unknown producer), DUPLICATE_SEQUENCE (older than the
 * remembered window), PRODUCER_ID_NOT_OWNED (not this connection's id, or a wrong secret),
 * PRODUCER_FENCED (reclaimed elsewhere, or an older epoch). docs/exactly-once.md.
 */
export interface InitProducerRequest {
  op: 'init_producer'; id: number;
  /** Both or neither: reclaim this id (from an earlier answer) with its secret. */
  producerId?: number; secret?: Uint8Array;
}
export interface InitProducerResult {
  producerId: number;
  /** 0 for a new id; one more at each reclaim. */
  epoch: number;
  /** A new id only (32 bytes): keep it to reclaim the id later; never sent again. */
  secret?: Uint8Array;
}
// ---------------------------------------------------------------- transactions (docs/transactions.md)
/** Open a transaction on `topic` for `producerGroup` (the group whose checkers are asked about it). */
export interface TxnBeginRequest { op: 'txn_begin'; id: number; topic: string; producerGroup: string }
export interface TxnBeginResult { txn: number; topic: string; producerGroup: string; checkMs: number; timeoutMs: number }
/** Half messages: stored, invisible to consumers until commit. `partition` forces one partition. */
export interface TxnProduceRequest { op: 'txn_produce'; id: number; txn: number; records: Uint8Array; partition?: number }
export interface TxnProduceResult { txn: number; count: number; messages: number }
/** `by` is recorded with the decision (`txn list`); default producer. */
export type TxnDecider = 'producer' | 'checker' | 'admin';
export interface TxnCommitRequest { op: 'txn_commit'; id: number; txn: number; by?: TxnDecider }
export interface TxnRollbackRequest { op: 'txn_rollback'; id: number; txn: number; by?: TxnDecider }
export type TxnState = 'open' | 'committing' | 'committed' | 'rolled_back';
export interface TxnDecisionResult { txn: number; state: TxnState }
/** Make this connection a checker of `producerGroup`: it gets `txn_check` pushes. */
/** `stop: true` withdraws the connection as a checker of the group (a closed SDK checker). */
export interface TxnCheckerRequest { op: 'txn_checker'; id: number; producerGroup: string; stop?: boolean }
export interface TxnListRequest { op: 'txn_list'; id: number; topic?: string; all?: boolean }
export interface TxnInfo {
  txn: number; topic: string; producerGroup: string; state: TxnState; messages: number;
  begunAt: number; lastActivityAt: number; decidedAt: number | null; decidedBy: string | null; checks: number;
}
/** At most 10 000, the lowest numbers first; `truncated` when there were more. */
export interface TxnListResult { transactions: TxnInfo[]; truncated: boolean }
/** Push to a checker: decide this transaction with txn_commit or txn_rollback (or leave it). */
export interface TxnCheckFrame { op: 'txn_check'; txn: number; topic: string; producerGroup: string; messages: number; begunAt: number; checks: number }
// ---------------------------------------------------------------- queues (work queues: src/features/queue)
/**
 * Consume `topic` as a work queue shared by `group`: each message goes to one consumer of the group
 * at a time and is acked or nacked one by one. Answer: `sub` (≥ 2^30, distinct from `subscribe`'s).
 * Deliveries are `deliver` frames (with `deliveries`), at most `prefetch` unacked per consumer.
 */
export interface QueueSubscribeRequest {
  op: 'queue_subscribe'; id: number; topic: string; group: string;
  /** Unacknowledged messages this consumer may hold. Default 100, at most 10 000. */
  prefetch?: number;
  /** Where a new group starts (ignored once the group exists). Default 'earliest'. */
  from?: 'earliest' | 'latest';
}
/** `ranges`: flat [from, to) offset pairs of one partition. With `id`, answered with `count` applied. */
export interface AckRequest { op: 'ack'; id?: number; sub: number; partition: number; ranges: number[] }
export interface NackRequest {
  op: 'nack'; id?: number; sub: number; partition: number; ranges: number[];
  /** retry: redeliver after the topic's retryBackoff; fatal: to the dead-letter topic now. */
  action: 'retry' | 'fatal';
  reason?: string;
}
/**
 * Leave the group after settling what was handled: the messages this consumer still holds go to
 * others with their delivery undone (count not raised). A disconnect instead counts the delivery.
 */
export interface QueueUnsubscribeRequest { op: 'queue_unsubscribe'; id: number; sub: number }
/** Move the topic's dead letters (not redriven before) back to it. Answer: `moved`, `deadLetterTopic`. */
export interface DlqRedriveRequest { op: 'dlq_redrive'; id: number; topic: string }
export type QueueRequest = QueueSubscribeRequest | AckRequest | NackRequest | QueueUnsubscribeRequest | DlqRedriveRequest;
export interface DlqRedriveResult { topic: string; deadLetterTopic: string; moved: number }
