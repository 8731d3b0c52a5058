/**
 * The transaction feature's shell (feature.ts, coordinator.ts) installed on a fake host
 * (test/support/fake-feature-host.ts) as the composition root installs it, driven through its ops:
 * half messages are invisible until the commit, which appends them routed by key; a rollback
 * appends nothing; an open transaction survives a restart of the features.
 */
import { expect, it } from 'vitest';
import { installTransactions } from '../../../src/features/transactions/feature.js';
import { HALF_TOPIC } from '../../../src/core/topics/names.js';
import { DEFAULT_TOPIC_CONFIG } from '../../../src/core/topics/config.js';
import { partitionForKey } from '../../../src/common/murmur2.js';
import { BatchBuilder } from '../../../src/protocol/batch-builder.js';
import { fakeFeatureHost, type FakeFeatureHost } from '../../support/fake-feature-host.js';

const decoder = new TextDecoder();
const encoder = new TextEncoder();
const keyed = (...pairs: Array<[string, string]>): Uint8Array => {
  const b = new BatchBuilder();
  for (const [k, v] of pairs) b.add(k, v);
  return b.take();
};
const partitionOfKey = (key: string, partitions: number): number => {
  const k = encoder.encode(key);
  return partitionForKey(k, 0, k.length, partitions);
};
const valuesIn = async (host: FakeFeatureHost, topic: string, partition: number): Promise<string[]> =>
  (await host.messages(topic, partition)).map((m) => decoder.decode(m.value));

it('txn_begin, txn_produce, txn_commit: nothing visible before the commit, then every message in its key\'s partition', async () => {
  const host = fakeFeatureHost();
  await host.ensureTopic('orders', 2);
  await host.install(installTransactions);
  const producer = host.openSession();

  const begun = await host.call(producer, { op: 'txn_begin', id: 1, topic: 'orders', producerGroup: 'checkout' });
  expect(begun).toEqual({
    op: 'result', id: 1, txn: expect.any(Number), topic: 'orders', producerGroup: 'checkout',
    checkMs: DEFAULT_TOPIC_CONFIG.transactionCheckMs, timeoutMs: DEFAULT_TOPIC_CONFIG.transactionTimeoutMs,
  });
  const txn = begun.txn as number;
  const pairs: Array<[string, string]> = [['alice', 'a1'], ['bob', 'b1'], ['alice', 'a2'], ['carol', 'c1']];
  expect(await host.call(producer, { op: 'txn_produce', id: 2, txn, records: keyed(...pairs.slice(0, 3)) })).toEqual({ op: 'result', id: 2, txn, count: 3, messages: 3 });
  expect(await host.call(producer, { op: 'txn_produce', id: 3, txn, records: keyed(pairs[3]!) })).toEqual({ op: 'result', id: 3, txn, count: 1, messages: 4 });
  expect(await host.messages(HALF_TOPIC, 0)).toHaveLength(4); // half messages, in the internal topic
  expect([...(await valuesIn(host, 'orders', 0)), ...(await valuesIn(host, 'orders', 1))]).toEqual([]);

  expect(await host.call(producer, { op: 'txn_commit', id: 4, txn })).toEqual({ op: 'result', id: 4, txn, state: 'committed' });
  for (const p of [0, 1]) {
    expect(await valuesIn(host, 'orders', p)).toEqual(pairs.filter(([k]) => partitionOfKey(k, 2) === p).map(([, v]) => v));
  }
  // Decided once: a rollback now is refused, a repeated commit answered like the first.
  expect(await host.call(producer, { op: 'txn_rollback', id: 5, txn })).toMatchObject({ op: 'error', code: 'TXN_ALREADY_DECIDED', details: { txn, state: 'committed' } });
  expect(await host.call(producer, { op: 'txn_commit', id: 6, txn })).toEqual({ op: 'result', id: 6, txn, state: 'committed' });
  expect(await host.call(producer, { op: 'txn_begin', id: 7, topic: 'nope', producerGroup: 'checkout' })).toMatchObject({ op: 'error', code: 'TOPIC_NOT_FOUND' });
});

it('a rollback appends nothing; an open transaction survives a restart of the features and commits after it', async () => {
  const host = fakeFeatureHost();
  await host.ensureTopic('orders', 1);
  await host.install(installTransactions);
  const producer = host.openSession();

  const dropped = (await host.call(producer, { op: 'txn_begin', id: 1, topic: 'orders', producerGroup: 'checkout' })).txn as number;
  await host.call(producer, { op: 'txn_produce', id: 2, txn: dropped, records: keyed(['k', 'never']) });
  expect(await host.call(producer, { op: 'txn_rollback', id: 3, txn: dropped })).toEqual({ op: 'result', id: 3, txn: dropped, state: 'rolled_back' });
  expect(await host.call(producer, { op: 'txn_commit', id: 4, txn: dropped })).toMatchObject({ op: 'error', code: 'TXN_ALREADY_DECIDED' });

  const kept = (await host.call(producer, { op: 'txn_begin', id: 5, topic: 'orders', producerGroup: 'checkout' })).txn as number;
  expect(kept).toBeGreaterThan(dropped);
  await host.call(producer, { op: 'txn_produce', id: 6, txn: kept, records: keyed(['k', 'one'], ['k', 'two']) });

  await host.closeInstalled();
  await host.install(installTransactions);
  const later = host.openSession();
  const listed = await host.call(later, { op: 'txn_list', id: 1, all: true });
  expect((listed.transactions as Array<{ txn: number; state: string; messages: number }>).map((t) => [t.txn, t.state, t.messages])).toEqual([[dropped, 'rolled_back', 1], [kept, 'open', 2]]);
  expect(await host.call(later, { op: 'txn_commit', id: 2, txn: kept })).toEqual({ op: 'result', id: 2, txn: kept, state: 'committed' });
  expect(await valuesIn(host, 'orders', 0)).toEqual(['one', 'two']);
});
