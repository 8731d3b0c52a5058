import { describe, expect, it } from 'vitest';
import { Histogram } from '../../src/common/histogram.js';
import { mulberry32 } from '../support/seeded-prng.js';

/** Uniform floats in [0, 1) from the shared seeded PRNG, so failures reproduce. */
const prng = (seed: number): (() => number) => mulberry32(seed).float;

/** The same definition percentile() uses: the smallest value with at least p % of samples ≤ it. */
function referencePercentile(sorted: number[], p: number): number {
  if (p === 0) return sorted[0]!;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length - 1e-9));
  return sorted[rank - 1]!;
}

const PERCENTILES = [0, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 99.999, 100];

function checkAgainstReference(h: Histogram, values: number[]): void {
  const sorted = [...values].sort((a, b) => a - b);
  const bound = h.relativePrecision;
  for (const p of PERCENTILES) {
    const ref = referencePercentile(sorted, p);
    const got = h.percentile(p);
    // Never below the true value; at most one bucket width (≤ ref/H) above it.
    expect(got, `p${p}`).toBeGreaterThanOrEqual(ref);
    expect(got - ref, `p${p}: got ${got}, reference ${ref}`).toBeLessThanOrEqual(ref * bound);
  }
  expect(h.count).toBe(values.length);
  expect(h.min).toBe(sorted[0]);
  expect(h.max).toBe(sorted[sorted.length - 1]);
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  expect(h.mean).toBeCloseTo(mean, 6);
}

describe('Histogram', () => {
  it('is exact below 2^subBucketBits', () => {
    const h = new Histogram();
    for (let v = 0; v < 2048; v++) h.record(v);
    expect(h.percentile(50)).toBe(1023);
    expect(h.percentile(100)).toBe(2047);
    expect(h.percentile(0)).toBe(0);
    expect(h.min).toBe(0);
    expect(h.count).toBe(2048);
  });

  for (const bits of [8, 11]) {
    it(`matches a sorted reference within 1/${2 ** (bits - 1)} over 1 µs … 100 s (subBucketBits ${bits})`, () => {
      for (const seed of [1, 2, 3]) {
        const rnd = prng(seed);
        const h = new Histogram({ highest: 1e8, subBucketBits: bits });
        const values: number[] = [];
        for (let i = 0; i < 50_000; i++) {
          // Log-uniform over 1 … 1e8 plus a cluster, like a latency distribution with a tail.
          const v = i % 3 === 0 ? Math.round(10 ** (rnd() * 8)) : Math.round(500 + rnd() * 100);
          values.push(v);
          h.record(v);
        }
        checkAgainstReference(h, values);
      }
    });
  }

  it('handles nanoseconds up to 100 s (values above 2^32)', () => {
    const rnd = prng(7);
    const h = new Histogram({ highest: 1e11 });
    const values: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      const v = Math.round(10 ** (3 + rnd() * 8)); // 1 µs … 100 s in ns
      values.push(v);
      h.record(v);
    }
    checkAgainstReference(h, values);
  });

  it('rounds, clamps negatives to 0, and keeps the true max above highest', () => {
    const h = new Histogram({ highest: 10_000 });
    h.record(-5);
    h.record(2.6);
    h.record(1e9);
    expect(h.min).toBe(0);
    expect(h.percentile(50)).toBe(3);
    expect(h.max).toBe(1e9);
    expect(h.percentile(100)).toBe(1e9);
    // The over-range sample sits in the last bucket: p99 reports at most the true max.
    expect(h.percentile(99)).toBeGreaterThanOrEqual(10_000);
    expect(h.percentile(99)).toBeLessThanOrEqual(1e9);
  });

  it('records counts', () => {
    const a = new Histogram();
    const b = new Histogram();
    a.record(1234, 10);
    for (let i = 0; i < 10; i++) b.record(1234);
    expect(a.toJSON()).toEqual(b.toJSON());
  });

  it('merge equals recording everything in one histogram', () => {
    const rnd = prng(11);
    const all = new Histogram();
    const parts = [new Histogram(), new Histogram(), new Histogram()];
    const values: number[] = [];
    for (let i = 0; i < 30_000; i++) {
      const v = Math.round(10 ** (rnd() * 7));
      values.push(v);
      all.record(v);
      parts[i % 3]!.record(v);
    }
    const merged = new Histogram().merge(parts[0]!).merge(parts[1]!).merge(parts[2]!).merge(new Histogram());
    expect(merged.toJSON()).toEqual(all.toJSON());
    checkAgainstReference(merged, values);
    expect(() => merged.merge(new Histogram({ subBucketBits: 8 }))).toThrow(RangeError);
  });

  it('round-trips through JSON (as postMessage would carry it)', () => {
    const rnd = prng(5);
    const h = new Histogram();
    for (let i = 0; i < 10_000; i++) h.record(Math.round(10 ** (rnd() * 8)));
    const back = Histogram.fromJSON(structuredClone(JSON.parse(JSON.stringify(h))));
    expect(back.toJSON()).toEqual(h.toJSON());
    for (const p of PERCENTILES) expect(back.percentile(p)).toBe(h.percentile(p));
    expect(back.mean).toBe(h.mean);
    const empty = Histogram.fromJSON(new Histogram().toJSON());
    expect(empty.count).toBe(0);
    expect(Number.isNaN(empty.percentile(50))).toBe(true);
    expect(() => Histogram.fromJSON({ ...h.toJSON(), count: 1 })).toThrow(TypeError);
  });

  it('recordCorrected back-fills the samples a stall hid (HdrHistogram semantics)', () => {
    const h = new Histogram();
    // A loop that should sample every 10 units stalled for 100: the 9 samples it missed would
    // have seen 90, 80, …, 10.
    h.recordCorrected(100, 10);
    expect(h.count).toBe(10);
    expect(h.min).toBe(10);
    expect(h.max).toBe(100);
    expect(h.mean).toBe(55);
    // Below or at the interval nothing is added.
    const g = new Histogram();
    g.recordCorrected(10, 10);
    g.recordCorrected(5, 10);
    g.recordCorrected(50, 0);
    expect(g.count).toBe(3);

    // The classic example: 10 000 samples of 1 then one 100 000 stall, expected interval 1 →
    // the corrected p50 is no longer 1.
    const raw = new Histogram();
    const corrected = new Histogram();
    for (let i = 0; i < 10_000; i++) {
      raw.record(1);
      corrected.recordCorrected(1, 1);
    }
    raw.record(100_000);
    corrected.recordCorrected(100_000, 1);
    expect(raw.percentile(50)).toBe(1);
    expect(raw.percentile(99)).toBe(1);
    expect(corrected.count).toBe(10_000 + 100_000);
    expect(corrected.percentile(50)).toBeGreaterThan(40_000);
    expect(corrected.percentile(99)).toBeGreaterThan(98_000);
  });

  it('rejects bad options and percentiles', () => {
    expect(() => new Histogram({ subBucketBits: 1 })).toThrow(RangeError);
    expect(() => new Histogram({ highest: 100 })).toThrow(RangeError);
    const h = new Histogram();
    h.record(1);
    expect(() => h.percentile(101)).toThrow(RangeError);
    h.reset();
    expect(h.count).toBe(0);
    expect(Number.isNaN(h.max)).toBe(true);
  });
});
