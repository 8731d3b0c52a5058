/**
 * The registry of every error code weir can produce: one entry per code, with where it is seen
 * (`kind`), whether the same request can succeed later (`retryable`) and a one-line meaning.
 * docs/errors.md is generated from it (`npm run docs:errors`); test/protocol/error-registry.test.ts
 * fails when the document is stale or when src/ emits a string code that is not registered here.
 *
 * `ErrorCode`, `RETRYABLE`, `CLIENT_ONLY_CODES` and `RING_ERROR_CODES` (src/protocol/codes.ts) are
 * derived from it, as are the modules' code sets (LogErrorCode, RingErrorCode, SupervisorErrorCode,
 * ClientErrorCode), which name `WeirCode.X` instead of repeating the strings.
 *
 * Stable: clients and operators switch on these strings. Never rename a code or change a `ring`
 * number; add new codes at the end of their group. A leaf module (no imports), so any module may
 * use it without an import cycle.
 */

/**
 * - `wire`: the broker sends it to clients (an `error` frame, or a WebSocket close reason);
 * - `client`: the SDK raises it itself, the broker never sends it;
 * - `start-up`: `weir start` / `Broker.start` fails with it (never sent to clients);
 * - `internal`: a module's own code, mapped to a wire code (or INTERNAL) before it reaches a client.
 */
export type ErrorKind = 'wire' | 'client' | 'start-up' | 'internal';

export interface ErrorCodeInfo {
  readonly kind: ErrorKind;
  /**
   * The default `retryable` of an error with this code. An instance may say otherwise where the
   * code's docs say so (CONNECTION_CLOSED after the client itself was closed is not retryable).
   */
  readonly retryable: boolean;
  /** One line: what happened, and what the caller can do. */
  readonly meaning: string;
  /**
   * A `client` code that is also in `ErrorCode` (the protocol's enumeration the SDK exports, and
   * docs/protocol.md names). Every `wire` code is in `ErrorCode`; later SDK codes are not.
   */
  readonly inErrorCode?: true;
  /** Its number in the partition rings (RING_ERROR_CODES[ring]); the numbers are a wire format. */
  readonly ring?: number;
}

/**
 * Wire codes first, in the order of `ErrorCode` (its key order is derived from this one), then the
 * SDK's, the start-up and the internal codes.
 */
const REGISTRY = {
  // ---- wire: the broker sends these (docs/protocol.md's error tables give per-op context) ----
  BAD_FRAME: { kind: 'wire', retryable: false, meaning: 'the frame is not CBOR, not a map, or has no string `op`' },
  UNKNOWN_OP: { kind: 'wire', retryable: false, meaning: '`op` is not an operation this broker knows' },
  BAD_REQUEST: {
    kind: 'wire',
    retryable: false,
    meaning: 'a field is missing, of the wrong type or out of range (`details.field`); the SDK also raises it for an invalid argument before sending anything',
  },
  UNSUPPORTED_VERSION: { kind: 'wire', retryable: false, meaning: '`hello.version` is not a protocol version this broker speaks' },
  UNAUTHORIZED: { kind: 'wire', retryable: false, meaning: 'bad or missing credentials (token, password or API key) when the broker requires them' },
  BAD_BATCH: { kind: 'wire', retryable: false, meaning: "the record batch's framing is inconsistent (`details.defect`); nothing of it was appended" },
  MESSAGE_TOO_LARGE: { kind: 'wire', retryable: false, meaning: 'a record exceeds `maxMessageBytes`', ring: 5 },
  FRAME_TOO_LARGE: { kind: 'wire', retryable: false, meaning: 'the WebSocket close reason (code 1009) for a frame over `maxFrameBytes`' },
  INVALID_TOPIC_NAME: { kind: 'wire', retryable: false, meaning: 'the topic name breaks the naming rule (docs/protocol.md)' },
  INVALID_PARTITIONS: { kind: 'wire', retryable: false, meaning: 'the partition count is not an integer in 1–1024' },
  TOPIC_NOT_FOUND: { kind: 'wire', retryable: false, meaning: 'no topic of that name' },
  TOPIC_EXISTS: { kind: 'wire', retryable: false, meaning: 'the topic exists with another partition count' },
  PARTITION_NOT_FOUND: { kind: 'wire', retryable: false, meaning: 'the topic has no partition of that number' },
  OFFSET_OUT_OF_RANGE: {
    kind: 'wire',
    retryable: false,
    meaning: 'the offset is below the log start or past its end (`details.start`, `details.end`)',
    ring: 3,
  },
  UNKNOWN_SUBSCRIPTION: { kind: 'wire', retryable: false, meaning: 'no subscription of that `sub` on this connection' },
  NOT_ASSIGNED: { kind: 'wire', retryable: false, meaning: 'a commit for a partition this group member no longer owns (rebalanced away)' },
  PARTITION_UNAVAILABLE: { kind: 'wire', retryable: true, meaning: "the partition's actor crashed, is restarting or was given up on; retry", ring: 6 },
  THROTTLED: {
    kind: 'wire',
    retryable: true,
    meaning: "over the connection's in-flight produce budget, or a fetch over its buffered-bytes bound; retry after acks arrive",
  },
  STORAGE_FULL: { kind: 'wire', retryable: true, meaning: 'the disk is full (ENOSPC, EDQUOT); nothing of the request was kept; retry once space is freed', ring: 1 },
  STORAGE_ERROR: {
    kind: 'wire',
    retryable: false,
    meaning: 'another I/O error on the log or the broker\'s files (EPERM, EIO…; `details.errno`, `details.path`)',
    ring: 2,
  },
  SHUTTING_DOWN: { kind: 'wire', retryable: true, meaning: 'the broker is stopping; retry against it once it is back', ring: 4 },
  INTERNAL: { kind: 'wire', retryable: false, meaning: 'a bug (or a module code nothing mapped to a wire code): please report it', ring: 0 },
  TIMEOUT: { kind: 'client', retryable: true, inErrorCode: true, meaning: 'the SDK got no answer in time' },
  CONNECTION_CLOSED: {
    kind: 'client',
    retryable: true,
    inErrorCode: true,
    meaning: 'the connection dropped before the answer (retryable: the SDK reconnects), or the client was closed (not retryable)',
  },
  RESPONDER_ERROR: {
    kind: 'client',
    retryable: false,
    inErrorCode: true,
    meaning: "request(): the reply carries `weir-reply-error`, the responder's handler failed (the header holds its message)",
  },
  NO_REPLY_INBOX: { kind: 'wire', retryable: false, meaning: '`reply` to an inbox no connection holds (the requester left or timed out)' },
  OUT_OF_ORDER_SEQUENCE: {
    kind: 'wire',
    retryable: false,
    meaning: 'idempotent produce: a sequence gap, count mismatch or unknown producer; nothing was written',
    ring: 7,
  },
  DUPLICATE_SEQUENCE: {
    kind: 'wire',
    retryable: false,
    meaning: 'idempotent produce: the batch is older than the remembered window, already written (offsets unknown); nothing was written now',
    ring: 8,
  },
  TXN_NOT_FOUND: { kind: 'wire', retryable: false, meaning: 'no such transaction (never begun, or finished long ago and forgotten; `details.txn`)' },
  TXN_ALREADY_DECIDED: {
    kind: 'wire',
    retryable: false,
    meaning: 'produce, commit or rollback on a transaction already decided the other way (`details.state`)',
  },
  TXN_TOO_LARGE: { kind: 'wire', retryable: false, meaning: "the transaction would exceed the broker's per-transaction message or byte limit" },
  DATA_LOSS: {
    kind: 'wire',
    retryable: false,
    meaning: 'offsets [`details.from`, `details.to`) failed their checks on disk and will never be delivered; read on from `details.to`',
    ring: 9,
  },
  PRODUCER_FENCED: {
    kind: 'wire',
    retryable: false,
    meaning: 'the producer id was reclaimed (newer epoch): this connection or epoch may no longer use it; nothing was written',
  },
  PRODUCER_ID_NOT_OWNED: {
    kind: 'wire',
    retryable: false,
    meaning: 'this connection does not hold the producer id (never obtained, wrong secret, or forgotten); nothing was written',
  },
  SLOW_CONSUMER: {
    kind: 'wire',
    retryable: false,
    meaning: 'the WebSocket close reason (code 1008) of a connection over its buffered-bytes bound for `slowConsumerCloseMs`',
  },
  RESOURCE_LIMIT: {
    kind: 'wire',
    retryable: true,
    meaning:
      'the broker is near an OS limit (open files): a new topic is refused, a produce or fetch not served; or the connection is at its limit of subscriptions or of unanswered requests (`details.limit`, `details.max`); retry once freed',
    ring: 10,
  },
  FORBIDDEN: {
    kind: 'wire',
    retryable: false,
    meaning: 'the principal may not do this operation on this resource (`details.action`, `details.resource`); nothing was done',
  },
  TOKEN_EXPIRED: {
    kind: 'wire',
    retryable: false,
    meaning: "the credential's time is up: a token past its `exp` is refused, and a connection is closed (code 1008) when its token expires; connect with a fresh one",
  },
  AUTH_RATE_LIMITED: {
    kind: 'wire',
    retryable: true,
    meaning: 'too many failed authentication attempts from this address: refused until `details.retryAfterMs` has passed',
  },
  TOO_MANY_CONNECTIONS: {
    kind: 'wire',
    retryable: true,
    meaning: 'over the connections allowed per principal or per address (`details.scope`, `details.limit`); retry once one closes',
  },
  QUOTA_EXCEEDED: {
    kind: 'wire',
    retryable: false,
    meaning: "the tenant's topic-count or storage quota is used up (`details.tenant`, `details.quota`, `details.limit`); nothing was created or written",
  },

  // ---- client: the SDK raises these, the broker never sends them ----
  HANDLER_ERROR: {
    kind: 'client',
    retryable: false,
    meaning: "a subscription's handler threw (`cause`); delivery of that partition stopped for the subscription",
  },
  BAD_RESPONSE: { kind: 'client', retryable: false, meaning: 'the broker answered with something that does not follow the protocol' },
  CORRUPT_RECORD: {
    kind: 'client',
    retryable: false,
    meaning: "a received record failed the SDK's CRC check (`checkCrcs`) and was not handed to the application",
  },

  // ---- start-up: `weir start` prints `weir: CODE: …` and exits 1; Broker.start rejects ----
  BAD_CONFIG: {
    kind: 'start-up',
    retryable: false,
    meaning:
      'an option has an invalid value (`--fsync`, `--actor-host`, `--page-cache-bytes`, TLS files, `--allowed-origin`…), or a non-loopback `--host` without authentication or `--insecure`',
  },
  LISTEN_FAILED: { kind: 'start-up', retryable: false, meaning: '`host:port` is in use (the listen is exclusive) or not an address of this machine' },
  BAD_DATA_DIR: {
    kind: 'start-up',
    retryable: false,
    meaning: 'the data path is under /proc or /sys, is a file, or cannot be created or written',
  },
  DATA_DIR_LOCKED: { kind: 'start-up', retryable: false, meaning: "another broker holds the data directory's lock file, `.weir.lock` (the message names its PID)" },
  NATIVE_UWS_MISSING: {
    kind: 'start-up',
    retryable: false,
    meaning: "uWebSockets.js has no native binary for this Node version (it fell back to its slow JavaScript server)",
  },

  // ---- internal: module codes, mapped before they reach a client ----
  UNKNOWN: { kind: 'internal', retryable: false, meaning: 'an error rehydrated or converted from something that carried no usable code' },
  LOG_CORRUPT: {
    kind: 'internal',
    retryable: false,
    meaning: 'the partition log: a sealed segment fails validation, or segments are not contiguous (reaches clients as STORAGE_ERROR)',
  },
  LOG_CLOSED: { kind: 'internal', retryable: false, meaning: 'the partition log was closed or destroyed' },
  LOG_BAD_ARGUMENT: { kind: 'internal', retryable: false, meaning: 'the partition log: API misuse (bad options, a range whose records do not add up)' },
  RING_RECORD_TOO_LARGE: { kind: 'internal', retryable: false, meaning: 'a ring payload larger than the ring can ever hold' },
  RING_CLOSED: { kind: 'internal', retryable: false, meaning: 'the ring was closed by either side' },
  RING_TIMEOUT: { kind: 'internal', retryable: true, meaning: 'a bounded ring wait or retry budget ran out (the other side may just be slow)' },
  RING_BAD_STATE: { kind: 'internal', retryable: false, meaning: 'ring API misuse (begin twice, append past the declared length, two waits at once)' },
  RING_BAD_LAYOUT: { kind: 'internal', retryable: false, meaning: 'the SharedArrayBuffer is not a ring made by `createRing` (size, magic or capacity)' },
  RING_CORRUPT: { kind: 'internal', retryable: false, meaning: 'a ring length prefix that cannot be right: the shared memory was corrupted or misused' },
  SUPERVISOR_ESCALATED: { kind: 'internal', retryable: false, meaning: "a supervisor's restart intensity was exceeded: it stops its children and exits" },
  SUPERVISOR_BAD_CONFIG: { kind: 'internal', retryable: false, meaning: 'invalid supervisor flags or child spec' },
  SUPERVISOR_NOT_RUNNING: { kind: 'internal', retryable: false, meaning: 'an operation on a supervisor that is not running' },
  SUPERVISOR_KILLED: { kind: 'internal', retryable: false, meaning: 'the exit reason of a supervisor after `destroy()`' },
  CHILD_START_FAILED: {
    kind: 'internal',
    retryable: true,
    meaning: "a child's start rejected, or its worker died before ready (clients see the cause's code, else PARTITION_UNAVAILABLE)",
  },
  CHILD_START_TIMEOUT: { kind: 'internal', retryable: true, meaning: 'a worker child did not post `ready` in time' },
  CHILD_CRASHED: { kind: 'internal', retryable: false, meaning: 'a worker child threw an uncaught exception' },
  CHILD_OUT_OF_MEMORY: { kind: 'internal', retryable: false, meaning: 'a worker child hit its `resourceLimits` (ERR_WORKER_OUT_OF_MEMORY)' },
  CHILD_EXITED: { kind: 'internal', retryable: false, meaning: 'a worker child exited without being asked' },
  CHILD_KILLED: { kind: 'internal', retryable: false, meaning: 'the exit reason of a worker child after `destroy()`' },
  CHILD_NOT_FOUND: { kind: 'internal', retryable: false, meaning: 'a supervisor has no child of that id' },
  CHILD_ALREADY_EXISTS: { kind: 'internal', retryable: false, meaning: '`startChild` with an id already in use' },
  CHILD_RUNNING: { kind: 'internal', retryable: false, meaning: '`deleteChild`/`restartChild` on a child that is not stopped' },
} as const satisfies Record<string, ErrorCodeInfo>;

type Registry = typeof REGISTRY;
export type WeirCode = keyof Registry;

/** Every code, as `WeirCode.X === 'X'`: what code names instead of a string literal. */
export const WeirCode: { readonly [K in WeirCode]: K } = Object.freeze(
  Object.fromEntries(Object.keys(REGISTRY).map((c) => [c, c])) as { [K in WeirCode]: K },
);

/** The registry, read-only, in its order. */
export const ERROR_CODES: Readonly<Record<WeirCode, ErrorCodeInfo>> = REGISTRY;

/** The codes in `ErrorCode`: every wire code, and the client codes marked `inErrorCode`. */
export type ProtocolCode = {
  [K in WeirCode]: Registry[K] extends { readonly kind: 'wire' } | { readonly inErrorCode: true } ? K : never;
}[WeirCode];

export function isProtocolCode(info: ErrorCodeInfo): boolean {
  return info.kind === 'wire' || info.inErrorCode === true;
}

export function isWeirCode(code: string): code is WeirCode {
  return Object.prototype.hasOwnProperty.call(REGISTRY, code);
}

/** The registered codes of a kind, in registry order. */
export function codesOfKind(kind: ErrorKind): WeirCode[] {
  return (Object.keys(REGISTRY) as WeirCode[]).filter((c) => REGISTRY[c].kind === kind);
}
