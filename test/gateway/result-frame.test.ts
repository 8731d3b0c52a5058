/**
 * The hand-encoded produce answer is the same bytes cbor-x writes for the same object (keys in the
 * same order), for every size class of id, partition, offset and count, with and without a route.
 */
import { expect, it } from 'vitest';
import { encodeProduceResult } from '../../src/gateway/result-frame.js';
import type { ProducePart } from '../../src/core/feature-host.js';
import { decodeFrame, encodeFrame } from '../../src/protocol/cbor.js';
import { mulberry32 } from '../support/seeded-prng.js';

const INTS = [0, 1, 23, 24, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 3, 2 ** 53 - 1];
const fresh = (n: number): Uint8Array => new Uint8Array(n);

it('writes the bytes cbor-x writes, for every size class of every field', () => {
  const rnd = mulberry32(11);
  const pick = <T>(xs: T[]): T => xs[rnd.int(0, xs.length - 1)]!;
  for (let round = 0; round < 400; round++) {
    const id = pick(INTS);
    const parts: ProducePart[] = [];
    const n = pick([0, 1, 2, 8, 23, 24, 64]);
    for (let i = 0; i < n; i++) parts.push([pick([0, 7, 24, 255, 256, 65_535]), pick(INTS), pick(INTS)]);
    const routed = rnd.int(0, 1) === 1;
    const route = routed ? new Uint8Array(new Uint16Array(pick([1, 11, 12, 200, 40_000])).fill(round).buffer) : undefined;
    const frame: Record<string, unknown> = { op: 'result', id, parts };
    if (route) frame.route = route;
    const ours = encodeProduceResult(id, parts, route, fresh);
    expect(Buffer.from(ours).equals(Buffer.from(encodeFrame(frame)))).toBe(true);
    const back = decodeFrame(ours) as Record<string, unknown>;
    expect(back.op).toBe('result');
    expect(back.id).toBe(id);
    expect(back.parts).toEqual(parts);
    if (route) expect(Buffer.from(back.route as Uint8Array).equals(Buffer.from(route))).toBe(true);
    else expect(back).not.toHaveProperty('route');
  }
});

it('writes exactly the frame into the memory it is given, however much larger', () => {
  const arena = new Uint8Array(4096).fill(0xee);
  const out = encodeProduceResult(5, [[3, 100, 2]], undefined, (n) => arena.subarray(64, 64 + n + 100));
  expect(out.buffer).toBe(arena.buffer);
  expect(out.byteOffset).toBe(64);
  expect(decodeFrame(out)).toEqual({ op: 'result', id: 5, parts: [[3, 100, 2]] });
  expect(arena[64 + out.length]).toBe(0xee);
});
