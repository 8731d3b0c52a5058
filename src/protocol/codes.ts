/**
 * Stable error codes: clients switch on these. Every code is registered, with its kind, retryable
 * flag and meaning, in src/protocol/error-codes.ts (docs/errors.md is generated from it); the sets
 * here are derived from that registry and keep their historic names for the modules and the SDK.
 */
import { ERROR_CODES, isProtocolCode, type ProtocolCode, type WeirCode } from './error-codes.js';

export { ERROR_CODES, WeirCode, codesOfKind, isWeirCode, type ErrorCodeInfo, type ErrorKind } from './error-codes.js';

const entries = Object.entries(ERROR_CODES) as [WeirCode, (typeof ERROR_CODES)[WeirCode]][];

/**
 * The protocol's codes (the SDK exports this): every code the broker sends, plus TIMEOUT,
 * CONNECTION_CLOSED and RESPONDER_ERROR, which the SDK raises itself. The gateway passes only these
 * to a client; any other code is answered as INTERNAL.
 */
export const ErrorCode: { readonly [K in ProtocolCode]: K } = Object.freeze(
  Object.fromEntries(entries.filter(([, i]) => isProtocolCode(i)).map(([c]) => [c, c])) as { [K in ProtocolCode]: K },
);
export type ErrorCode = ProtocolCode;

/** The codes of `ErrorCode` whose requests were not applied (or may be retried safely at-least-once). */
export const RETRYABLE: ReadonlySet<string> = new Set<string>(entries.filter(([, i]) => isProtocolCode(i) && i.retryable).map(([c]) => c));

/**
 * Codes the SDK raises itself and the broker never sends (docs/protocol.md says so of each). Every
 * other code of `ErrorCode` is one the broker can send, and has a row in docs/protocol.md's error tables.
 */
export const CLIENT_ONLY_CODES: ReadonlySet<string> = new Set<string>(entries.filter(([, i]) => isProtocolCode(i) && i.kind === 'client').map(([c]) => c));

/**
 * Numeric form used inside the partition rings (no strings cross the ring): RING_ERROR_CODES[n] is
 * the code whose registry entry says `ring: n`.
 */
export const RING_ERROR_CODES: readonly ErrorCode[] = Object.freeze(
  entries
    .filter(([, i]) => i.ring !== undefined)
    .sort(([, a], [, b]) => a.ring! - b.ring!)
    .map(([c]) => c as ErrorCode),
);
