import { describe, expect, it } from 'vitest';
import { ByteRateQuotas, Tenants, TokenBucket, quotaExceeded } from '../../src/security/quota.js';

/**
 * A producer that wants to send `chunk` bytes every `intervalMs` and obeys the delays it is told:
 * returns the bytes it got through in [0, durationMs) and the delays it was told.
 */
function steadyProducer(charge: (bytes: number, nowMs: number) => number, chunk: number, intervalMs: number, durationMs: number, startMs = 0) {
  let t = startMs;
  let bytes = 0;
  const delays: number[] = [];
  while (t < startMs + durationMs) {
    const delay = charge(chunk, t);
    bytes += chunk;
    delays.push(delay);
    t += Math.max(intervalMs, delay);
  }
  return { bytes, delays };
}

describe('byte-rate quotas', () => {
  const R = 1_000_000; // bytes per second

  it('slows a steady producer at twice its rate to its quota, within 10 %', () => {
    const q = new ByteRateQuotas({ ratesOf: (p) => (p === 'fast' ? { produce: { bytesPerSec: R } } : undefined) });
    const { bytes, delays } = steadyProducer((b, t) => q.chargeProduce('fast', b, t), 20_000, 10, 60_000);
    const rate = bytes / 60;
    expect(rate / R).toBeGreaterThan(0.9);
    expect(rate / R).toBeLessThan(1.1);
    // After the burst it is held back on most requests, and no delay is longer than its debt.
    expect(delays.slice(-1000).filter((d) => d > 0).length).toBeGreaterThan(900);
    expect(Math.max(...delays)).toBeLessThanOrEqual(Math.ceil((20_000 * 1000) / R) + 1);
  });

  it('measured per second after the burst, the rate is the quota within 10 %', () => {
    const bucket = new TokenBucket({ bytesPerSec: R, burstBytes: 100_000 }, 0);
    const perSecond = new Map<number, number>();
    steadyProducer(
      (b, t) => {
        perSecond.set(Math.floor(t / 1000), (perSecond.get(Math.floor(t / 1000)) ?? 0) + b);
        return bucket.charge(b, t);
      },
      7_000,
      3,
      20_000,
    );
    for (let s = 1; s < 19; s++) expect(Math.abs(perSecond.get(s)! / R - 1), `second ${s}`).toBeLessThan(0.1);
  });

  it("does not slow another principal, nor the same principal's other direction", () => {
    const q = new ByteRateQuotas({ ratesOf: () => ({ produce: { bytesPerSec: R }, consume: { bytesPerSec: R } }) });
    let t = 0;
    let slowDelays = 0;
    let consumeDelays = 0;
    // 'hog' produces at 3R; 'polite' produces at R/2 and 'hog' also consumes at R/2 meanwhile.
    while (t < 30_000) {
      q.chargeProduce('hog', 30_000, t);
      if (t % 10 === 0) {
        slowDelays += q.chargeProduce('polite', 5_000, t);
        consumeDelays += q.chargeConsume('hog', 5_000, t);
      }
      t += 10;
    }
    expect(slowDelays).toBe(0);
    expect(consumeDelays).toBe(0);
    expect(q.chargeProduce('hog', 1, t)).toBeGreaterThan(0);
  });

  it('never charges a principal without a quota, and keeps no bucket for it', () => {
    const q = new ByteRateQuotas({ ratesOf: (p) => (p === 'limited' ? { consume: { bytesPerSec: 10 } } : undefined) });
    expect(q.chargeProduce('free', 1e12, 0)).toBe(0);
    expect(q.chargeProduce('limited', 1e12, 0)).toBe(0); // no produce quota
    expect(q.size).toBe(0);
    expect(q.chargeConsume('limited', 30, 0)).toBe(2000); // 10 burst, 20 bytes of debt at 10 B/s
    expect(q.size).toBe(1);
  });

  it('a debt is the exact wait: after it, the next request within the rate is not delayed', () => {
    const b = new TokenBucket({ bytesPerSec: 1000, burstBytes: 1000 }, 0);
    expect(b.charge(1000, 0)).toBe(0);
    expect(b.charge(500, 0)).toBe(500);
    expect(b.delayMs(250)).toBe(250);
    expect(b.charge(0, 500)).toBe(0);
    expect(b.charge(100, 600)).toBe(0);
    expect(b.isFull(1599)).toBe(false);
    expect(b.isFull(1600)).toBe(true);
    // A clock that steps back refills nothing.
    expect(b.charge(1000, 1600)).toBe(0);
    expect(b.charge(1000, 1000)).toBe(1000);
  });

  it('sweep drops the buckets that are full again', () => {
    const q = new ByteRateQuotas({ ratesOf: () => ({ produce: { bytesPerSec: 1000 } }) });
    q.chargeProduce('a', 2000, 0);
    q.chargeProduce('b', 10, 0);
    expect(q.size).toBe(2);
    expect(q.sweep(100)).toBe(1); // b refilled its 10 bytes; a is still in debt
    expect(q.size).toBe(1);
    expect(q.sweep(2000)).toBe(1);
    expect(q.size).toBe(0);
  });

  it('refuses nonsense rates', () => {
    expect(() => new TokenBucket({ bytesPerSec: 0 }, 0)).toThrow(RangeError);
    expect(() => new TokenBucket({ bytesPerSec: 1, burstBytes: 0 }, 0)).toThrow(RangeError);
  });
});

describe('tenants', () => {
  const tenants = Tenants.parse([
    { name: 'acme', prefix: 'acme.', maxTopics: 2, maxStorageBytes: 1000 },
    { name: 'globex', prefix: 'globex.eu.' },
  ]);

  it('a tenant owns the topics under its prefix', () => {
    expect(tenants.ofTopic('acme.orders')?.name).toBe('acme');
    expect(tenants.ofTopic('acmecorp.orders')).toBeUndefined();
    expect(tenants.ofTopic('globex.eu.x')?.name).toBe('globex');
    expect(tenants.ofTopic('globex.us.x')).toBeUndefined();
    expect(tenants.byName('globex')?.prefix).toBe('globex.eu.');
  });

  it('counts topics against maxTopics', () => {
    expect(tenants.checkCreateTopic('acme.a', ['other', 'acme.x'])).toBeNull();
    expect(tenants.checkCreateTopic('acme.b', ['other', 'acme.x', 'acme.a'])).toEqual({ tenant: 'acme', quota: 'topics', limit: 2 });
    expect(tenants.checkCreateTopic('acme.a', ['acme.x', 'acme.a'])).toBeNull(); // exists already
    expect(tenants.checkCreateTopic('globex.eu.z', Array.from({ length: 100 }, (_, i) => `globex.eu.${i}`))).toBeNull();
    expect(tenants.checkCreateTopic('free', ['a', 'b'])).toBeNull();
  });

  it('checks storage', () => {
    expect(tenants.checkStorage('acme.a', 900, 100)).toBeNull();
    expect(tenants.checkStorage('acme.a', 900, 101)).toEqual({ tenant: 'acme', quota: 'storageBytes', limit: 1000 });
    expect(tenants.checkStorage('globex.eu.a', 1e15, 1)).toBeNull();
    expect(quotaExceeded({ tenant: 'acme', quota: 'topics', limit: 2 })).toMatchObject({ code: 'QUOTA_EXCEEDED', retryable: false, details: { tenant: 'acme', quota: 'topics', limit: 2 } });
  });

  it.each([
    ['not a list', {}, /must be a list/],
    ['bad name', [{ name: 'a b', prefix: 'a.' }], /tenant name/],
    ['prefix not ending in a dot', [{ name: 'a', prefix: 'acme' }], /ending in "."/],
    ['internal prefix', [{ name: 'a', prefix: '__x.' }], /"__"/],
    ['twice', [{ name: 'a', prefix: 'a.' }, { name: 'a', prefix: 'b.' }], /twice/],
    ['overlap', [{ name: 'a', prefix: 'a.' }, { name: 'b', prefix: 'a.b.' }], /overlap/],
    ['negative quota', [{ name: 'a', prefix: 'a.', maxTopics: -1 }], /maxTopics/],
    ['unknown field', [{ name: 'a', prefix: 'a.', owners: [] }], /unknown tenant field/],
  ])('refuses %s with BAD_CONFIG', (_label, value, message) => {
    expect(() => Tenants.parse(value)).toThrow(expect.objectContaining({ code: 'BAD_CONFIG', message: expect.stringMatching(message) }));
  });
});
