/**
 * The time headers of one record (pure, in place): validation at produce, the due time of a stored
 * schedule record, and the record rewrite applied when a delayed message fires.
 *
 *   weir-deliver-at  absolute delivery time (ms since the epoch)
 *   weir-delay       delay (ms) from the append to the schedule log (≈ the produce)
 *   weir-expires-at  absolute expiry (ms)
 *   weir-ttl         time to live (ms) from the append to the topic (for a delayed message: from
 *                    its delivery)
 */
import { WeirError } from '../common/errors.js';
import { ErrorCode } from './codes.js';
import { Header, MAX_TIME_MS, hasControlHeaders, headerInteger } from './headers.js';
import { F_HEADER_COUNT, F_KEY_LENGTH, F_MAGIC, F_TIMESTAMP, F_VALUE_LENGTH, RECORD_HEADER_BYTES, RECORD_MAGIC, readU16, readU32, readU53, writeU32 } from './record.js';


/** How a produced record's time headers classify it. */
export const enum TimeKind {
  /** No delivery time: goes to the topic now. */
  IMMEDIATE = 0,
  /** weir-delay or weir-deliver-at: goes to the schedule log. */
  SCHEDULED = 1,
}

/**
 * Validate the time headers of the producer record at `at` and classify it. Throws BAD_REQUEST
 * (details.field `headers.<name>`, details.record) for a value that is not a decimal integer in
 * range, or for weir-delay together with weir-deliver-at.
 */
export function classifyProduced(b: Uint8Array, at: number, record: number): TimeKind {
  if (!hasControlHeaders(b, at)) return TimeKind.IMMEDIATE;
  const deliverAt = checked(b, at, Header.DELIVER_AT, record);
  const delay = checked(b, at, Header.DELAY, record);
  checked(b, at, Header.EXPIRES_AT, record);
  checked(b, at, Header.TTL, record);
  if (deliverAt !== null && delay !== null) {
    throw new WeirError(ErrorCode.BAD_REQUEST, `record ${record}: give ${Header.DELAY} or ${Header.DELIVER_AT}, not both`, { details: { field: `headers.${Header.DELAY}`, record } });
  }
  return deliverAt !== null || delay !== null ? TimeKind.SCHEDULED : TimeKind.IMMEDIATE;
}

function checked(b: Uint8Array, at: number, name: string, record: number): number | null {
  const v = headerInteger(b, at, name);
  if (v === null) return null;
  if (v !== v || v > MAX_TIME_MS) {
    throw new WeirError(ErrorCode.BAD_REQUEST, `record ${record}: header ${name} must be a non-negative integer of milliseconds (decimal text) up to ${MAX_TIME_MS}`, { details: { field: `headers.${name}`, record } });
  }
  return v;
}

/**
 * Due time of a stored schedule-log record: its weir-deliver-at, else its append time plus its
 * weir-delay. (Validated at produce; a record without either is due at once.)
 */
export function dueTimeOf(b: Uint8Array, at: number): number {
  const deliverAt = headerInteger(b, at, Header.DELIVER_AT);
  if (deliverAt !== null && deliverAt === deliverAt) return deliverAt;
  const delay = headerInteger(b, at, Header.DELAY);
  const appended = readU53(b, at + F_TIMESTAMP);
  return delay !== null && delay === delay ? appended + delay : appended;
}

/** The record's weir-expires-at, or Infinity (the only expiry that can pass before delivery). */
export function absoluteExpiryOf(b: Uint8Array, at: number): number {
  const v = headerInteger(b, at, Header.EXPIRES_AT);
  return v !== null && v === v ? v : Infinity;
}

const encoder = new TextEncoder();

/**
 * A producer-form copy of the stored record at `at` (crc, offset, timestamp zero) without the
 * headers named in `drop` and with `add` appended: what a fired delayed message (without its delay
 * headers, so it is not delayed again) or a dead letter (with its weir-dlq-* headers) becomes.
 */
export function rewriteRecord(b: Uint8Array, at: number, drop: ReadonlySet<string>, add: ReadonlyArray<readonly [string, string]> = []): Uint8Array {
  // Two passes over the headers (size, then copy) and no object per header: this runs for every
  // delayed message.
  const kl = readU32(b, at + F_KEY_LENGTH) | 0;
  const vl = readU32(b, at + F_VALUE_LENGTH);
  const bodyEnd = at + RECORD_HEADER_BYTES + (kl > 0 ? kl : 0) + vl;
  const n = readU16(b, at + F_HEADER_COUNT);
  let size = bodyEnd - at;
  let kept = 0;
  for (let h = 0, p = bodyEnd; h < n; h++) {
    const start = p;
    const nl = readU16(b, p);
    p += 2 + nl;
    p += 4 + readU32(b, p);
    if (!isDropped(b, start + 2, nl, drop)) {
      size += p - start;
      kept++;
    }
  }
  const added = add.length === 0 ? NO_ADDED : add.map(([k, v]) => [encoder.encode(k), encoder.encode(v)] as const);
  for (const [k, v] of added) size += 6 + k.length + v.length;
  const out = new Uint8Array(size);
  out.set(b.subarray(at, bodyEnd), 0);
  let q = bodyEnd - at;
  for (let h = 0, p = bodyEnd; h < n; h++) {
    const start = p;
    const nl = readU16(b, p);
    p += 2 + nl;
    p += 4 + readU32(b, p);
    if (!isDropped(b, start + 2, nl, drop)) {
      out.set(b.subarray(start, p), q);
      q += p - start;
    }
  }
  for (const [k, v] of added) {
    out[q] = k.length;
    out[q + 1] = k.length >>> 8;
    out.set(k, q + 2);
    q += 2 + k.length;
    writeU32(out, q, v.length);
    out.set(v, q + 4);
    q += 4 + v.length;
  }
  writeU32(out, 0, size - 4);
  out.fill(0, 4, F_KEY_LENGTH); // crc, offset, timestamp: stamped by the partition
  const headers = kept + added.length;
  out[F_HEADER_COUNT] = headers;
  out[F_HEADER_COUNT + 1] = headers >>> 8;
  out[F_MAGIC] = RECORD_MAGIC;
  out[F_MAGIC + 1] = 0; // attributes: the gateway sets ATTR_CONTROL again when it scans
  return out;
}
const NO_ADDED: ReadonlyArray<readonly [Uint8Array, Uint8Array]> = [];

function isDropped(b: Uint8Array, at: number, length: number, drop: ReadonlySet<string>): boolean {
  for (const name of drop) if (nameIs(b, at, length, name)) return true;
  return false;
}

/** Concatenate records into one batch. */
export function concatRecords(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const r of parts) n += r.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const r of parts) {
    out.set(r, at);
    at += r.length;
  }
  return out;
}

/** The `length` bytes at `at` are the ASCII name `name`. */
function nameIs(b: Uint8Array, at: number, length: number, name: string): boolean {
  if (length !== name.length) return false;
  for (let i = 0; i < length; i++) if (b[at + i] !== name.charCodeAt(i)) return false;
  return true;
}
