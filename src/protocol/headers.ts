/**
 * Reserved record headers: every header whose name starts with `weir-` means something to the
 * broker (docs/protocol.md, "Reserved headers"). Values are UTF-8 text; times are decimal
 * milliseconds since the Unix epoch. The gateway marks records that carry any of them with
 * ATTR_CONTROL (record.ts), so code that looks for them first tests that bit.
 *
 * These functions read one record's headers in place, without building objects, because they run
 * on the produce and delivery paths.
 */
import { ATTR_CONTROL, F_ATTRIBUTES, F_HEADER_COUNT, F_KEY_LENGTH, F_TIMESTAMP, F_VALUE_LENGTH, RECORD_HEADER_BYTES, readU16, readU32, readU53, writeU32 } from './record.js';

export const HEADER_PREFIX = 'weir-';

/**
 * Largest accepted time value (weir-deliver-at, weir-delay, weir-expires-at, weir-ttl): 2^43 ms
 * is year 2248; anything beyond is a unit mistake. Shared by the broker and the SDK.
 */
export const MAX_TIME_MS = 2 ** 43;

export const Header = {
  // time
  /** Absolute delivery time (ms): the message is invisible to consumers until then. */
  DELIVER_AT: 'weir-deliver-at',
  /**
   * Relative delay (ms) from the produce; the gateway adds DELIVER_AT (receipt time + delay) next
   * to it (it is kept) before storing the record in the schedule log.
   */
  DELAY: 'weir-delay',
  /** Absolute expiry (ms): never delivered at or after it. */
  EXPIRES_AT: 'weir-expires-at',
  /**
   * Relative time to live (ms) from the record's append time in its topic. Stored as it is (not
   * turned into EXPIRES_AT): the expiry is computed at delivery (recordExpiresAt).
   */
  TTL: 'weir-ttl',
  // dead letters: why, from where, how often
  DLQ_REASON: 'weir-dlq-reason',
  DLQ_TOPIC: 'weir-dlq-topic',
  DLQ_PARTITION: 'weir-dlq-partition',
  DLQ_OFFSET: 'weir-dlq-offset',
  DLQ_GROUP: 'weir-dlq-group',
  DLQ_DELIVERIES: 'weir-dlq-deliveries',
  DLQ_TIME: 'weir-dlq-time',
  // request-reply
  REPLY_TO: 'weir-reply-to',
  CORRELATION_ID: 'weir-correlation-id',
  /** On a reply: the responder's handler failed with this message (routing). */
  REPLY_ERROR: 'weir-reply-error',
  // exactly-once append and transactions
  PRODUCER_ID: 'weir-producer-id',
  SEQUENCE: 'weir-sequence',
  /** Exactly-once append: number of records of the idempotent batch (written by the gateway). */
  BATCH_COUNT: 'weir-batch-count',
  TRANSACTION_ID: 'weir-txn',
} as const;
export type HeaderName = (typeof Header)[keyof typeof Header];

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** True when the stored or scanned record at `at` carries `weir-` headers. */
export function hasControlHeaders(b: Uint8Array, at: number): boolean {
  return (b[at + F_ATTRIBUTES]! & ATTR_CONTROL) !== 0;
}

/**
 * Byte range of the value of header `name` (first occurrence) of the record at `at`, or null.
 * `name` must be ASCII (every reserved name is). Returns [start, end) into `b`.
 */
export function findHeader(b: Uint8Array, at: number, name: string): [number, number] | null {
  let p = headersStart(b, at);
  const n = readU16(b, at + F_HEADER_COUNT);
  const len = name.length;
  for (let h = 0; h < n; h++) {
    const nl = readU16(b, p);
    let match = nl === len;
    for (let i = 0; match && i < len; i++) if (b[p + 2 + i] !== name.charCodeAt(i)) match = false;
    p += 2 + nl;
    const vl = readU32(b, p);
    if (match) return [p + 4, p + 4 + vl];
    p += 4 + vl;
  }
  return null;
}

// ── the header section: each header is u16 name length, name, u32 value length, value ──────────

/** Where the header section of the record at `at` starts (after its key and value). */
export function headersStart(b: Uint8Array, at: number): number {
  const kl = readU32(b, at + F_KEY_LENGTH) | 0;
  return at + RECORD_HEADER_BYTES + (kl > 0 ? kl : 0) + readU32(b, at + F_VALUE_LENGTH);
}

/** Where the header starting at `p` ends (the next one starts). */
export function headerEnd(b: Uint8Array, p: number): number {
  const valueAt = p + 2 + readU16(b, p);
  return valueAt + 4 + readU32(b, valueAt);
}

/** The headers of the record at `at`, in order: names decoded from UTF-8, values as views into `b`. */
export function readHeaders(b: Uint8Array, at: number): Array<[string, Uint8Array]> {
  const n = readU16(b, at + F_HEADER_COUNT);
  const out: Array<[string, Uint8Array]> = [];
  for (let h = 0, p = headersStart(b, at); h < n; h++) {
    const nl = readU16(b, p);
    const name = decoder.decode(b.subarray(p + 2, p + 2 + nl));
    p += 2 + nl;
    const vl = readU32(b, p);
    out.push([name, b.subarray(p + 4, p + 4 + vl)]);
    p += 4 + vl;
  }
  return out;
}

/** Write one header (UTF-8 name and value bytes) at `p` of `out`; returns where it ends. */
export function writeHeader(out: Uint8Array, p: number, name: Uint8Array, value: Uint8Array): number {
  out[p] = name.length;
  out[p + 1] = name.length >>> 8;
  out.set(name, p + 2);
  p += 2 + name.length;
  writeU32(out, p, value.length);
  out.set(value, p + 4);
  return p + 4 + value.length;
}

/** The header section holding `headers` (names and values as text), as a record carries it. */
export function encodeHeaders(headers: ReadonlyArray<readonly [string, string]>): Uint8Array {
  const parts = headers.map(([n, v]) => [encoder.encode(n), encoder.encode(v)] as const);
  let size = 0;
  for (const [n, v] of parts) size += 6 + n.length + v.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const [n, v] of parts) at = writeHeader(out, at, n, v);
  return out;
}

/** The header's value as text, or null. */
export function headerText(b: Uint8Array, at: number, name: string): string | null {
  const r = findHeader(b, at, name);
  return r === null ? null : decoder.decode(b.subarray(r[0], r[1]));
}

/**
 * The header's value as a non-negative integer written in decimal ASCII, or null when absent.
 * NaN when present but not such a number (callers turn that into BAD_REQUEST).
 */
export function headerInteger(b: Uint8Array, at: number, name: string): number | null {
  const r = findHeader(b, at, name);
  if (r === null) return null;
  const [s, e] = r;
  if (e === s || e - s > 16) return NaN;
  let v = 0;
  for (let i = s; i < e; i++) {
    const d = b[i]! - 0x30;
    if (d < 0 || d > 9) return NaN;
    v = v * 10 + d;
  }
  return v;
}

/** UTF-8 bytes of a header value written as decimal text. */
export function integerHeaderValue(v: number): Uint8Array {
  return encoder.encode(String(Math.floor(v)));
}

/**
 * When the stored record at `at` expires (ms since the epoch), or Infinity: the earliest of its own
 * `weir-expires-at`, its append time plus its own `weir-ttl`, and its append time plus the topic's
 * `ttlMs`. Costs one byte test for records without `weir-` headers on topics without a TTL.
 */
export function recordExpiresAt(b: Uint8Array, at: number, topicTtlMs: number | null): number {
  const appended = readU53(b, at + F_TIMESTAMP);
  let expires = topicTtlMs === null ? Infinity : appended + topicTtlMs;
  if ((b[at + F_ATTRIBUTES]! & ATTR_CONTROL) !== 0) {
    const abs = headerInteger(b, at, Header.EXPIRES_AT);
    if (abs !== null && abs === abs && abs < expires) expires = abs;
    const ttl = headerInteger(b, at, Header.TTL);
    if (ttl !== null && ttl === ttl && appended + ttl < expires) expires = appended + ttl;
  }
  return expires;
}
