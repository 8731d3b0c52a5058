import { describe, expect, it } from 'vitest';
import { computeAcks } from '../../src/client/acks.js';
import { recordSize, utf8Length } from '../../src/client/record-size.js';
import { BatchBuilder } from '../../src/protocol/batch-builder.js';

const route = (ps: number[]): Uint8Array => {
  const r = new Uint8Array(ps.length * 2);
  ps.forEach((p, i) => {
    r[2 * i] = p & 0xff;
    r[2 * i + 1] = p >>> 8;
  });
  return r;
};

describe('computeAcks', () => {
  it('single partition without route: consecutive offsets from baseOffset', () => {
    expect(computeAcks({ parts: [[3, 100, 3]] }, 3)).toEqual([
      { partition: 3, offset: 100 },
      { partition: 3, offset: 101 },
      { partition: 3, offset: 102 },
    ]);
  });

  it('multi-partition route: base of the partition plus earlier messages of the same partition', () => {
    // messages:   0  1  2    3  4  5
    // partitions: 2  0  2  300  0  2
    const acks = computeAcks(
      {
        parts: [
          [2, 10, 3],
          [0, 7, 2],
          [300, 0, 1],
        ],
        route: route([2, 0, 2, 300, 0, 2]),
      },
      6,
    );
    expect(acks).toEqual([
      { partition: 2, offset: 10 },
      { partition: 0, offset: 7 },
      { partition: 2, offset: 11 },
      { partition: 300, offset: 0 },
      { partition: 0, offset: 8 },
      { partition: 2, offset: 12 },
    ]);
  });

  it('offsets above 2^32 (floats on the wire) stay exact', () => {
    const base = 2 ** 40 + 5;
    expect(computeAcks({ parts: [[1, base, 2]] }, 2).map((a) => a.offset)).toEqual([base, base + 1]);
  });

  it('refuses answers that do not match the batch', () => {
    expect(() => computeAcks({ parts: [[0, 0, 2]] }, 3)).toThrow(/acknowledges 2/);
    expect(() => computeAcks({ parts: [[0, 0, 1], [1, 0, 1]] }, 2)).toThrow(/no route/);
    expect(() => computeAcks({ parts: [[0, 0, 1], [1, 0, 1]], route: route([0, 2]) }, 2)).toThrow(/not in parts/);
    expect(() => computeAcks({ parts: [[0, 0, 1], [1, 0, 1]], route: route([0, 0]) }, 2)).toThrow(/disagree/);
    expect(() => computeAcks({ parts: [] }, 0)).toThrow(/no parts/);
    // Malformed parts, with one part (the common answer) and with several.
    expect(() => computeAcks({ parts: [[0, '5', 1]] } as never, 1)).toThrow(/malformed part/);
    expect(() => computeAcks({ parts: [[0, 5]] } as never, 1)).toThrow(/malformed part/);
    expect(() => computeAcks({ parts: [[0, 0, 1], [1, null, 1]], route: route([0, 1]) } as never, 2)).toThrow(/malformed part/);
  });
});

describe('recordSize', () => {
  it('equals what BatchBuilder writes, multibyte strings, headers and binary included', () => {
    const cases = [
      { value: 'plain' },
      { key: 'k', value: 'v' },
      { key: '', value: '' },
      { key: 'ключ🙂', value: 'значение €', headers: { 'h1': 'v', 'ü': new Uint8Array(7) } },
      { key: new Uint8Array(3), value: new Uint8Array(1000) },
      { value: 'lone \ud800 surrogate' },
    ];
    for (const m of cases) {
      const b = new BatchBuilder(16);
      const written = b.add(m.key, m.value, m.headers);
      expect(recordSize(m)).toBe(written);
      expect(b.byteLength).toBe(written);
    }
    expect(utf8Length('a€🙂')).toBe(1 + 3 + 4);
  });
});
