/**
 * The `deliver` frame of a subscription, encoded by hand: the same bytes cbor-x writes for
 * `{ op, sub, topic, partition, count, next, records }` (tested byte for byte), with the records
 * copied into a buffer placed so that they land at the same address modulo 8 as their source.
 *
 * Why: the records come straight from a partition's output ring, a SharedArrayBuffer. V8 copies to
 * or from shared memory word by word when source and destination are congruent modulo 8, and byte
 * by byte otherwise, several times slower (docs/performance.md). cbor-x puts the records wherever
 * its buffer happens to be.
 */
import { Buffer } from 'node:buffer';
import { cborText, headBytes, put, uintBytes, writeHead, writeUint } from '../protocol/cbor-head.js';
import type { FrameAllocator } from './frame-arena.js';

const KEY_OP = cborText('op');
const VALUE_DELIVER = cborText('deliver');
const KEY_SUB = cborText('sub');
const KEY_TOPIC = cborText('topic');
const KEY_PARTITION = cborText('partition');
const KEY_COUNT = cborText('count');
const KEY_NEXT = cborText('next');
const KEY_RECORDS = cborText('records');
const MAP_OF_7 = 0xa7;

/** Encoded topic names, reused: a gateway delivers from few topics, many times each. */
const topicCache = new Map<string, Uint8Array>();
const TOPIC_CACHE_MAX = 1024;

export interface DeliverFields {
  sub: number;
  topic: string;
  partition: number;
  count: number;
  next: number;
}

/** Without an arena: a fresh Buffer. */
const fresh: FrameAllocator = (bytes) => Buffer.allocUnsafe(bytes);

/**
 * The frame's bytes, in memory from `alloc` (by default a fresh buffer, safe to keep). `records`
 * may be a view of shared memory.
 */
export function encodeDeliverFrame(f: DeliverFields, records: Uint8Array, alloc: FrameAllocator = fresh): Uint8Array {
  const topic = topicBytes(f.topic);
  const n = records.length;
  const header =
    1 + KEY_OP.length + VALUE_DELIVER.length +
    KEY_SUB.length + uintBytes(f.sub) +
    KEY_TOPIC.length + topic.length +
    KEY_PARTITION.length + uintBytes(f.partition) +
    KEY_COUNT.length + uintBytes(f.count) +
    KEY_NEXT.length + uintBytes(f.next) +
    KEY_RECORDS.length + headBytes(n);
  const buf = alloc(header + n + 7);
  // Start the frame 0-7 bytes in, so that its records sit at the source's address modulo 8.
  const skew = (records.byteOffset - (buf.byteOffset + header)) & 7;
  const out = new Uint8Array(buf.buffer, buf.byteOffset + skew, header + n);
  let at = 0;
  out[at++] = MAP_OF_7;
  at = put(out, at, KEY_OP);
  at = put(out, at, VALUE_DELIVER);
  at = put(out, at, KEY_SUB);
  at = writeUint(out, at, f.sub);
  at = put(out, at, KEY_TOPIC);
  at = put(out, at, topic);
  at = put(out, at, KEY_PARTITION);
  at = writeUint(out, at, f.partition);
  at = put(out, at, KEY_COUNT);
  at = writeUint(out, at, f.count);
  at = put(out, at, KEY_NEXT);
  at = writeUint(out, at, f.next);
  at = put(out, at, KEY_RECORDS);
  at = writeHead(out, at, 0x40, n);
  out.set(records, at);
  return out;
}

function topicBytes(topic: string): Uint8Array {
  let b = topicCache.get(topic);
  if (b === undefined) {
    if (topicCache.size >= TOPIC_CACHE_MAX) topicCache.clear();
    b = cborText(topic);
    topicCache.set(topic, b);
  }
  return b;
}
