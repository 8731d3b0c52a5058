import { describe, expect, it } from 'vitest';
import { AuthFailureLimiter, ConnectionLimits, KeyedCounter, addressKey, authRateLimited, tooManyConnections } from '../../src/security/limits.js';

describe('addressKey', () => {
  it.each([
    ['1.2.3.4', '1.2.3.4'],
    ['::ffff:1.2.3.4', '1.2.3.4'],
    ['::FFFF:10.0.0.1', '10.0.0.1'],
    ['0000:0000:0000:0000:0000:ffff:0102:0304', '1.2.3.4'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['2001:0db8:0000:0000:ffff::2', '2001:db8:0:0::/64'],
    ['2001:db8:0:0:1:2:3:4', '2001:db8:0:0::/64'],
    ['2001:db8:1:2::', '2001:db8:1:2::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['not an address', 'not an address'],
  ])('%s → %s', (address, key) => {
    expect(addressKey(address)).toBe(key);
  });

  it('puts a whole IPv6 /64 under one key, and other /64s apart', () => {
    expect(addressKey('2001:db8:aa:bb:1::1')).toBe(addressKey('2001:db8:aa:bb:ffff:ffff:ffff:ffff'));
    expect(addressKey('2001:db8:aa:bb::1')).not.toBe(addressKey('2001:db8:aa:bc::1'));
  });
});

describe('AuthFailureLimiter', () => {
  const limits = { freeFailures: 3, refuseAfter: 6, windowMs: 60_000, delayMs: 100, maxDelayMs: 350 };

  it('free failures, then growing delays, then refusal until the window has passed', () => {
    const l = new AuthFailureLimiter(limits);
    const seen: string[] = [];
    for (let i = 0; i < 7; i++) {
      const v = l.check('1.2.3.4', 1000 + i);
      seen.push(v.verdict === 'allow' ? `allow ${v.delayMs}` : `refuse ${v.retryAfterMs}`);
      if (v.verdict === 'allow') l.recordFailure('1.2.3.4', 1000 + i);
    }
    expect(seen).toEqual(['allow 0', 'allow 0', 'allow 0', 'allow 100', 'allow 200', 'allow 350', 'refuse 59994']);
    expect(l.check('1.2.3.4', 60_999)).toEqual({ verdict: 'refuse', retryAfterMs: 1 });
    // The window passed: a fresh start.
    expect(l.check('1.2.3.4', 61_000)).toEqual({ verdict: 'allow', delayMs: 0 });
    l.recordFailure('1.2.3.4', 61_000);
    expect(l.check('1.2.3.4', 61_001)).toEqual({ verdict: 'allow', delayMs: 0 });
  });

  it('counts each address apart', () => {
    const l = new AuthFailureLimiter(limits);
    for (let i = 0; i < 6; i++) l.recordFailure('a', 0);
    expect(l.check('a', 1).verdict).toBe('refuse');
    expect(l.check('b', 1)).toEqual({ verdict: 'allow', delayMs: 0 });
  });

  it('tracks a bounded number of addresses, forgetting the oldest window first', () => {
    const l = new AuthFailureLimiter({ ...limits, maxTrackedAddresses: 3 });
    for (let i = 0; i < 6; i++) l.recordFailure('first', 0);
    for (let i = 0; i < 6; i++) l.recordFailure('second', 1);
    expect(l.check('first', 2).verdict).toBe('refuse');
    for (let i = 0; i < 1000; i++) l.recordFailure(`10.0.${i >> 8}.${i & 255}`, 10 + i);
    expect(l.trackedAddresses).toBe(3);
    expect(l.check('first', 2000)).toEqual({ verdict: 'allow', delayMs: 0 });
    l.recordFailure('first', 2000);
    for (let i = 0; i < 5; i++) l.recordFailure('first', 2000);
    expect(l.check('first', 2001).verdict).toBe('refuse');
    expect(l.trackedAddresses).toBe(3);
  });

  it('refuses nonsense limits', () => {
    expect(() => new AuthFailureLimiter({ freeFailures: 5, refuseAfter: 5 })).toThrow(RangeError);
    expect(() => new AuthFailureLimiter({ maxTrackedAddresses: 0 })).toThrow(RangeError);
  });

  it('AUTH_RATE_LIMITED is retryable and says when', () => {
    expect(authRateLimited(1500)).toMatchObject({ code: 'AUTH_RATE_LIMITED', retryable: true, details: { retryAfterMs: 1500 } });
  });
});

describe('connection limits', () => {
  it('counts per address and per principal up to their maxima, and forgets released keys', () => {
    const c = new ConnectionLimits({ maxPerAddress: 2, maxPerPrincipal: 3 });
    expect(c.admitAddress('1.2.3.4')).toBeNull();
    expect(c.admitAddress('1.2.3.4')).toBeNull();
    expect(c.admitAddress('1.2.3.4')).toEqual({ scope: 'address', limit: 2 });
    expect(c.admitAddress('5.6.7.8')).toBeNull();
    for (let i = 0; i < 3; i++) expect(c.admitPrincipal('alice')).toBeNull();
    expect(c.admitPrincipal('alice')).toEqual({ scope: 'principal', limit: 3 });
    expect(c.admitPrincipal('bob')).toBeNull();
    c.releaseAddress('1.2.3.4');
    expect(c.connectionsOf('address', '1.2.3.4')).toBe(1);
    expect(c.admitAddress('1.2.3.4')).toBeNull();
    c.releasePrincipal('alice');
    expect(c.admitPrincipal('alice')).toBeNull();
    expect(() => c.releasePrincipal('nobody')).toThrow(RangeError);
    expect(tooManyConnections({ scope: 'principal', limit: 3 })).toMatchObject({ code: 'TOO_MANY_CONNECTIONS', retryable: true, details: { scope: 'principal', limit: 3 } });
  });

  it('memory follows live connections', () => {
    const k = new KeyedCounter(5);
    for (let i = 0; i < 100; i++) expect(k.tryAcquire(`k${i}`)).toBe(true);
    expect(k.size).toBe(100);
    for (let i = 0; i < 100; i++) k.release(`k${i}`);
    expect(k.size).toBe(0);
    expect(() => new KeyedCounter(0)).toThrow(RangeError);
  });
});
