/**
 * The one record format, from producer to log to consumer (documented in docs/protocol.md).
 *
 * A record batch is a plain concatenation of records. Every record is self-framing, so the SDK
 * builds it, the gateway routes it by scanning lengths, the ring carries it, the partition stamps
 * offset/timestamp/CRC in place, the log stores the same bytes, and a consumer receives them.
 *
 * Record layout (little-endian; offsets in bytes from the record start):
 *
 *   0  u32  length        bytes after this field: 32 + keyLength(if >0) + valueLength + headersBytes
 *   4  u32  crc           CRC32C of bytes [8, 4 + length) — written by the partition; 0 from producers
 *   8  u32  offsetLow     record offset, low 32 bits  ┐ written by the partition;
 *  12  u32  offsetHigh    record offset, high 21 bits ┘ 0 from producers
 *  16  u32  timestampLow  ms since epoch, low 32 bits ┐ log-append time, written by the partition;
 *  20  u32  timestampHigh                             ┘ non-decreasing per partition
 *  24  i32  keyLength     -1 = no key
 *  28  u32  valueLength
 *  32  u16  headerCount
 *  34  u8   magic         1
 *  35  u8   attributes    bit 0 (ATTR_CONTROL): the record has `weir-` headers (set by the gateway)
 *  36  ...  key bytes, value bytes, then headerCount × { u16 nameLength, name (UTF-8), u32 valueLength, value }
 */
import { crc32c } from '../common/crc32c.js';
import { ErrorCode } from './codes.js';

export const RECORD_MAGIC = 1;
export const RECORD_HEADER_BYTES = 36;
/** `length` counts everything after the length field itself. */
export const RECORD_MIN_LENGTH = RECORD_HEADER_BYTES - 4;

export const F_LENGTH = 0;
export const F_CRC = 4;
export const F_OFFSET = 8;
export const F_TIMESTAMP = 16;
export const F_KEY_LENGTH = 24;
export const F_VALUE_LENGTH = 28;
export const F_HEADER_COUNT = 32;
export const F_MAGIC = 34;
export const F_ATTRIBUTES = 35;

/**
 * Attribute bit 0: the record carries at least one header whose name starts with `weir-` (delivery
 * time, expiry, reply-to, …; src/protocol/headers.ts). The gateway sets or clears it while scanning a
 * produce batch, so the stages after it test one byte instead of parsing headers of every record.
 */
export const ATTR_CONTROL = 0x01;
/**
 * Attribute bit 1 (exactly-once append): the first record of an idempotent producer's batch, whose
 * first headers are weir-producer-id, weir-sequence and weir-batch-count as the gateway wrote them.
 * scanBatch clears it on every produced record and the gateway sets it only on batches it rewrote,
 * so partition recovery can trust it (src/partition/producer-state.ts).
 */
export const ATTR_IDEMPOTENT = 0x02;

const TWO_32 = 0x1_0000_0000;

export function readU32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}
export function writeU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v;
  b[at + 1] = v >>> 8;
  b[at + 2] = v >>> 16;
  b[at + 3] = v >>> 24;
}
export function readU16(b: Uint8Array, at: number): number {
  return b[at]! | (b[at + 1]! << 8);
}
/** A non-negative integer below 2^53 stored as two u32 words. */
export function readU53(b: Uint8Array, at: number): number {
  return readU32(b, at + 4) * TWO_32 + readU32(b, at);
}
export function writeU53(b: Uint8Array, at: number, v: number): void {
  writeU32(b, at, v >>> 0);
  writeU32(b, at + 4, Math.floor(v / TWO_32));
}

export const recordSize = (b: Uint8Array, at: number): number => 4 + readU32(b, at);
export const recordOffset = (b: Uint8Array, at: number): number => readU53(b, at + F_OFFSET);
export const recordTimestamp = (b: Uint8Array, at: number): number => readU53(b, at + F_TIMESTAMP);

/** Stamp offset and timestamp into a record in place and seal it with its CRC. */
export function stampRecord(b: Uint8Array, at: number, offset: number, timestamp: number): void {
  stampOffsetAndTime(b, at, offset, timestamp);
  sealRecord(b, at);
}

/** Stamp offset and timestamp into a record in place, to be sealed afterwards (the CRC covers them). */
export function stampOffsetAndTime(b: Uint8Array, at: number, offset: number, timestamp: number): void {
  writeU53(b, at + F_OFFSET, offset);
  writeU53(b, at + F_TIMESTAMP, timestamp);
}

/** Write the CRC of the record at `at`. */
export function sealRecord(b: Uint8Array, at: number): void {
  writeU32(b, at + F_CRC, crc32c(b, at + F_OFFSET, at + 4 + readU32(b, at)));
}

/**
 * Seal every record of `b[start, end)`, which must be a sequence of whole records; returns how many.
 * Otherwise throws a RangeError, having written nothing. The same as the native helper's
 * sealRecords (src/common/native-io.ts), which the log uses when it is built: this is its fallback.
 */
export function sealRecords(b: Uint8Array, start: number, end: number): number {
  let n = 0;
  for (let at = start; at < end; n++) {
    const length = end - at >= 4 ? readU32(b, at) : 0;
    if (length < RECORD_MIN_LENGTH || at + 4 + length > end) throw new RangeError('sealRecords: the range is not a sequence of whole records');
    at += 4 + length;
  }
  for (let at = start; at < end; at += 4 + readU32(b, at)) sealRecord(b, at);
  return n;
}

/** True when the record at `at` is wholly inside `[at, end)` and its CRC matches. */
export function isValidStoredRecord(b: Uint8Array, at: number, end: number): boolean {
  if (end - at < RECORD_HEADER_BYTES) return false;
  const length = readU32(b, at);
  if (length < RECORD_MIN_LENGTH || at + 4 + length > end) return false;
  if (b[at + F_MAGIC] !== RECORD_MAGIC) return false;
  return crc32c(b, at + F_OFFSET, at + 4 + length) === readU32(b, at + F_CRC);
}

/**
 * How many records from `start` check out, stopping at the first that does not or at `end`: each
 * must be wholly inside `[start, end)`, have a sane length and the right magic, carry the offset
 * `firstOffset + i`, and match its CRC. The read path runs it over every record it serves; the same
 * as the native helper's verifyRecords (src/common/native-io.ts), of which this is the fallback.
 */
export function verifyRecords(b: Uint8Array, start: number, end: number, firstOffset: number): number {
  let n = 0;
  for (let at = start; end - at >= RECORD_HEADER_BYTES; n++) {
    const length = readU32(b, at);
    if (length < RECORD_MIN_LENGTH || at + 4 + length > end) break;
    if (b[at + F_MAGIC] !== RECORD_MAGIC || readU53(b, at + F_OFFSET) !== firstOffset + n) break;
    if (crc32c(b, at + F_OFFSET, at + 4 + length) !== readU32(b, at + F_CRC)) break;
    at += 4 + length;
  }
  return n;
}

/** Why a batch was refused: stable codes, reported to the client as BAD_BATCH details. */
export type BatchDefect =
  | 'TRUNCATED'
  | 'LENGTH_TOO_SMALL'
  | 'LENGTH_OVERRUNS_BATCH'
  | 'BAD_MAGIC'
  | 'KEY_OVERRUNS_RECORD'
  | 'VALUE_OVERRUNS_RECORD'
  | 'HEADER_OVERRUNS_RECORD'
  | 'TRAILING_BYTES_IN_RECORD'
  | 'RECORD_TOO_LARGE'
  | 'TOO_MANY_RECORDS'
  | 'EMPTY';

export class BatchFormatError extends Error {
  readonly code = ErrorCode.BAD_BATCH;
  constructor(
    readonly defect: BatchDefect,
    readonly recordIndex: number,
    readonly position: number,
  ) {
    super(`record batch is malformed: ${defect} at record ${recordIndex} (byte ${position})`);
    this.name = 'BatchFormatError';
  }
}

/**
 * Where each record of a batch starts, and its key, filled by `scanBatch` without allocating per
 * record. Reuse one per connection/thread; it grows as needed.
 */
export class RecordIndex {
  count = 0;
  start = new Uint32Array(1024);
  size = new Uint32Array(1024);
  keyStart = new Uint32Array(1024);
  keyLength = new Int32Array(1024);
  /** Records of the last scan with ATTR_CONTROL set (0 on the hot path: nothing to inspect). */
  controlCount = 0;

  ensure(n: number): void {
    if (n <= this.start.length) return;
    let cap = this.start.length;
    while (cap < n) cap *= 2;
    const grow = <T extends Uint32Array | Int32Array>(a: T, make: (n: number) => T): T => {
      const b = make(cap);
      b.set(a);
      return b;
    };
    this.start = grow(this.start, (n) => new Uint32Array(n));
    this.size = grow(this.size, (n) => new Uint32Array(n));
    this.keyStart = grow(this.keyStart, (n) => new Uint32Array(n));
    this.keyLength = grow(this.keyLength, (n) => new Int32Array(n));
  }
}

export interface ScanLimits {
  maxRecordBytes: number;
  maxRecords: number;
}

/**
 * Validate the framing of a producer batch and index its records. Every length is checked against
 * its container, so a batch whose lengths lie is refused whole (nothing of it is appended).
 * Writes each record's attributes byte (ATTR_CONTROL or 0): producers' values are not trusted.
 * Throws BatchFormatError.
 */
export function scanBatch(b: Uint8Array, index: RecordIndex, limits: ScanLimits): number {
  const end = b.length;
  let at = 0;
  let n = 0;
  let control = 0;
  if (end === 0) throw new BatchFormatError('EMPTY', 0, 0);
  while (at < end) {
    if (end - at < RECORD_HEADER_BYTES) throw new BatchFormatError('TRUNCATED', n, at);
    const length = readU32(b, at);
    if (length < RECORD_MIN_LENGTH) throw new BatchFormatError('LENGTH_TOO_SMALL', n, at);
    const recEnd = at + 4 + length;
    if (recEnd > end) throw new BatchFormatError('LENGTH_OVERRUNS_BATCH', n, at);
    if (4 + length > limits.maxRecordBytes) throw new BatchFormatError('RECORD_TOO_LARGE', n, at);
    if (b[at + F_MAGIC] !== RECORD_MAGIC) throw new BatchFormatError('BAD_MAGIC', n, at);
    const keyLength = readU32(b, at + F_KEY_LENGTH) | 0;
    let p = at + RECORD_HEADER_BYTES;
    if (keyLength < -1 || (keyLength > 0 && p + keyLength > recEnd)) {
      throw new BatchFormatError('KEY_OVERRUNS_RECORD', n, at);
    }
    const keyStart = p;
    if (keyLength > 0) p += keyLength;
    const valueLength = readU32(b, at + F_VALUE_LENGTH);
    if (valueLength > recEnd - p) throw new BatchFormatError('VALUE_OVERRUNS_RECORD', n, at);
    p += valueLength;
    const headers = readU16(b, at + F_HEADER_COUNT);
    let attrs = 0;
    for (let h = 0; h < headers; h++) {
      if (p + 2 > recEnd) throw new BatchFormatError('HEADER_OVERRUNS_RECORD', n, at);
      const nameLength = readU16(b, p);
      if (nameLength > 5 && p + 7 <= recEnd && isControlPrefix(b, p + 2)) attrs = ATTR_CONTROL;
      p += 2 + nameLength;
      if (p + 4 > recEnd) throw new BatchFormatError('HEADER_OVERRUNS_RECORD', n, at);
      const hv = readU32(b, p);
      if (hv > recEnd - p - 4) throw new BatchFormatError('HEADER_OVERRUNS_RECORD', n, at);
      p += 4 + hv;
    }
    if (p !== recEnd) throw new BatchFormatError('TRAILING_BYTES_IN_RECORD', n, at);
    if (n >= limits.maxRecords) throw new BatchFormatError('TOO_MANY_RECORDS', n, at);
    b[at + F_ATTRIBUTES] = attrs;
    control += attrs;
    index.ensure(n + 1);
    index.start[n] = at;
    index.size[n] = 4 + length;
    index.keyStart[n] = keyStart;
    index.keyLength[n] = keyLength;
    n++;
    at = recEnd;
  }
  index.count = n;
  index.controlCount = control;
  return n;
}

/** "weir-" at `at` (the reserved header name prefix). */
function isControlPrefix(b: Uint8Array, at: number): boolean {
  return b[at] === 0x77 && b[at + 1] === 0x65 && b[at + 2] === 0x69 && b[at + 3] === 0x72 && b[at + 4] === 0x2d;
}
