import { expect, it } from 'vitest';
import { BatchBuilder } from '../../../src/protocol/batch-builder.js';
import { readMessages } from '../../../src/protocol/batch-reader.js';
import { RecordIndex, scanBatch } from '../../../src/protocol/record.js';
import { partitionForKey } from '../../../src/common/murmur2.js';
import { gather, isOfTransaction, recordStarts, tagWithTransaction, targetPartition } from '../../../src/features/transactions/records.js';

function batch(): Uint8Array {
  const b = new BatchBuilder();
  b.add('k1', 'v1', { a: 'b' });
  b.add(null, 'no key');
  b.add('', 'empty key', { 'weir-txn': '99' });
  return b.take();
}

it('tags every record with its transaction, keeping key, value and headers', () => {
  const b = batch();
  const index = new RecordIndex();
  scanBatch(b, index, { maxRecordBytes: 1 << 20, maxRecords: 100 });
  const tagged = tagWithTransaction(b, index, 1234);
  // The result is itself a valid batch with the same number of records.
  const again = new RecordIndex();
  expect(scanBatch(tagged, again, { maxRecordBytes: 1 << 20, maxRecords: 100 })).toBe(3);
  expect(again.controlCount).toBe(3);
  const msgs = readMessages('t', 0, tagged);
  expect(msgs.map((m) => [m.key, new TextDecoder().decode(m.value)])).toEqual([['k1', 'v1'], [null, 'no key'], ['', 'empty key']]);
  expect(msgs[0]!.headers).toEqual({ a: 'b', 'weir-txn': '1234' });
  expect(msgs[1]!.headers).toEqual({ 'weir-txn': '1234' });
  const starts = recordStarts(tagged);
  expect(starts.map((at) => isOfTransaction(tagged, at, 1234))).toEqual([true, true, false]); // the producer's own weir-txn header comes first
  expect(starts.map((at) => isOfTransaction(tagged, at, 123))).toEqual([false, false, false]);
  expect(isOfTransaction(b, recordStarts(b)[0]!, 1234)).toBe(false);
});

it('routes by forced partition, then key (murmur2), then one partition per transaction', () => {
  const b = batch();
  const [k1, none, empty] = recordStarts(b) as [number, number, number];
  expect(targetPartition(b, k1, 3, 8, 5)).toBe(3);
  expect(targetPartition(b, k1, null, 8, 5)).toBe(partitionForKey(new TextEncoder().encode('k1'), 0, 2, 8));
  expect(targetPartition(b, none, null, 8, 13)).toBe(13 % 8);
  expect(targetPartition(b, empty, null, 8, 13)).toBe(partitionForKey(new Uint8Array(0), 0, 0, 8));
});

it('gathers byte ranges into one batch', () => {
  const b = new Uint8Array([1, 2, 3, 4, 5, 6]);
  expect([...gather(b, [[0, 2], [4, 6]])]).toEqual([1, 2, 5, 6]);
});
