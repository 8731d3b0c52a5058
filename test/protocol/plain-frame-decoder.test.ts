import { describe, expect, it } from 'vitest';
import { decodeFrame, decodeFrameWithCborX, encodeFrame } from '../../src/protocol/cbor.js';
import { decodePlainFrame } from '../../src/protocol/plain-frame-decoder.js';
import { mulberry32 } from '../support/seeded-prng.js';

/** A float in [0, 1) from the shared seeded PRNG, so a failure names a seed that reproduces it. */
function rng(seed: number): () => number {
  const prng = mulberry32(seed);
  return () => prng.float();
}

const KEYS = ['op', 'id', 'topic', 'records', 'partition', 'sub', 'producerId', 'sequence', 'group', 'parts', 'code', 'message'];

function ascii(r: () => number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(32 + Math.floor(r() * 95));
  return s;
}

/** A value of every kind a frame may hold, in every size class of its CBOR head. */
function value(r: () => number, depth: number, plainOnly: boolean): unknown {
  const kinds = plainOnly ? 11 : 15;
  switch (Math.floor(r() * kinds)) {
    case 0:
      return Math.floor(r() * 24);
    case 1:
      return [23, 24, 255, 256, 65535, 65536, 0xffffffff][Math.floor(r() * 7)]!; // each head size's edges
    case 2:
      return Math.floor(r() * 2 ** 32);
    case 3:
      return -1 - Math.floor(r() * [24, 256, 65536, 2 ** 32][Math.floor(r() * 4)]!);
    case 4:
      return 2 ** 32 + Math.floor(r() * 2 ** 40); // cbor-x writes these as float64
    case 5:
      return ascii(r, Math.floor(r() * 70));
    case 6: {
      // Every head size; a 2-byte-length one now and then (deep comparison of them is slow).
      const b = new Uint8Array(r() < 0.03 ? 70_000 : [0, 1, 23, 24, 300][Math.floor(r() * 5)]!);
      for (let i = 0; i < b.length; i++) b[i] = Math.floor(r() * 256);
      return b;
    }
    case 7:
      return [true, false, null, undefined][Math.floor(r() * 4)];
    case 8:
      return depth > 3 ? 1 : Array.from({ length: Math.floor(r() * 5) }, () => value(r, depth + 1, plainOnly));
    case 9:
      return depth > 3 ? 2 : map(r, depth + 1, plainOnly);
    case 10:
      return r() * 1e6 + 0.5; // a non-integer: float64 or float32, either is compared
    // Outside the plain subset: cbor-x decodes these.
    case 11:
      return 'naïve ünïcode ' + ascii(r, 3);
    case 12:
      return BigInt(2 ** 53) * 4n + 1n;
    case 13:
      return new Date(1_700_000_000_000 + Math.floor(r() * 1e6));
    default:
      return ascii(r, 65 + Math.floor(r() * 200));
  }
}

function map(r: () => number, depth: number, plainOnly: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const n = Math.floor(r() * 7);
  for (let i = 0; i < n; i++) {
    const key = r() < 0.8 ? KEYS[Math.floor(r() * KEYS.length)]! : ascii(r, 1 + Math.floor(r() * 22));
    out[key] = value(r, depth, plainOnly);
  }
  return out;
}

/** Arrays nested `depth` deep around 1: deeper than the plain decoder goes. */
function nested(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

/**
 * Where two decoded values differ (null when they are the same): types and prototypes (Buffer is
 * not Uint8Array), key order, byte string contents. Faster than a deep toStrictEqual on big byte
 * strings, and stricter about key order.
 */
function difference(a: unknown, b: unknown, path = '$'): string | null {
  if (Object.is(a, b)) return null;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return `${path}: ${String(a)} vs ${String(b)}`;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return `${path}: prototypes differ`;
  if (a instanceof Uint8Array) return Buffer.compare(a, b as Uint8Array) === 0 ? null : `${path}: bytes differ`;
  if (a instanceof Date) return a.getTime() === (b as Date).getTime() ? null : `${path}: dates differ`;
  if (a instanceof Map) return difference([...a], [...(b as Map<unknown, unknown>)], path);
  const ka = Object.keys(a);
  const kb = Object.keys(b as object);
  if (ka.join('\0') !== kb.join('\0')) return `${path}: keys ${ka.join(',')} vs ${kb.join(',')}`;
  for (const k of ka) {
    const d = difference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`);
    if (d !== null) return d;
  }
  return null;
}

/** What decodeFrame returns, or the error it throws, against cbor-x alone on the same bytes. */
function outcome(decode: (b: Uint8Array) => unknown, bytes: Uint8Array): { value?: unknown; error?: string } {
  try {
    return { value: decode(bytes) };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

describe('plain frame decoder', () => {
  it('decodes a produce frame as the SDK sends it, records as a view of the input', () => {
    const records = new Uint8Array(730).map((_, i) => i & 0xff);
    const wire = new Uint8Array(encodeFrame({ op: 'produce', topic: 'bench', records, partition: 3, id: 4001 }));
    const frame = decodePlainFrame(wire);
    expect(frame).toStrictEqual({ op: 'produce', topic: 'bench', records, partition: 3, id: 4001 });
    const r = frame!.records as Uint8Array;
    expect(r.buffer).toBe(wire.buffer);
    expect(r.byteOffset).toBe(wire.indexOf(0, 20));
    // Short texts come back as the same string each time.
    expect(decodePlainFrame(wire)!.topic).toBe(frame!.topic);
  });

  it('returns what cbor-x returns for 1,000 random frames of the plain subset, and decodes them itself', () => {
    const r = rng(20261122);
    let plain = 0;
    for (let i = 0; i < 1000; i++) {
      const frame = map(r, 0, true);
      const bytes = new Uint8Array(encodeFrame(frame));
      const expected = decodeFrameWithCborX(bytes);
      const fast = decodePlainFrame(bytes);
      if (fast !== undefined) {
        plain++;
        expect(difference(fast, expected), `frame ${i}`).toBeNull();
      }
      expect(difference(decodeFrame(bytes), expected), `frame ${i}`).toBeNull();
    }
    // Only frames with float32-encoded non-integers (cbor-x rounds them) are left to cbor-x.
    expect(plain).toBeGreaterThan(500);
  });

  it('leaves everything outside the subset to cbor-x, with the same result', () => {
    const r = rng(7);
    let fallbacks = 0;
    for (let i = 0; i < 600; i++) {
      const frame = map(r, 0, false);
      const bytes = new Uint8Array(encodeFrame(frame));
      if (decodePlainFrame(bytes) === undefined) fallbacks++;
      expect(difference(decodeFrame(bytes), decodeFrameWithCborX(bytes)), `frame ${i}`).toBeNull();
    }
    expect(fallbacks).toBeGreaterThan(150);
    const cases: unknown[] = [
      JSON.parse('{"__proto__": 5, "a": 1}'), // cbor-x renames the key
      { text: 'é' },
      { n: 2n ** 64n - 1n },
      { deep: nested(20) },
      new Map<unknown, unknown>([[1, 'integer key']]),
      [1, 2, 3], // not a map at top level
      'text',
    ];
    for (const c of cases) {
      const bytes = new Uint8Array(encodeFrame(c as object));
      expect(decodePlainFrame(bytes)).toBeUndefined();
      expect(difference(decodeFrame(bytes), decodeFrameWithCborX(bytes))).toBeNull();
    }
  });

  it('never accepts a truncated, overlong or corrupted frame that cbor-x would not', () => {
    const frame = { op: 'produce', topic: 'orders', records: new Uint8Array(300).fill(7), partition: 70_000, id: 2 ** 33, list: [1, -300, 'x', null] };
    const wire = new Uint8Array(encodeFrame(frame));
    for (let n = 0; n < wire.length; n++) {
      const prefix = wire.slice(0, n);
      expect(decodePlainFrame(prefix), `prefix of ${n} bytes`).toBeUndefined();
      expect(difference(outcome(decodeFrame, prefix), outcome(decodeFrameWithCborX, prefix))).toBeNull();
    }
    const overlong = new Uint8Array(wire.length + 1);
    overlong.set(wire);
    expect(decodePlainFrame(overlong)).toBeUndefined();
    expect(difference(outcome(decodeFrame, overlong), outcome(decodeFrameWithCborX, overlong))).toBeNull();
    // Random byte flips: the same value or the same error as cbor-x, never a different answer.
    const r = rng(99);
    for (let i = 0; i < 5000; i++) {
      const bad = wire.slice();
      const flips = 1 + Math.floor(r() * 3);
      for (let f = 0; f < flips; f++) bad[Math.floor(r() * Math.min(bad.length, 64))] = Math.floor(r() * 256);
      expect(difference(outcome(decodeFrame, bad), outcome(decodeFrameWithCborX, bad)), `mutation ${i}`).toBeNull();
    }
  });
});
