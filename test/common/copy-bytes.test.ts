import { expect, it } from 'vitest';
import { copyBytes } from '../../src/common/copy-bytes.js';
import { mulberry32 } from '../support/seeded-prng.js';

it('copies exactly src[start, end) to dst at `at`, between plain and shared memory, at every alignment and size class', () => {
  const rnd = mulberry32(11);
  const kinds = [(n: number) => new Uint8Array(n), (n: number) => new Uint8Array(new SharedArrayBuffer(n))];
  const sizes = [0, 1, 16, 17, 1023, 1024, 1025, 4096 + 3, 64 * 1024, 64 * 1024 + 5, 200_001];
  for (const makeSrc of kinds) {
    for (const makeDst of kinds) {
      for (const n of sizes) {
        for (let trial = 0; trial < 4; trial++) {
          const src = makeSrc(n + 32);
          rnd.fill(src);
          const dst = makeDst(n + 32);
          dst.fill(0xab);
          const start = rnd.int(0, 15);
          const at = rnd.int(0, 15);
          copyBytes(dst, at, src, start, start + n);
          const want = new Uint8Array(n + 32).fill(0xab);
          want.set(src.subarray(start, start + n), at);
          expect(Buffer.from(dst).equals(Buffer.from(want))).toBe(true);
        }
      }
    }
  }
});

it('works on views that do not start at their buffer’s beginning', () => {
  const sab = new SharedArrayBuffer(100_000);
  const dst = new Uint8Array(sab, 13, 90_000);
  const src = new Uint8Array(new ArrayBuffer(100_000), 5, 80_000);
  for (let i = 0; i < src.length; i++) src[i] = i % 251;
  copyBytes(dst, 7, src, 3, 70_003);
  for (let i = 0; i < 70_000; i++) if (dst[7 + i] !== (3 + i) % 251) throw new Error(`byte ${i}`);
  expect(dst[6]).toBe(0);
  expect(dst[70_007]).toBe(0);
});
