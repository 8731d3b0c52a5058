/**
 * Typed errors of the partition log. `code` is the contract (callers and the wire protocol match on
 * it, never on the class); `retryable` says whether the same request can succeed later.
 *
 * Wire-level codes (docs/protocol.md, "Error codes"): STORAGE_FULL, STORAGE_ERROR,
 * OFFSET_OUT_OF_RANGE. Module-internal codes (the integrator maps them to STORAGE_ERROR / INTERNAL
 * before they reach a client): LOG_CORRUPT, LOG_CLOSED, LOG_BAD_ARGUMENT.
 *
 * Across a thread boundary send `err.toPlain()` (house-style pitfall 8). The codes are registered in
 * src/protocol/error-codes.ts (docs/errors.md).
 */
import { WeirError } from '../common/errors.js';
import { WeirCode } from '../protocol/error-codes.js';

export const LogErrorCode = {
  /** ENOSPC / EDQUOT on a write: the flush was rolled back whole; retry after space is freed. */
  STORAGE_FULL: WeirCode.STORAGE_FULL,
  /** Any other I/O failure. The log may be unusable afterwards (see `PartitionLog.failed`). */
  STORAGE_ERROR: WeirCode.STORAGE_ERROR,
  /** read/offset below logStartOffset or above durableOffset. details: {offset, start, end}. */
  OFFSET_OUT_OF_RANGE: WeirCode.OFFSET_OUT_OF_RANGE,
  /** A sealed segment (fsynced at roll, so not a crash artifact) fails validation, or segments are not contiguous. */
  CORRUPT: WeirCode.LOG_CORRUPT,
  /** The log was closed or destroyed. */
  CLOSED: WeirCode.LOG_CLOSED,
  /** API misuse: bad options, a range whose records do not add up to `count`, etc. */
  BAD_ARGUMENT: WeirCode.LOG_BAD_ARGUMENT,
} as const;
export type LogErrorCode = (typeof LogErrorCode)[keyof typeof LogErrorCode];

export class LogError extends WeirError {
  declare readonly code: LogErrorCode;
  constructor(
    code: LogErrorCode,
    message: string,
    options: { retryable?: boolean; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(code, message, options);
  }
}

export class StorageFullError extends LogError {
  constructor(details: Record<string, unknown>, cause?: unknown) {
    super(LogErrorCode.STORAGE_FULL, `storage full: nothing of this flush was kept (${String(details['path'] ?? '')})`, {
      retryable: true,
      details,
      cause,
    });
  }
}

export class StorageError extends LogError {
  constructor(message: string, details: Record<string, unknown>, cause?: unknown) {
    super(LogErrorCode.STORAGE_ERROR, message, { retryable: false, details, cause });
  }
}

export class OffsetOutOfRangeError extends LogError {
  constructor(offset: number, start: number, end: number) {
    super(LogErrorCode.OFFSET_OUT_OF_RANGE, `offset ${offset} is outside the log [${start}, ${end}]`, {
      details: { offset, start, end },
    });
  }
}

export class LogCorruptError extends LogError {
  constructor(message: string, details: Record<string, unknown>) {
    super(LogErrorCode.CORRUPT, message, { details });
  }
}

export class LogClosedError extends LogError {
  constructor() {
    super(LogErrorCode.CLOSED, 'partition log is closed');
  }
}

export class LogArgumentError extends LogError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(LogErrorCode.BAD_ARGUMENT, message, details === undefined ? {} : { details });
  }
}

/** Map a Node fs error to STORAGE_FULL (ENOSPC, EDQUOT) or STORAGE_ERROR. */
export function storageErrorFrom(err: unknown, op: string, path: string): LogError {
  if (err instanceof LogError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const details = { op, path, errno: typeof code === 'string' ? code : 'UNKNOWN' };
  if (code === 'ENOSPC' || code === 'EDQUOT') return new StorageFullError(details, err);
  return new StorageError(`${op} failed on ${path}: ${(err as Error)?.message ?? String(err)}`, details, err);
}
