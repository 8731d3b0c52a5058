/**
 * The routing feature's shell (feature.ts) installed on a fake host (test/support/fake-feature-host.ts)
 * as the composition root installs it, driven through its ops: request-reply inboxes, replay
 * (reset_offsets) and pattern subscriptions.
 */
import { expect, it } from 'vitest';
import { installRouting } from '../../../src/features/routing/feature.js';
import { BatchBuilder } from '../../../src/protocol/batch-builder.js';
import { Header } from '../../../src/protocol/headers.js';
import { fakeFeatureHost } from '../../support/fake-feature-host.js';

const batchOf = (...values: string[]): Uint8Array => {
  const b = new BatchBuilder();
  for (const v of values) b.add(null, v);
  return b.take();
};

it('delivers a reply to the connection that holds the inbox, and answers NO_REPLY_INBOX once it is gone', async () => {
  const host = fakeFeatureHost();
  await host.install(installRouting);
  const requester = host.openSession();
  const responder = host.openSession();

  const claimed = await host.call(requester, { op: 'inbox', id: 1 });
  expect(claimed).toMatchObject({ op: 'result', id: 1, inbox: expect.stringMatching(/^_INBOX\.[A-Za-z0-9_-]{8,64}$/) });
  const inbox = claimed.inbox as string;

  const reply = new BatchBuilder();
  reply.add(null, 'the answer', { [Header.REPLY_TO]: inbox });
  const records = reply.take();
  expect(await host.call(responder, { op: 'reply', id: 7, to: inbox, records })).toEqual({ op: 'result', id: 7 });
  expect(host.framesOf(requester)).toContainEqual({ op: 'reply', inbox, records });

  // Another connection cannot take the name; the owner's inbox goes with its connection.
  expect(await host.call(responder, { op: 'inbox', id: 8, name: inbox })).toMatchObject({ op: 'error', code: 'BAD_REQUEST', details: { field: 'name' } });
  host.closeSession(requester);
  expect(await host.call(responder, { op: 'reply', id: 9, to: inbox, records })).toMatchObject({ op: 'error', id: 9, code: 'NO_REPLY_INBOX', details: { to: inbox } });
  expect(await host.call(responder, { op: 'reply', id: 10, to: inbox, records: new Uint8Array([1, 2, 3]) })).toMatchObject({ op: 'error', code: 'BAD_BATCH' });
});

it('reset_offsets commits the group offsets a replay starts from: an offset clamped into each log, earliest, latest', async () => {
  const host = fakeFeatureHost();
  const topic = await host.ensureTopic('orders', 2);
  await host.append(topic, batchOf('a', 'b', 'c', 'd', 'e'), 0);
  await host.append(topic, batchOf('x', 'y', 'z'), 1);
  await host.install(installRouting);
  const admin = host.openSession();

  expect(await host.call(admin, { op: 'reset_offsets', id: 1, group: 'billing', topic: 'orders', to: { offset: 4 } })).toEqual({
    op: 'result', id: 1, group: 'billing', topic: 'orders', offsets: [[0, 4], [1, 3]],
  });
  expect([host.offsets.get('billing', 'orders', 0), host.offsets.get('billing', 'orders', 1)]).toEqual([4, 3]);

  expect((await host.call(admin, { op: 'reset_offsets', id: 2, group: 'billing', topic: 'orders', to: 'earliest' })).offsets).toEqual([[0, 0], [1, 0]]);
  expect((await host.call(admin, { op: 'reset_offsets', id: 3, group: 'billing', topic: 'orders', to: 'latest' })).offsets).toEqual([[0, 5], [1, 3]]);
  expect([host.offsets.get('billing', 'orders', 0), host.offsets.get('billing', 'orders', 1)]).toEqual([5, 3]);

  expect(await host.call(admin, { op: 'reset_offsets', id: 4, group: 'billing', topic: 'nope', to: 'earliest' })).toMatchObject({ op: 'error', code: 'TOPIC_NOT_FOUND' });
  expect(await host.call(admin, { op: 'reset_offsets', id: 5, group: 'billing', topic: 'orders', to: 'soon' })).toMatchObject({ op: 'error', code: 'BAD_REQUEST', details: { field: 'to' } });
});

it('a pattern subscription covers every matching topic and ones created later (from their start); unsubscribe_pattern ends what is left', async () => {
  const host = fakeFeatureHost();
  for (const name of ['orders.eu', 'orders.us', 'payments.eu']) await host.ensureTopic(name, 1);
  await host.install(installRouting);
  const client = host.openSession();

  const answer = await host.call(client, { op: 'subscribe', id: 1, pattern: 'orders.*', group: 'shipping' });
  expect(answer).toMatchObject({ op: 'result', id: 1, patternSub: expect.any(Number) });
  const matched = (): string[] => host.framesOf(client).filter((f) => f.op === 'matched').map((f) => f.topic as string);
  expect(matched()).toEqual(['orders.eu', 'orders.us']);
  expect(host.subscriptionsOf(client).map((s) => [s.topic, s.options.group, s.options.from])).toEqual([['orders.eu', 'shipping', 'latest'], ['orders.us', 'shipping', 'latest']]);

  await host.ensureTopic('orders.asia', 1);
  await host.ensureTopic('invoices.asia', 1);
  expect(matched()).toEqual(['orders.eu', 'orders.us', 'orders.asia']);
  expect(host.subscriptionsOf(client).find((s) => s.topic === 'orders.asia')!.options.from).toBe('earliest');

  // The client closes one topic's subscription, then the pattern: every subscription of it has ended.
  const us = host.subscriptionsOf(client).find((s) => s.topic === 'orders.us')!;
  expect(host.unsubscribe(client, us.sub)).toBe(true);
  expect(await host.call(client, { op: 'unsubscribe_pattern', id: 2, patternSub: answer.patternSub })).toEqual({ op: 'result', id: 2 });
  expect(host.subscriptionsOf(client)).toEqual([]);
  expect(await host.call(client, { op: 'unsubscribe_pattern', id: 3, patternSub: answer.patternSub })).toMatchObject({ op: 'error', code: 'UNKNOWN_SUBSCRIPTION' });
});
