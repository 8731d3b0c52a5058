/**
 * MinHeap (src/common/min-heap.ts) against a sorted-array oracle: random pushes and pops, with many
 * equal keys (the tie decides), across growth, with and without values.
 */
import { describe, expect, it } from 'vitest';
import { MinHeap } from '../../src/common/min-heap.js';
import { mulberry32, testSeed } from '../support/seeded-prng.js';

type Entry = [key: number, tie: number, value: number];

const byKeyThenTie = (a: Entry, b: Entry): number => a[0] - b[0] || a[1] - b[1];

describe('MinHeap', () => {
  it('pops entries in (key, tie) order, as a sorted array does, through random pushes and pops', () => {
    const seed = testSeed(0x5eed);
    const rnd = mulberry32(seed);
    const heap = new MinHeap(1, (n) => new Uint16Array(n));
    const oracle: Entry[] = [];
    let popped = 0;
    for (let step = 0; step < 20_000; step++) {
      if (oracle.length === 0 || rnd.float() < 0.55) {
        // Few distinct keys: ties are common and must be broken by `tie`.
        const e: Entry = [rnd.int(0, 50), rnd.int(0, 1_000_000), rnd.int(0, 0xffff)];
        heap.push(e[0], e[1], e[2]);
        oracle.push(e);
        oracle.sort(byKeyThenTie);
      } else {
        const want = oracle.shift()!;
        expect([heap.topKey, heap.topTie, heap.topValue], `seed ${seed}, step ${step}`).toEqual(want);
        heap.pop();
        popped++;
      }
      expect(heap.size).toBe(oracle.length);
    }
    for (const want of oracle) {
      expect([heap.topKey, heap.topTie, heap.topValue]).toEqual(want);
      heap.pop();
    }
    expect(popped).toBeGreaterThan(1000);
    expect(heap.size).toBe(0);
    expect(heap.topKey).toBe(Infinity);
  });

  it('keeps keys and ties that are not small integers (times, large offsets)', () => {
    const heap = new MinHeap(4);
    const entries: Entry[] = [
      [1_700_000_000_123.5, 2 ** 52, 0],
      [1_700_000_000_123.5, 7, 0],
      [-1, 0, 0],
      [Number.MAX_SAFE_INTEGER, 1, 0],
      [0.25, 3, 0],
    ];
    for (const [k, t] of entries) heap.push(k, t);
    const out: Array<[number, number]> = [];
    while (heap.size > 0) {
      out.push([heap.topKey, heap.topTie]);
      heap.pop();
    }
    expect(out).toEqual([...entries].sort(byKeyThenTie).map(([k, t]) => [k, t]));
  });

  it('costs its arrays only: 18 bytes an entry with a Uint16Array value, 16 without, doubling when full', () => {
    const withValues = new MinHeap(1024, (n) => new Uint16Array(n));
    const without = new MinHeap(1024);
    expect(withValues.memoryBytes).toBe(1024 * 18);
    expect(without.memoryBytes).toBe(1024 * 16);
    for (let i = 0; i < 1025; i++) without.push(i, i);
    expect(without.memoryBytes).toBe(2048 * 16);
  });

  it('pop on an empty heap does nothing; clear empties it', () => {
    const heap = new MinHeap(16);
    heap.pop();
    expect(heap.size).toBe(0);
    heap.push(3, 0);
    heap.push(1, 0);
    heap.clear();
    expect(heap.size).toBe(0);
    expect(heap.topKey).toBe(Infinity);
    heap.push(2, 0);
    expect(heap.topKey).toBe(2);
  });
});
