/**
 * Typed errors of the client SDK. Every error is a `WeirError` (src/common/errors.ts: stable `code`,
 * `retryable`, `details`, `cause`, the `Symbol.for('weir.error')` brand) carrying the broker's code
 * (docs/protocol.md, src/protocol/codes.ts) or one the SDK detects itself (`TIMEOUT`,
 * `CONNECTION_CLOSED`, `RESPONDER_ERROR`, `HANDLER_ERROR`, `BAD_RESPONSE`, `CORRUPT_RECORD`).
 */
import { WeirError } from '../common/errors.js';
import { ErrorCode, RETRYABLE, WeirCode } from '../protocol/codes.js';
import type { ErrorFrame } from '../protocol/frames.js';

/** Codes only the SDK produces (never on the wire; registered in src/protocol/error-codes.ts). */
export const ClientErrorCode = {
  TIMEOUT: ErrorCode.TIMEOUT,
  CONNECTION_CLOSED: ErrorCode.CONNECTION_CLOSED,
  /** request(): the responder's handler failed (its message came back in weir-reply-error). */
  RESPONDER_ERROR: ErrorCode.RESPONDER_ERROR,
  /** A subscription handler threw; `cause` is what it threw. */
  HANDLER_ERROR: WeirCode.HANDLER_ERROR,
  /** The broker answered with something that does not follow the protocol. */
  BAD_RESPONSE: WeirCode.BAD_RESPONSE,
  /**
   * A record received failed the SDK's CRC check (`checkCrcs`): it was not handed to the
   * application. `details`: topic, partition, offset.
   */
  CORRUPT_RECORD: WeirCode.CORRUPT_RECORD,
} as const;

export interface WeirClientErrorOptions {
  /** Default: whether `code` is in RETRYABLE (codes.ts). */
  retryable?: boolean;
  details?: Record<string, unknown>;
  cause?: unknown;
}

export class WeirClientError extends WeirError {
  constructor(code: string, message: string, options: WeirClientErrorOptions = {}) {
    super(code, message, { ...options, retryable: options.retryable ?? RETRYABLE.has(code) });
  }

  toJSON(): { code: string; message: string; retryable: boolean; details: Record<string, unknown> | undefined } {
    return { code: this.code, message: this.message, retryable: this.retryable, details: this.details };
  }
}

/** Rehydrate a broker `error` frame. The frame's own `retryable` wins over the local table. */
export function errorFromFrame(frame: ErrorFrame): WeirClientError {
  const opts: WeirClientErrorOptions = {
    retryable: typeof frame.retryable === 'boolean' ? frame.retryable : RETRYABLE.has(frame.code),
  };
  if (frame.details !== undefined) opts.details = frame.details;
  return new WeirClientError(String(frame.code), typeof frame.message === 'string' ? frame.message : String(frame.code), opts);
}

export function timeoutError(what: string, timeoutMs: number): WeirClientError {
  return new WeirClientError(ErrorCode.TIMEOUT, `${what} got no answer within ${timeoutMs} ms`, { details: { timeoutMs } });
}

/**
 * `retryable` is true when the connection dropped under a live client (the SDK reconnects), false
 * when the client itself was closed or destroyed (nothing will ever answer).
 */
export function connectionClosedError(message: string, retryable = true, cause?: unknown): WeirClientError {
  return new WeirClientError(ErrorCode.CONNECTION_CLOSED, message, { retryable, cause });
}

export function handlerError(topic: string, partition: number, offset: number, cause: unknown): WeirClientError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new WeirClientError(
    ClientErrorCode.HANDLER_ERROR,
    `handler failed on ${topic}/${partition}@${offset}: ${why}; delivery of partition ${partition} stopped for this subscription`,
    { retryable: false, details: { topic, partition, offset }, cause },
  );
}

/** A call's argument is invalid (checked before anything is sent): BAD_REQUEST with `details.field`. */
export function badRequest(message: string, field: string): WeirClientError {
  return new WeirClientError(ErrorCode.BAD_REQUEST, message, { retryable: false, details: { field } });
}

export function badResponse(message: string, details?: Record<string, unknown>): WeirClientError {
  return new WeirClientError(ClientErrorCode.BAD_RESPONSE, message, details ? { retryable: false, details } : { retryable: false });
}

/** Brand check that works across realms and module copies (any WeirError, not only the client's). */
export function isWeirError(value: unknown): value is WeirError {
  return WeirError.isWeirError(value);
}

/** Records of `topic`/`partition` that failed the SDK's CRC check (`checkCrcs`); not handed to the application. */
export function corruptRecordError(topic: string, partition: number, offset: number, framed: boolean, what: string): WeirClientError {
  const where = offset >= 0 ? `${topic}/${partition}@${offset}` : `${topic}/${partition}`;
  return new WeirClientError(
    ClientErrorCode.CORRUPT_RECORD,
    `a record of ${where} failed the client's CRC check${framed ? '' : ' (its length is broken: the rest of that delivery was dropped too)'}; ${what}`,
    { retryable: false, details: { topic, partition, offset } },
  );
}
