/**
 * The answer to a produce, `{ op: 'result', id, parts, route? }`, encoded by hand: the same bytes
 * cbor-x writes for that object (tested byte for byte). It is the most frequent frame the gateway
 * sends; at low rates, where each request runs with cold caches, cbor-x's general encoder (the
 * object, its keys, its writers) cost more than the rest of the answer.
 */
import type { FrameAllocator } from './frame-arena.js';
import { cborText, headBytes, put, uintBytes, writeHead, writeUint } from '../protocol/cbor-head.js';

const KEY_OP = cborText('op');
const VALUE_RESULT = cborText('result');
const KEY_ID = cborText('id');
const KEY_PARTS = cborText('parts');
const KEY_ROUTE = cborText('route');
const MAP_OF_3 = 0xa3;
const MAP_OF_4 = 0xa4;
const ARRAY_OF_3 = 0x83;

/** [partition, base offset, count] for each partition the request's records went to. */
import type { ProducePart } from '../core/feature-host.js';

export function encodeProduceResult(id: number, parts: readonly ProducePart[], route: Uint8Array | undefined, alloc: FrameAllocator): Uint8Array {
  let size = 1 + KEY_OP.length + VALUE_RESULT.length + KEY_ID.length + uintBytes(id) + KEY_PARTS.length + headBytes(parts.length);
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    size += 1 + uintBytes(p[0]) + uintBytes(p[1]) + uintBytes(p[2]);
  }
  if (route !== undefined) size += KEY_ROUTE.length + headBytes(route.length) + route.length;
  const out = alloc(size).subarray(0, size);
  let at = 0;
  out[at++] = route === undefined ? MAP_OF_3 : MAP_OF_4;
  at = put(out, at, KEY_OP);
  at = put(out, at, VALUE_RESULT);
  at = put(out, at, KEY_ID);
  at = writeUint(out, at, id);
  at = put(out, at, KEY_PARTS);
  at = writeHead(out, at, 0x80, parts.length);
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    out[at++] = ARRAY_OF_3;
    at = writeUint(out, at, p[0]);
    at = writeUint(out, at, p[1]);
    at = writeUint(out, at, p[2]);
  }
  if (route !== undefined) {
    at = put(out, at, KEY_ROUTE);
    at = writeHead(out, at, 0x40, route.length);
    at = put(out, at, route);
  }
  return out;
}
