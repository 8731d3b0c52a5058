/**
 * Record-level work of transactions, pure (bytes in, bytes out): tagging half messages with their
 * transaction, routing them at commit, and recognising them in a partition after a crash.
 */
import { crc32c } from '../../common/crc32c.js';
import { partitionForKey } from '../../common/murmur2.js';
import { Header, findHeader, writeHeader } from '../../protocol/headers.js';
import { ATTR_CONTROL, F_ATTRIBUTES, F_HEADER_COUNT, F_KEY_LENGTH, RECORD_HEADER_BYTES, readU16, readU32, writeU32, type RecordIndex } from '../../protocol/record.js';

const encoder = new TextEncoder();
const NAME = encoder.encode(Header.TRANSACTION_ID);

/**
 * A copy of the indexed batch where every record carries the header `weir-txn: <txn>` (replacing
 * none: a record that already has one keeps it first, and findHeader reads the first). The tag
 * travels with the message into the topic: consumers see which transaction it came from, and
 * recovery counts a transaction's messages already in a partition by it.
 */
export function tagWithTransaction(batch: Uint8Array, index: RecordIndex, txn: number): Uint8Array {
  const value = encoder.encode(String(txn));
  const extra = 2 + NAME.length + 4 + value.length;
  const out = new Uint8Array(batch.length + index.count * extra);
  let w = 0;
  for (let i = 0; i < index.count; i++) {
    const at = index.start[i]!;
    const size = index.size[i]!;
    out.set(batch.subarray(at, at + size), w);
    writeU32(out, w, size - 4 + extra);
    const headers = readU16(out, w + F_HEADER_COUNT) + 1;
    if (headers > 0xffff) throw new RangeError('a transactional message can have at most 65534 headers');
    out[w + F_HEADER_COUNT] = headers;
    out[w + F_HEADER_COUNT + 1] = headers >>> 8;
    out[w + F_ATTRIBUTES] = ATTR_CONTROL;
    w = writeHeader(out, w + size, NAME, value);
  }
  return out;
}

/** True when the stored record at `at` is tagged with transaction `txn`. */
export function isOfTransaction(b: Uint8Array, at: number, txn: number): boolean {
  if ((b[at + F_ATTRIBUTES]! & ATTR_CONTROL) === 0) return false;
  const r = findHeader(b, at, Header.TRANSACTION_ID);
  if (r === null) return false;
  const want = String(txn);
  if (r[1] - r[0] !== want.length) return false;
  for (let i = 0; i < want.length; i++) if (b[r[0] + i] !== want.charCodeAt(i)) return false;
  return true;
}

/**
 * Where a half message goes at commit, deterministically (recovery recomputes the same answer):
 * the txn_produce's forced partition, else its key's partition (Kafka's murmur2, as for a plain
 * produce), else one partition per transaction (unkeyed messages stay together, in order).
 */
export function targetPartition(b: Uint8Array, at: number, forced: number | null, partitions: number, txn: number): number {
  if (forced !== null) return forced;
  const kl = readU32(b, at + F_KEY_LENGTH) | 0;
  if (kl >= 0) return partitionForKey(b, at + RECORD_HEADER_BYTES, at + RECORD_HEADER_BYTES + kl, partitions);
  return txn % partitions;
}

/**
 * CRC32C of what an append keeps of a record: the lengths, key, value and headers (not offset,
 * timestamp, attributes and the record's own CRC, which the log assigns). Recovery compares a partition's
 * records with the half messages by it.
 */
export function recordDigest(b: Uint8Array, at: number): number {
  const lengths = crc32c(b, at + F_KEY_LENGTH, at + F_HEADER_COUNT + 2); // keyLength, valueLength, headerCount
  return crc32c(b, at + RECORD_HEADER_BYTES, at + 4 + readU32(b, at), lengths);
}

/** Start of each record in a buffer of stored records. */
export function recordStarts(b: Uint8Array): number[] {
  const out: number[] = [];
  for (let at = 0; at + 4 <= b.length; at += 4 + readU32(b, at)) out.push(at);
  return out;
}

/** Concatenate byte ranges of `b` into one new batch. */
export function gather(b: Uint8Array, ranges: Array<[number, number]>): Uint8Array {
  let n = 0;
  for (const [s, e] of ranges) n += e - s;
  const out = new Uint8Array(n);
  let w = 0;
  for (const [s, e] of ranges) {
    out.set(b.subarray(s, e), w);
    w += e - s;
  }
  return out;
}
