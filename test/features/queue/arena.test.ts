import { describe, expect, it } from 'vitest';
import { FifoArena } from '../../../src/features/queue/arena.js';
import { mulberry32 } from '../../support/seeded-prng.js';

describe('FifoArena', () => {
  it('hands out regions that never overlap a live one, released in order, over many wraps', () => {
    for (const seed of [1, 2, 3, 42]) {
      const rng = mulberry32(seed);
      const arena = new FifoArena(1000);
      const live: Array<{ view: Uint8Array; end: number; content: Uint8Array }> = [];
      let inArena = 0;
      let outside = 0;
      for (let step = 0; step < 20_000; step++) {
        if (live.length > 0 && (rng.float() < 0.45 || live.length > 6)) {
          const r = live.shift()!;
          // Still intact: nothing taken after it wrote over it.
          expect(Buffer.compare(r.view, r.content), `seed ${seed} step ${step}`).toBe(0);
          arena.release(r.end);
          continue;
        }
        const bytes = new Uint8Array(rng.int(1, 200));
        rng.fill(bytes);
        const r = arena.copy(bytes);
        if (r === null) {
          outside++;
          continue;
        }
        inArena++;
        expect(Buffer.compare(r.view, bytes)).toBe(0);
        live.push({ view: r.view, end: r.end, content: bytes });
      }
      for (const r of live) expect(Buffer.compare(r.view, r.content), `seed ${seed} at the end`).toBe(0);
      // Most fit: the arena is reused, not bypassed.
      expect(inArena).toBeGreaterThan(outside * 3);
    }
  });

  it('refuses what cannot fit and starts over once everything is released', () => {
    const arena = new FifoArena(100);
    expect(arena.copy(new Uint8Array(100))).toBeNull(); // never the whole buffer (full = empty)
    const a = arena.copy(new Uint8Array(60).fill(1))!;
    expect(arena.copy(new Uint8Array(50))).toBeNull(); // 40 left at the end, nothing free before
    const b = arena.copy(new Uint8Array(30).fill(2))!;
    expect(b.view.byteOffset - a.view.byteOffset).toBe(60);
    arena.release(a.end);
    const c = arena.copy(new Uint8Array(50).fill(3))!; // wraps to the front, before b
    expect(c.view.byteOffset).toBe(a.view.byteOffset);
    expect([...b.view].every((x) => x === 2)).toBe(true);
    arena.release(b.end);
    arena.release(c.end);
    const d = arena.copy(new Uint8Array(99))!;
    expect(d.view.byteOffset).toBe(a.view.byteOffset); // empty: from the start again
  });
});
