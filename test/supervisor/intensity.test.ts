import { describe, expect, it } from 'vitest';
import { BackoffState, RestartIntensity, backoffDelay, validateBackoff } from '../../src/supervisor/internal.js';

describe('RestartIntensity (OTP MaxR/MaxT)', () => {
  it('allows `intensity` restarts within the period and refuses one more', () => {
    const ri = new RestartIntensity(3, 1000);
    expect([ri.record(0), ri.record(10), ri.record(20)]).toEqual([true, true, true]);
    expect(ri.record(30)).toBe(false);
  });

  it('intensity 0 escalates on the first restart', () => {
    expect(new RestartIntensity(0, 1000).record(5)).toBe(false);
  });

  it('forgets restarts once they are `period` ms old (now - t >= period)', () => {
    const ri = new RestartIntensity(3, 1000);
    ri.record(0);
    ri.record(500);
    ri.record(999);
    expect(ri.count(999)).toBe(3);
    expect(ri.count(1000)).toBe(2); // the one at 0 left the window
    expect(ri.record(1000)).toBe(true); // 500, 999, 1000
    expect(ri.record(1001)).toBe(false); // 500, 999, 1000, 1001
  });

  it('a steady rate below the limit never escalates', () => {
    const ri = new RestartIntensity(1, 100);
    for (let t = 0; t < 10_000; t += 100) expect(ri.record(t)).toBe(true);
    expect(ri.record(9_950)).toBe(false); // 9900 and 9950: two within 100 ms
  });

  it('reset() empties the window', () => {
    const ri = new RestartIntensity(1, 1000);
    ri.record(0);
    ri.reset();
    expect(ri.count(1)).toBe(0);
    expect(ri.record(1)).toBe(true);
  });
});

describe('backoffDelay', () => {
  it('grows exponentially from initialMs and is capped by maxMs', () => {
    const p = { initialMs: 100, maxMs: 1000 };
    expect([0, 1, 2, 3, 4, 5].map((a) => backoffDelay(p, a))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect([0, 1, 2, 3].map((a) => backoffDelay({ ...p, factor: 3 }, a))).toEqual([100, 300, 900, 1000]);
    expect(backoffDelay({ ...p, factor: 1 }, 50)).toBe(100);
  });

  it('does not overflow for huge attempt numbers', () => {
    expect(backoffDelay({ initialMs: 10, maxMs: 5000 }, 10_000)).toBe(5000);
  });

  it('applies ±jitter around the base and clamps to [0, maxMs]', () => {
    const p = { initialMs: 100, maxMs: 1000, jitter: 0.5 };
    expect(backoffDelay(p, 0, () => 0)).toBe(50); // base * (1 - 0.5)
    expect(backoffDelay(p, 0, () => 0.5)).toBe(100);
    expect(backoffDelay(p, 0, () => 0.99999)).toBe(150);
    expect(backoffDelay(p, 4, () => 0.99999)).toBe(1000); // base 1000 (capped), +50% clamped
    // seeded sweep: always within bounds
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 1000; i++) {
      const attempt = i % 8;
      const base = Math.min(1000, 100 * 2 ** attempt);
      const d = backoffDelay(p, attempt, rnd);
      expect(d).toBeGreaterThanOrEqual(Math.floor(base * 0.5));
      expect(d).toBeLessThanOrEqual(Math.min(1000, Math.ceil(base * 1.5)));
    }
  });
});

describe('BackoffState', () => {
  const policy = { initialMs: 100, maxMs: 800, resetAfterMs: 1000 };

  it('grows on consecutive failures, including failed starts (no markStarted)', () => {
    const b = new BackoffState(policy);
    expect([b.next(0), b.next(10), b.next(20), b.next(30), b.next(40)]).toEqual([100, 200, 400, 800, 800]);
    expect(b.attempts).toBe(5);
  });

  it('keeps growing when the child crashes before staying up resetAfterMs', () => {
    const b = new BackoffState(policy);
    expect(b.next(0)).toBe(100);
    b.markStarted(100);
    expect(b.next(1099)).toBe(200); // up for 999 ms
    b.markStarted(1300);
    expect(b.next(1400)).toBe(400);
  });

  it('starts over after the child stayed up resetAfterMs', () => {
    const b = new BackoffState(policy);
    b.next(0);
    b.next(0);
    b.markStarted(300);
    expect(b.next(1300)).toBe(100); // up for exactly 1000 ms
    expect(b.next(1310)).toBe(200);
  });

  it('resetAfterMs defaults to maxMs', () => {
    const b = new BackoffState({ initialMs: 10, maxMs: 50 });
    b.next(0);
    b.markStarted(10);
    expect(b.next(59)).toBe(20);
    b.markStarted(100);
    expect(b.next(150)).toBe(10);
  });

  it('without a policy every delay is 0', () => {
    const b = new BackoffState(undefined);
    expect([b.next(0), b.next(0), b.next(0)]).toEqual([0, 0, 0]);
  });
});

describe('validateBackoff', () => {
  it('accepts a sane policy and names each problem of a bad one', () => {
    expect(validateBackoff({ initialMs: 10, maxMs: 100, factor: 2, jitter: 0.2 })).toEqual([]);
    const problems = validateBackoff({ initialMs: -1, maxMs: Number.NaN, factor: 0.5, jitter: 2, resetAfterMs: -3 });
    expect(problems).toHaveLength(5);
    expect(validateBackoff({ initialMs: 100, maxMs: 10 })).toHaveLength(1);
  });
});
