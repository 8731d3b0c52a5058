/**
 * SDK side of transactions against the fake broker (for what a real broker cannot be made to do
 * on demand: drop the socket at a chosen frame). End-to-end behaviour is in
 * test/features/transactions/transactions.test.ts.
 */
import { afterEach, expect, it } from 'vitest';
import { connect, type WeirClient } from '../../src/client/index.js';
import { FakeBroker, until } from './support/fake-broker.js';

let broker: FakeBroker | null = null;
let client: WeirClient | null = null;
afterEach(async () => {
  client?.destroy();
  await broker?.close();
  broker = null;
  client = null;
});

it('re-registers a checker after a reconnect and answers checks with the handler’s decision', async () => {
  broker = await FakeBroker.start();
  broker.hook = (f) => {
    if (f.op === 'txn_checker') return { result: { producerGroup: f.producerGroup } };
    if (f.op === 'txn_commit' || f.op === 'txn_rollback') return { result: { txn: f.txn, state: f.op === 'txn_commit' ? 'committed' : 'rolled_back' } };
    return undefined;
  };
  client = await connect({ url: broker.url, reconnectDelayMs: 10 });
  const asked: number[] = [];
  await client.transactionChecker('g', (check) => {
    asked.push(check.txn);
    return check.txn === 1 ? 'commit' : check.txn === 2 ? 'rollback' : 'unknown';
  });
  expect(broker.frames('txn_checker')).toEqual([expect.objectContaining({ producerGroup: 'g' })]);
  broker.dropAll();
  await until(() => broker!.frames('txn_checker').length === 2, 5000, 'the checker to register again');
  const conn = broker.conns.at(-1)!;
  for (const txn of [1, 2, 3]) conn.send({ op: 'txn_check', txn, topic: 't', producerGroup: 'g', messages: 1, begunAt: 0, checks: 1 });
  conn.send({ op: 'txn_check', txn: 4, topic: 't', producerGroup: 'other', messages: 1, begunAt: 0, checks: 1 });
  await until(() => broker!.frames('txn_commit').length + broker!.frames('txn_rollback').length === 2, 5000, 'the answers');
  expect(asked).toEqual([1, 2, 3]);
  expect(broker.frames('txn_commit')).toEqual([expect.objectContaining({ txn: 1, by: 'checker' })]);
  expect(broker.frames('txn_rollback')).toEqual([expect.objectContaining({ txn: 2, by: 'checker' })]);
});

it('retries a commit whose connection dropped (the decision is idempotent) and does not retry produce', async () => {
  broker = await FakeBroker.start();
  let commits = 0;
  broker.hook = (f) => {
    if (f.op === 'txn_begin') return { result: { txn: 7, topic: f.topic, producerGroup: f.producerGroup, checkMs: 5000, timeoutMs: 60000 } };
    if (f.op === 'txn_produce') return 'drop';
    if (f.op === 'txn_commit') return ++commits === 1 ? 'drop' : { result: { txn: f.txn, state: 'committed' } };
    return undefined;
  };
  client = await connect({ url: broker.url, reconnectDelayMs: 10 });
  const tx = await client.beginTransaction('t', { producerGroup: 'g' });
  expect(tx.id).toBe(7);
  await expect(tx.produce([{ key: 'k', value: 'v' }])).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
  expect(broker.frames('txn_produce')).toHaveLength(1);
  expect(await tx.commit()).toBe('committed');
  expect(commits).toBe(2);
  expect(tx.state).toBe('committed');
  await expect(client.beginTransaction('t', {} as { producerGroup: string })).rejects.toMatchObject({ code: 'BAD_REQUEST', details: { field: 'producerGroup' } });
});
