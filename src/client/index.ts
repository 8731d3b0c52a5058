/**
 * The `weir` package's main export: the client SDK. Browser-safe (no Node import is reached at
 * module load; `ws` is imported lazily in Node only).
 */
export { connect, WeirClient, DEFAULT_URL, type ClientEvents } from './client.js';
export { Subscription, type SubscriptionEvents, type PartitionStats } from './subscription.js';
export { PatternSubscription, type PatternSubscriptionEvents } from './pattern-subscription.js';
export type { RequestOptions, RespondOptions, RequestHandler, ReplyValue } from './types.js';
export type { ResetTarget } from '../protocol/frames.js';
export { QueueSubscription, QueueMessage, type QueueSubscribeOptions, type QueueMessageHandler, type NackOptions, type DeadLetter } from './queue.js';
export { WeirClientError, ClientErrorCode, isWeirError } from './errors.js';
export { WeirError } from '../common/errors.js';
export { ErrorCode, RETRYABLE } from '../protocol/codes.js';
export { Message } from '../protocol/batch-reader.js';
export { computeAcks } from './acks.js';
export { Transaction, TransactionChecker, type BeginTransactionOptions, type TransactionCheck, type CheckAnswer, type TransactionCheckHandler, type TxnInfo, type TxnState } from './transaction.js';
export type {
  Ack,
  Bytes,
  ClientOptions,
  ClientStats,
  ClientTlsOptions,
  CreateTopicResult,
  DescribeTopicResult,
  FetchOptions,
  FetchResult,
  HelloResult,
  ListTopicsResult,
  MessageHandler,
  ProduceMessage,
  ProduceOptions,
  StartPosition,
  SubscribeOptions,
  TopicInfo,
  TopicConfig,
  WebSocketConstructor,
  WebSocketLike,
} from './types.js';
