import { describe, expect, it } from 'vitest';
import { IdTable } from '../../src/common/id-table.js';
import { mulberry32, testSeed } from '../support/seeded-prng.js';

describe('IdTable', () => {
  it('agrees with a Map over random sets, gets, takes and deletes of sequential and scattered ids', () => {
    const seed = testSeed(0x1d7ab1e);
    const rng = mulberry32(seed);
    const table = new IdTable<string>(8);
    const model = new Map<number, string>();
    let next = 0xffff_fff0; // wraps past 2^32 during the run, as a partition's ids do
    const live: number[] = [];
    for (let step = 0; step < 50_000; step++) {
      const r = rng.float();
      if (r < 0.4 || live.length === 0) {
        const id = rng.float() < 0.9 ? next : rng.int(1, 0xffff_ffff);
        next = (next + 1) >>> 0 || 1;
        const v = `v${step}`;
        table.set(id, v);
        if (!model.has(id)) live.push(id);
        model.set(id, v);
      } else if (r < 0.75) {
        // Mostly the oldest (acks come in order), sometimes any (fetches end whenever).
        const at = rng.float() < 0.7 ? 0 : rng.int(0, live.length - 1);
        const id = live[at]!;
        live.splice(at, 1);
        expect(table.take(id), `seed ${seed} step ${step}`).toBe(model.get(id));
        model.delete(id);
      } else if (r < 0.85) {
        const id = rng.float() < 0.5 && live.length > 0 ? live[rng.int(0, live.length - 1)]! : rng.int(1, 0xffff_ffff);
        const had = model.delete(id);
        if (had) live.splice(live.indexOf(id), 1);
        expect(table.delete(id), `seed ${seed} step ${step}`).toBe(had);
      } else {
        const id = rng.float() < 0.7 && live.length > 0 ? live[rng.int(0, live.length - 1)]! : rng.int(1, 0xffff_ffff);
        expect(table.get(id), `seed ${seed} step ${step}`).toBe(model.get(id));
        expect(table.has(id)).toBe(model.has(id));
      }
      expect(table.size).toBe(model.size);
    }
    for (const [id, v] of model) expect(table.get(id)).toBe(v);
  });

  it('lists values oldest id first across the 2^32 wrap, and clears', () => {
    const table = new IdTable<number>();
    const ids = [0xffff_fffd, 0xffff_fffe, 0xffff_ffff, 1, 2, 3];
    for (const id of [3, 0xffff_fffe, 1, 0xffff_fffd, 2, 0xffff_ffff]) table.set(id, id);
    expect(table.valuesInOrder(4)).toEqual(ids);
    table.delete(0xffff_fffe);
    table.delete(2);
    expect(table.valuesInOrder(4)).toEqual([0xffff_fffd, 0xffff_ffff, 1, 3]);
    table.clear();
    expect(table.size).toBe(0);
    expect(table.valuesInOrder(4)).toEqual([]);
    expect(table.get(3)).toBeUndefined();
  });

  it('keeps a long-lived id findable while thousands of short ones come and go around it', () => {
    const table = new IdTable<string>();
    table.set(5, 'standing fetch');
    for (let id = 6; id < 100_000; id++) {
      table.set(id, 'produce');
      expect(table.take(id)).toBe('produce');
    }
    expect(table.get(5)).toBe('standing fetch');
    expect(table.size).toBe(1);
  });

  it('refuses id 0 and ids outside 32 bits', () => {
    const table = new IdTable<string>();
    expect(() => table.set(0, 'x')).toThrow(RangeError);
    expect(() => table.set(2 ** 32, 'x')).toThrow(RangeError);
    expect(() => table.set(1.5, 'x')).toThrow(RangeError);
  });
});
