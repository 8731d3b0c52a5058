import { expect, it } from 'vitest';
import { FrameArena } from '../../src/gateway/frame-arena.js';

it('hands out disjoint 8-aligned regions of one buffer until full, then null; reset reuses them', () => {
  const arena = new FrameArena(64);
  const a = arena.take(5)!;
  const b = arena.take(16)!;
  expect(a.buffer).toBe(b.buffer);
  expect([a.byteOffset, a.length, b.byteOffset, b.length]).toEqual([0, 5, 8, 16]);
  a.fill(1);
  b.fill(2);
  expect([...a].every((x) => x === 1) && [...b].every((x) => x === 2)).toBe(true);
  expect(arena.used).toBe(24);
  expect(arena.take(41)).toBeNull(); // 40 bytes left
  const c = arena.take(40)!;
  expect(c.byteOffset).toBe(24);
  expect(arena.take(1)).toBeNull();
  arena.reset();
  expect(arena.used).toBe(0);
  expect(arena.take(64)!.byteOffset).toBe(0);
});
