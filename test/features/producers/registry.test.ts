/** Who may use a producer id (pure): binding, reclaim, fencing, expiry and the cap. */
import { describe, expect, it } from 'vitest';
import { ProducerRegistry, hashSecret, newSecret } from '../../../src/features/producers/registry.js';

const DAY = 24 * 3600 * 1000;

function codeOf(f: () => void): string | undefined {
  try {
    f();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

describe('ProducerRegistry', () => {
  it('accepts only the holding connection at the current epoch; a reclaim moves the id and fences the previous holder', () => {
    const r = new ProducerRegistry({ maxIds: 10, expiryMs: DAY });
    const secret = newSecret();
    expect(r.create(1, hashSecret(secret), 100, 0)).toMatchObject({ p: 1, e: 0, t: 0 });
    expect(codeOf(() => r.check(100, 1, undefined, 1))).toBeUndefined();
    expect(codeOf(() => r.check(100, 1, 0, 1))).toBeUndefined();
    expect(codeOf(() => r.check(100, 1, 1, 1))).toBe('BAD_REQUEST'); // never handed out
    expect(codeOf(() => r.check(200, 1, undefined, 1))).toBe('PRODUCER_ID_NOT_OWNED');
    expect(codeOf(() => r.check(200, 1, 0, 1))).toBe('PRODUCER_ID_NOT_OWNED');
    expect(codeOf(() => r.check(100, 2, undefined, 1))).toBe('PRODUCER_ID_NOT_OWNED'); // unknown id

    expect(codeOf(() => r.reclaim(1, hashSecret(newSecret()), 200, 2))).toBe('PRODUCER_ID_NOT_OWNED');
    expect(codeOf(() => r.check(100, 1, 0, 2))).toBeUndefined(); // a failed reclaim changes nothing
    expect(r.reclaim(1, hashSecret(secret), 200, 3)).toMatchObject({ p: 1, e: 1, t: 3 });
    expect(codeOf(() => r.check(100, 1, undefined, 4))).toBe('PRODUCER_FENCED');
    expect(codeOf(() => r.check(100, 1, 0, 4))).toBe('PRODUCER_FENCED');
    expect(codeOf(() => r.check(200, 1, 1, 4))).toBeUndefined();
    expect(codeOf(() => r.check(200, 1, 0, 4))).toBe('PRODUCER_FENCED');
    expect(codeOf(() => r.check(300, 1, 5, 4))).toBe('PRODUCER_ID_NOT_OWNED'); // a stranger, whatever epoch it claims
  });

  it('comes back from its entries with no holder; a reclaim continues the epoch', () => {
    const r = new ProducerRegistry({ maxIds: 10, expiryMs: DAY });
    const secret = newSecret();
    r.create(7, hashSecret(secret), 1, 0);
    r.reclaim(7, hashSecret(secret), 2, 1);
    const again = new ProducerRegistry({ maxIds: 10, expiryMs: DAY });
    again.load(r.entries(), 2);
    expect(codeOf(() => again.check(2, 7, undefined, 3))).toBe('PRODUCER_ID_NOT_OWNED');
    expect(again.reclaim(7, hashSecret(secret), 1, 3)).toMatchObject({ e: 2 });
    expect(codeOf(() => again.check(1, 7, 2, 3))).toBeUndefined();
  });

  it('forgets ids unused for expiryMs (a produce counts as a use), at load and in a sweep', () => {
    const r = new ProducerRegistry({ maxIds: 10, expiryMs: 7 * DAY });
    r.create(1, hashSecret(newSecret()), 1, 0);
    r.create(2, hashSecret(newSecret()), 1, 0);
    r.check(1, 2, undefined, 5 * DAY); // producer 2 produced on day 5
    expect(r.sweep(8 * DAY)).toBe(1);
    expect(codeOf(() => r.check(1, 1, undefined, 8 * DAY))).toBe('PRODUCER_ID_NOT_OWNED');
    expect(codeOf(() => r.check(1, 2, undefined, 8 * DAY))).toBeUndefined();
    const loaded = new ProducerRegistry({ maxIds: 10, expiryMs: 7 * DAY });
    loaded.load([{ p: 3, e: 0, h: 'ab'.repeat(32), t: 0 }, { p: 4, e: 0, h: 'cd'.repeat(32), t: 6 * DAY }, { p: 5, e: -1, h: 'x', t: 0 }], 8 * DAY);
    expect(loaded.entries().map((e) => e.p)).toEqual([4]);
  });

  it('tracks at most maxIds: the least recently used are forgotten first', () => {
    const r = new ProducerRegistry({ maxIds: 32, expiryMs: 365 * DAY });
    for (let id = 0; id < 32; id++) r.create(id, hashSecret(newSecret()), 1, id);
    r.check(1, 0, undefined, 100); // id 0 is in use: now the most recent
    r.create(32, hashSecret(newSecret()), 1, 101); // full: forgets 32/16 = 2 ids, the least recently used
    expect(r.size).toBe(31);
    const kept = new Set(r.entries().map((e) => e.p));
    expect(kept.has(0)).toBe(true);
    expect(kept.has(1)).toBe(false);
    expect(kept.has(2)).toBe(false);
    expect(kept.has(3)).toBe(true);
    expect(kept.has(32)).toBe(true);
    for (let id = 33; id < 1000; id++) r.create(id, hashSecret(newSecret()), 1, 101 + id);
    expect(r.size).toBeLessThanOrEqual(32);
  });
});
