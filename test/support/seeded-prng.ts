/**
 * Small seeded PRNG for reproducible randomized tests (mulberry32, public domain,
 * https://gist.github.com/tommyettinger/46a874533244883189143505d203312c).
 * Log the seed in failures so a run can be replayed.
 */

export interface Prng {
  /** Next 32-bit unsigned integer. */
  u32(): number;
  /** Uniform float in [0, 1). */
  float(): number;
  /** Uniform integer in [min, max] (inclusive). */
  int(min: number, max: number): number;
  /** Fill `bytes` with pseudo-random bytes. */
  fill(bytes: Uint8Array): void;
}

export function mulberry32(seed: number): Prng {
  let state = seed >>> 0;
  const u32 = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  return {
    u32,
    float: () => u32() / 2 ** 32,
    int: (min, max) => min + Math.floor((u32() / 2 ** 32) * (max - min + 1)),
    fill: (bytes) => {
      for (let i = 0; i < bytes.length; i++) bytes[i] = u32() & 0xff;
    },
  };
}

/** Seed from the environment (TEST_SEED) for replays, else a fixed default. */
export function testSeed(fallback: number): number {
  const fromEnv = process.env['TEST_SEED'];
  return fromEnv === undefined ? fallback : Number(fromEnv) >>> 0;
}
