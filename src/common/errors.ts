/**
 * Base error for every weir module (undici-style: stable `code`, `name` per class, `cause`,
 * and a `Symbol.for` brand so `isWeirError` works across duplicated module copies and realms).
 *
 * Modules subclass it in their own `errors.ts`, with a code registered in src/protocol/error-codes.ts
 * (docs/errors.md is generated from it; a test fails on a code emitted in src/ that is not there):
 *
 * ```ts
 * export class WalCorruptError extends WeirError {
 *   constructor(details: { offset: number }, cause?: unknown) {
 *     super(WeirCode.WAL_CORRUPT, `WAL record at ${details.offset} is corrupt`, { details, cause });
 *   }
 * }
 * ```
 *
 * Custom error classes and their own properties do not survive `postMessage` (structured clone
 * keeps only `message`/`stack` of an `Error`; thread-stream #29, piscina #1143, nodejs/node #37988).
 * Across a thread boundary send `err.toPlain()` (or `errorToPlain(anything)`) and rehydrate with
 * `WeirError.fromPlain(obj)` on the other side; the `code` is the contract, not the class.
 */

import { WeirCode } from '../protocol/error-codes.js';

const kWeirError: unique symbol = Symbol.for('weir.error');

/** The structured-clone-safe shape of an error. `details` must itself be structured-cloneable. */
export interface PlainError {
  code: string;
  message: string;
  retryable: boolean;
  name?: string;
  details?: Record<string, unknown>;
  stack?: string;
  cause?: PlainError;
}

export interface WeirErrorOptions {
  /** Whether retrying the same operation later can succeed. Default false. */
  retryable?: boolean;
  details?: Record<string, unknown>;
  cause?: unknown;
}

/** Code used when rehydrating or converting something that carried no usable code. */
export const UNKNOWN_ERROR_CODE = WeirCode.UNKNOWN;

export class WeirError extends Error {
  /**
   * Stable, UPPER_SNAKE by convention (not enforced: rehydrated foreign codes such as `ENOENT` are
   * kept as they are); part of the public contract: register it in src/protocol/error-codes.ts,
   * from which docs/errors.md is generated (`npm run docs:errors`).
   */
  readonly code: string;
  readonly retryable: boolean;
  readonly details?: Record<string, unknown>;
  declare readonly [kWeirError]: true;

  constructor(code: string, message: string, options: WeirErrorOptions = {}) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
    // V8 formats `stack` lazily, so setting the name here still yields "SubClass: message".
    this.name = new.target.name;
    this.code = code.length > 0 ? code : UNKNOWN_ERROR_CODE;
    this.retryable = options.retryable ?? false;
    if (options.details !== undefined) this.details = options.details;
    Object.defineProperty(this, kWeirError, { value: true, enumerable: false });
  }

  /** True for any WeirError, including ones from another copy of this module. */
  static isWeirError(x: unknown): x is WeirError {
    return typeof x === 'object' && x !== null && (x as Record<symbol, unknown>)[kWeirError] === true;
  }

  /** Structured-clone-safe form, for `postMessage` and protocol replies. */
  toPlain(): PlainError {
    const plain: PlainError = { code: this.code, message: this.message, retryable: this.retryable, name: this.name };
    if (this.details !== undefined) plain.details = this.details;
    if (this.stack !== undefined) plain.stack = this.stack;
    if (this.cause !== undefined) plain.cause = errorToPlain(this.cause);
    return plain;
  }

  /**
   * Rehydrates a `PlainError` (or anything that looks like one) into a `WeirError`. The subclass is
   * not restored, only `code`, `message`, `retryable`, `details`, `name`, `stack` and `cause`;
   * callers branch on `code`. Garbage input yields code `UNKNOWN`, never a throw.
   */
  static fromPlain(obj: unknown): WeirError {
    if (typeof obj !== 'object' || obj === null) {
      return new WeirError(UNKNOWN_ERROR_CODE, `non-error value: ${String(obj)}`);
    }
    const o = obj as Partial<Record<keyof PlainError, unknown>>;
    const code = typeof o.code === 'string' ? o.code : UNKNOWN_ERROR_CODE;
    const message = typeof o.message === 'string' ? o.message : '';
    const options: WeirErrorOptions = { retryable: o.retryable === true };
    if (typeof o.details === 'object' && o.details !== null) options.details = o.details as Record<string, unknown>;
    if (o.cause !== undefined) options.cause = WeirError.fromPlain(o.cause);
    const err = new WeirError(code, message, options);
    if (typeof o.name === 'string') err.name = o.name;
    if (typeof o.stack === 'string') err.stack = o.stack;
    return err;
  }
}

/**
 * Converts any thrown value into a `PlainError`: a WeirError keeps its fields, a Node error with a
 * string `code` (e.g. `ERR_WORKER_OUT_OF_MEMORY`, `ENOENT`) keeps that code, anything else is `UNKNOWN`.
 */
export function errorToPlain(err: unknown, depth = 0): PlainError {
  if (WeirError.isWeirError(err)) return err.toPlain();
  if (err instanceof Error) {
    const raw = (err as { code?: unknown }).code;
    const plain: PlainError = {
      code: typeof raw === 'string' && raw.length > 0 ? raw : UNKNOWN_ERROR_CODE,
      message: err.message,
      retryable: false,
      name: err.name,
    };
    if (err.stack !== undefined) plain.stack = err.stack;
    // Bound the cause chain: a cyclic `cause` must not recurse forever.
    if (err.cause !== undefined && depth < 8) plain.cause = errorToPlain(err.cause, depth + 1);
    return plain;
  }
  return { code: UNKNOWN_ERROR_CODE, message: String(err), retryable: false };
}

/** A request field is missing or wrong: BAD_REQUEST with `details.field` (docs/protocol.md). */
export function badRequest(field: string, message: string): WeirError {
  return new WeirError(WeirCode.BAD_REQUEST, message, { details: { field } });
}

/** A request's id, or BAD_REQUEST naming the op that needs one (the core applies it per its op table). */
export function needId(id: number | undefined, op: unknown): number {
  if (id === undefined) throw badRequest('id', `"${String(op)}" needs a non-negative integer "id"`);
  return id;
}

/**
 * The offsets a DATA_LOSS error says are lost ([from, to): damaged on disk, never delivered; read
 * on from `to`), or null for any other error.
 */
export function lostRange(err: unknown): { from: number; to: number } | null {
  if (!WeirError.isWeirError(err) || err.code !== WeirCode.DATA_LOSS) return null;
  const from = err.details?.from;
  const to = err.details?.to;
  return typeof from === 'number' && typeof to === 'number' && to > from ? { from, to } : null;
}
