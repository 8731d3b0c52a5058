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
import { Header, MAX_TIME_MS, encodeHeaders, hasControlHeaders, headerEnd, headerInteger, headersStart } from './headers.js';
import { F_HEADER_COUNT, F_KEY_LENGTH, F_MAGIC, F_TIMESTAMP, RECORD_MAGIC, readU16, readU53, writeU32 } from './record.js';


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

/**
 * A producer-form copy of the stored record at `at` (crc, offset, timestamp zero) without the
 * headers named in `drop` and with `add` appended: what a fired delayed message (without its delay
 * headers, so it is not delayed again) or a dead letter (with its weir-dlq-* headers) becomes.
 */
export function rewriteRecord(b: Uint8Array, at: number, drop: ReadonlySet<string>, add: ReadonlyArray<readonly [string, string]> = []): Uint8Array {
  // Two passes over the headers (size, then copy) and no object per header: this runs for every
  // delayed message.
  const bodyEnd = headersStart(b, at);
  const n = readU16(b, at + F_HEADER_COUNT);
  let size = bodyEnd - at;
  let kept = 0;
  for (let h = 0, p = bodyEnd; h < n; h++) {
    const end = headerEnd(b, p);
    if (!isDropped(b, p + 2, readU16(b, p), drop)) {
      size += end - p;
      kept++;
    }
    p = end;
  }
  const added = add.length === 0 ? NO_ADDED : encodeHeaders(add);
  size += added.length;
  const out = new Uint8Array(size);
  out.set(b.subarray(at, bodyEnd), 0);
  let q = bodyEnd - at;
  for (let h = 0, p = bodyEnd; h < n; h++) {
    const end = headerEnd(b, p);
    if (!isDropped(b, p + 2, readU16(b, p), drop)) {
      out.set(b.subarray(p, end), q);
      q += end - p;
    }
    p = end;
  }
  out.set(added, q);
  writeU32(out, 0, size - 4);
  out.fill(0, 4, F_KEY_LENGTH); // crc, offset, timestamp: stamped by the partition
  const headers = kept + add.length;
  out[F_HEADER_COUNT] = headers;
  out[F_HEADER_COUNT + 1] = headers >>> 8;
  out[F_MAGIC] = RECORD_MAGIC;
  out[F_MAGIC + 1] = 0; // attributes: the gateway sets ATTR_CONTROL again when it scans
  return out;
}
const NO_ADDED = new Uint8Array(0);

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
