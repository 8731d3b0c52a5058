/**
 * Typed errors of the ring module. They subclass the project's `WeirError`, so each carries a stable
 * `code` (what callers match on), a per-class `name`, `retryable`, `details`, an optional `cause`,
 * and the `Symbol.for('weir.error')` brand (`WeirError.isWeirError` works across module copies).
 *
 * Classes do not survive `postMessage` (house-style pitfall 8): send `err.toPlain()` across a thread
 * boundary and rehydrate with `WeirError.fromPlain()`; branch on `code`, not on the class.
 */

import { WeirError } from '../common/errors.js';
import { WeirCode } from '../protocol/error-codes.js';

/** The ring's codes (registered in src/protocol/error-codes.ts, docs/errors.md). */
export const RingErrorCode = {
  /** A payload larger than `maxRecordBytes()`: it can never fit, waiting will not help. */
  RECORD_TOO_LARGE: WeirCode.RING_RECORD_TOO_LARGE,
  /** The ring was closed by either side. */
  CLOSED: WeirCode.RING_CLOSED,
  /** A bounded wait or retry budget ran out. */
  TIMEOUT: WeirCode.RING_TIMEOUT,
  /** API misuse: begin() twice, append() past the declared length, commit() short, two waits at once. */
  BAD_STATE: WeirCode.RING_BAD_STATE,
  /** The SharedArrayBuffer is not a ring created by `createRing` (bad size, magic or capacity). */
  BAD_LAYOUT: WeirCode.RING_BAD_LAYOUT,
  /** A length prefix that cannot be right: the shared memory was corrupted or misused. */
  CORRUPT: WeirCode.RING_CORRUPT,
} as const;
export type RingErrorCode = (typeof RingErrorCode)[keyof typeof RingErrorCode];

/** Base class of the ring's errors; `code` is always one of `RingErrorCode`. */
export class RingError extends WeirError {
  declare readonly code: RingErrorCode;

  constructor(
    code: RingErrorCode,
    message: string,
    options: { retryable?: boolean; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(code, message, options);
  }
}

export class RingRecordTooLargeError extends RingError {
  constructor(payloadLength: number, maxRecordBytes: number) {
    super(
      RingErrorCode.RECORD_TOO_LARGE,
      `record of ${payloadLength} bytes can never fit: the largest payload this ring holds is ${maxRecordBytes} bytes`,
      { details: { payloadLength, maxRecordBytes } },
    );
  }
}

export class RingClosedError extends RingError {
  constructor(message = 'ring is closed') {
    super(RingErrorCode.CLOSED, message);
  }
}

export class RingTimeoutError extends RingError {
  constructor(what: string, timeoutMs: number) {
    // Retryable: the other side may just be slow; a later attempt can succeed.
    super(RingErrorCode.TIMEOUT, `${what} did not complete within ${timeoutMs} ms`, {
      retryable: true,
      details: { timeoutMs },
    });
  }
}

export class RingStateError extends RingError {
  constructor(message: string) {
    super(RingErrorCode.BAD_STATE, message);
  }
}

export class RingLayoutError extends RingError {
  constructor(message: string) {
    super(RingErrorCode.BAD_LAYOUT, message);
  }
}

export class RingCorruptError extends RingError {
  constructor(message: string, details: Record<string, unknown>) {
    super(RingErrorCode.CORRUPT, message, { details });
  }
}
