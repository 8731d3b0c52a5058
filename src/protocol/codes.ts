/**
 * Stable error codes: clients switch on these. Never renumber or rename; add new ones at the end.
 * `retryable` codes mean the request was not applied (or may be retried safely at-least-once).
 */
export const ErrorCode = {
  BAD_FRAME: 'BAD_FRAME', // not CBOR, not a map, or no string `op`
  UNKNOWN_OP: 'UNKNOWN_OP',
  BAD_REQUEST: 'BAD_REQUEST', // a field is missing or has the wrong type/range
  UNSUPPORTED_VERSION: 'UNSUPPORTED_VERSION',
  UNAUTHORIZED: 'UNAUTHORIZED',
  BAD_BATCH: 'BAD_BATCH', // record batch framing is inconsistent; nothing of it was appended
  MESSAGE_TOO_LARGE: 'MESSAGE_TOO_LARGE',
  FRAME_TOO_LARGE: 'FRAME_TOO_LARGE', // also the WebSocket close reason with code 1009
  INVALID_TOPIC_NAME: 'INVALID_TOPIC_NAME',
  INVALID_PARTITIONS: 'INVALID_PARTITIONS',
  TOPIC_NOT_FOUND: 'TOPIC_NOT_FOUND',
  TOPIC_EXISTS: 'TOPIC_EXISTS', // exists with a different partition count
  PARTITION_NOT_FOUND: 'PARTITION_NOT_FOUND',
  OFFSET_OUT_OF_RANGE: 'OFFSET_OUT_OF_RANGE',
  UNKNOWN_SUBSCRIPTION: 'UNKNOWN_SUBSCRIPTION',
  NOT_ASSIGNED: 'NOT_ASSIGNED', // commit for a partition this member does not own (rebalanced away)
  PARTITION_UNAVAILABLE: 'PARTITION_UNAVAILABLE', // actor crashed/restarting: retry
  THROTTLED: 'THROTTLED', // connection exceeded its in-flight produce budget: retry after in-flight acks
  STORAGE_FULL: 'STORAGE_FULL', // ENOSPC/EDQUOT on the log: retry after space is freed
  STORAGE_ERROR: 'STORAGE_ERROR',
  SHUTTING_DOWN: 'SHUTTING_DOWN',
  INTERNAL: 'INTERNAL',
  // client-side only (the SDK raises these; the broker never sends them)
  TIMEOUT: 'TIMEOUT',
  CONNECTION_CLOSED: 'CONNECTION_CLOSED',
  // routing (request-reply): the responder's handler failed; the reply carries it in the
  // weir-reply-error header and the SDK's request() rejects with this code
  RESPONDER_ERROR: 'RESPONDER_ERROR',
  // routing (request-reply): `reply` to an inbox whose connection is gone (the requester left or timed out)
  NO_REPLY_INBOX: 'NO_REPLY_INBOX',
  // exactly-once append (idempotent producers, docs/exactly-once.md)
  OUT_OF_ORDER_SEQUENCE: 'OUT_OF_ORDER_SEQUENCE', // a sequence gap (or unknown producer): nothing was written
  DUPLICATE_SEQUENCE: 'DUPLICATE_SEQUENCE', // a batch older than the remembered window: already written, offsets unknown
  // transactions (src/features/transactions)
  TXN_NOT_FOUND: 'TXN_NOT_FOUND', // no such transaction (never begun, or finished long ago and forgotten)
  TXN_ALREADY_DECIDED: 'TXN_ALREADY_DECIDED', // produce/commit/rollback on a transaction already decided the other way (details.state)
  TXN_TOO_LARGE: 'TXN_TOO_LARGE', // the transaction would exceed the broker's per-transaction message or byte limit
  // data safety: offsets [details.from, details.to) of details.topic/details.partition failed their
  // checks on disk (CRC, framing) and will never be delivered; readers continue at details.to
  DATA_LOSS: 'DATA_LOSS',
  // exactly-once append: who may use a producer id (src/features/producers/registry.ts)
  PRODUCER_FENCED: 'PRODUCER_FENCED', // the id was reclaimed (newer epoch): this connection or epoch may no longer use it; nothing was written
  PRODUCER_ID_NOT_OWNED: 'PRODUCER_ID_NOT_OWNED', // this connection does not hold the id (never obtained it, wrong secret, or forgotten); nothing was written
  // flow control: the WebSocket close reason (code 1008) of a connection that stayed over its
  // buffered-bytes bound for slowConsumerCloseMs (it stopped reading what it asked for)
  SLOW_CONSUMER: 'SLOW_CONSUMER',
  RESOURCE_LIMIT: 'RESOURCE_LIMIT', // the broker is near an OS limit (open files): a new topic is refused, a produce is not written; retry once freed
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export const RETRYABLE: ReadonlySet<string> = new Set<string>([
  ErrorCode.PARTITION_UNAVAILABLE,
  ErrorCode.THROTTLED,
  ErrorCode.STORAGE_FULL,
  ErrorCode.SHUTTING_DOWN,
  ErrorCode.TIMEOUT,
  ErrorCode.CONNECTION_CLOSED,
  ErrorCode.RESOURCE_LIMIT,
]);

/**
 * Codes the SDK raises itself and the broker never sends (docs/protocol.md says so of each). Every
 * other code here is one the broker can send, and has a row in docs/protocol.md's error tables.
 */
export const CLIENT_ONLY_CODES: ReadonlySet<string> = new Set<string>([ErrorCode.TIMEOUT, ErrorCode.CONNECTION_CLOSED, ErrorCode.RESPONDER_ERROR]);

/** Numeric form used inside the partition rings (no strings cross the ring). */
export const RING_ERROR_CODES: readonly ErrorCode[] = [
  ErrorCode.INTERNAL,
  ErrorCode.STORAGE_FULL,
  ErrorCode.STORAGE_ERROR,
  ErrorCode.OFFSET_OUT_OF_RANGE,
  ErrorCode.SHUTTING_DOWN,
  ErrorCode.MESSAGE_TOO_LARGE,
  ErrorCode.PARTITION_UNAVAILABLE,
  // exactly-once append
  ErrorCode.OUT_OF_ORDER_SEQUENCE,
  ErrorCode.DUPLICATE_SEQUENCE,
  ErrorCode.DATA_LOSS,
  // a released segment could not be reopened (out of fds): nothing of the produce was written
  ErrorCode.RESOURCE_LIMIT,
];
