/**
 * Typed errors of the ring module. Every error carries a stable `code` (what callers and the wire
 * protocol match on), a `name`, an optional `cause`, and the cross-realm brand
 * `Symbol.for('weir.error')` so code in another module or realm can recognise a weir error without
 * `instanceof` (undici style).
 *
 * Errors do not survive `postMessage` as classes (house-style pitfall 8): use `toPlain()` to send
 * `{code, message, stack, details}` across a thread boundary.
 *
 * NOTE for the integrator: `src/common/errors.ts` did not exist when this module was written. Once it
 * provides `WeirError`, `RingError` should extend it instead of `Error`; nothing else here changes.
 */

export const WEIR_ERROR_BRAND: unique symbol = Symbol.for('weir.error');

export const RingErrorCode = {
  /** A payload larger than `maxRecordBytes()`: it can never fit, waiting will not help. */
  RECORD_TOO_LARGE: 'RING_RECORD_TOO_LARGE',
  /** The ring was closed by either side. */
  CLOSED: 'RING_CLOSED',
  /** A bounded wait or retry budget ran out. */
  TIMEOUT: 'RING_TIMEOUT',
  /** API misuse: begin() twice, append() past the declared length, commit() short, etc. */
  BAD_STATE: 'RING_BAD_STATE',
  /** The SharedArrayBuffer is not a ring created by `createRing` (bad size, magic or capacity). */
  BAD_LAYOUT: 'RING_BAD_LAYOUT',
  /** A length prefix that cannot be right: the shared memory was corrupted or misused. */
  CORRUPT: 'RING_CORRUPT',
} as const;
export type RingErrorCode = (typeof RingErrorCode)[keyof typeof RingErrorCode];

export interface PlainRingError {
  code: RingErrorCode;
  message: string;
  stack: string | undefined;
  details: Record<string, number | string> | undefined;
}

export class RingError extends Error {
  readonly code: RingErrorCode;
  readonly details: Record<string, number | string> | undefined;

  constructor(
    code: RingErrorCode,
    message: string,
    options?: { cause?: unknown; details?: Record<string, number | string> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    // Subclass name, e.g. 'RingClosedError'; stable because the classes below are never renamed.
    this.name = new.target.name;
    this.code = code;
    this.details = options?.details;
  }

  get [WEIR_ERROR_BRAND](): true {
    return true;
  }

  toPlain(): PlainRingError {
    return { code: this.code, message: this.message, stack: this.stack, details: this.details };
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
    super(RingErrorCode.TIMEOUT, `${what} did not complete within ${timeoutMs} ms`, {
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
  constructor(message: string, details: Record<string, number | string>) {
    super(RingErrorCode.CORRUPT, message, { details });
  }
}

/** Brand check that works across realms and module copies. */
export function isWeirError(value: unknown): value is { code: string; message: string } {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { [WEIR_ERROR_BRAND]?: unknown })[WEIR_ERROR_BRAND] === true
  );
}
