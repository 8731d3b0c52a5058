import { expect, it } from 'vitest';
import { Router } from '../../src/core/router.js';
import { BatchBuilder } from '../../src/protocol/batch-builder.js';
import { RecordIndex, scanBatch } from '../../src/protocol/record.js';
import { partitionForKey } from '../../src/common/murmur2.js';

const limits = { maxRecordBytes: 1 << 20, maxRecords: 100_000 };

function batch(keys: Array<string | null>): { records: Uint8Array; index: RecordIndex } {
  const b = new BatchBuilder(1024);
  keys.forEach((k, i) => b.add(k, `value-${i}`));
  const records = b.take();
  const index = new RecordIndex();
  scanBatch(records, index, limits);
  return { records, index };
}

/** The records of partition p, following its chain from head. */
function chain(route: ReturnType<Router['routeBatch']>, p: number): number[] {
  const out: number[] = [];
  for (let i = route.head[p]!; i >= 0; i = route.nextSame[i]!) out.push(i);
  return out;
}

it('routes keyed records by murmur2 (Kafka), unkeyed ones to the sticky partition, and lists touched partitions ascending with their chains', () => {
  const keys = ['k1', null, 'user-42', 'k1', null, 'order-7', 'user-42', 'x'];
  const { records, index } = batch(keys);
  const route = new Router().routeBatch(records, index, 8, 5);
  const expected = keys.map((k, i) => (k === null ? 5 : partitionForKey(records, index.keyStart[i]!, index.keyStart[i]! + index.keyLength[i]!, 8)));
  expect([...route.partitionOf.subarray(0, keys.length)]).toEqual(expected);
  const touched = [...new Set(expected)].sort((a, b) => a - b);
  expect([...route.touched.subarray(0, route.touchedCount)]).toEqual(touched);
  for (const p of touched) {
    const members = expected.flatMap((q, i) => (q === p ? [i] : []));
    expect(chain(route, p)).toEqual(members); // in batch order: per-key order survives routing
    expect(route.counts[p]).toBe(members.length);
    expect(route.bytes[p]).toBe(members.reduce((s, i) => s + index.size[i]!, 0));
  }
});

it('sends every record to a forced partition, and reuses its route without leaking the previous call', () => {
  const router = new Router();
  const many = batch(Array.from({ length: 300 }, (_, i) => `key-${i}`));
  const wide = router.routeBatch(many.records, many.index, 64, 0);
  expect(wide.touchedCount).toBeGreaterThan(32); // the sort's larger path
  const t = [...wide.touched.subarray(0, wide.touchedCount)];
  expect(t).toEqual([...t].sort((a, b) => a - b));
  expect(new Set(t).size).toBe(t.length);

  const one = batch(['a', 'b', null]);
  const forced = router.routeBatch(one.records, one.index, 64, 0, 9);
  expect(forced.touchedCount).toBe(1);
  expect(forced.touched[0]).toBe(9);
  expect(chain(forced, 9)).toEqual([0, 1, 2]);
  expect(forced.counts[9]).toBe(3);
  expect(forced.counts.reduce((s, c) => s + c, 0)).toBe(3);
});

it('grows for batches and partition counts beyond its first sizes', () => {
  const router = new Router();
  const big = batch(Array.from({ length: 3000 }, (_, i) => (i % 3 === 0 ? null : `k${i}`)));
  const route = router.routeBatch(big.records, big.index, 1000, 999);
  let total = 0;
  for (let t = 0; t < route.touchedCount; t++) total += chain(route, route.touched[t]!).length;
  expect(total).toBe(3000);
  expect(route.counts[999]).toBeGreaterThanOrEqual(1000);
});
