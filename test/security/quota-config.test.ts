/**
 * The quota configuration (BrokerOptions.security.quotas) read into ByteRateQuotas: the default
 * applies to every principal, each with its own budget; an override by name replaces it, else the
 * overrides of its roles (the highest rate of them; 0 is no limit); wrong values are BAD_CONFIG.
 */
import { describe, expect, it } from 'vitest';
import { loadQuotas } from '../../src/security/index.js';

const T = 1_000_000;

describe('loadQuotas', () => {
  it('gives every principal the default, each its own budget, and no quota at all without a rate', () => {
    const q = loadQuotas({ produceBytesPerSec: 1000 })!;
    // A full bucket (one second's worth) takes 1000 bytes at once; 500 more are half a second of debt.
    expect(q.chargeProduce('a', 1500, T)).toBe(500);
    expect(q.chargeProduce('b', 1000, T)).toBe(0);
    expect(q.chargeConsume('a', 1_000_000, T)).toBe(0); // no consume rate
    expect(loadQuotas(undefined)).toBeNull();
    expect(loadQuotas({ perPrincipal: { x: {} } })).toBeNull();
  });

  it('replaces the default by the principal\'s own override, else by its roles\' highest rate', () => {
    const q = loadQuotas({
      produceBytesPerSec: 1000,
      consumeBytesPerSec: 1000,
      perPrincipal: { vip: { produceBytesPerSec: 0 }, 'both-roles': { consumeBytesPerSec: 4000 } },
      perRole: { ingest: { produceBytesPerSec: 5000 }, bulk: { produceBytesPerSec: 8000, consumeBytesPerSec: 0 } },
    })!;
    expect(q.chargeProduce('vip', 10_000_000, T, ['ingest'])).toBe(0); // its own: no produce limit
    expect(q.chargeConsume('vip', 2000, T)).toBe(0); // its own override has no consume rate: none
    expect(q.chargeProduce('i', 6000, T, ['ingest'])).toBe(200);
    expect(q.chargeProduce('ib', 9000, T, ['ingest', 'bulk'])).toBe(125); // 8000/s of bulk
    expect(q.chargeConsume('ib', 10_000_000, T, ['ingest', 'bulk'])).toBe(0); // bulk: no consume limit
    expect(q.chargeConsume('other', 2000, T, ['reader'])).toBe(1000); // a role without an override: the default
    expect(q.chargeConsume('both-roles', 5000, T, ['bulk'])).toBe(250); // the name wins over the roles
  });

  it('refuses a rate that is not a positive number (BAD_CONFIG)', () => {
    for (const bad of [{ produceBytesPerSec: -1 }, { consumeBytesPerSec: Number.POSITIVE_INFINITY }, { perRole: { r: { produceBytesPerSec: '1' } } }, { perPrincipal: { p: null } }]) {
      expect(() => loadQuotas(bad as never), JSON.stringify(bad)).toThrow(expect.objectContaining({ code: 'BAD_CONFIG' }) as Error);
    }
  });
});
