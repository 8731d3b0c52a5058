/**
 * What one connection may hold at once (SessionLimits): subscriptions of every kind, and requests
 * taken but not yet answered. Over a limit a request is refused with RESOURCE_LIMIT, and nothing
 * of it is kept; what ends frees its place.
 */
import { expect, it } from 'vitest';
import { brokerFixture, startTestBroker } from '../support/broker.js';
import { RawClient } from '../support/raw-client.js';

const fx = brokerFixture();

it('refuses a subscription beyond maxSubscriptionsPerConnection (topic, pattern and queue subscriptions alike; a pattern counts once whatever it matches)', async () => {
  fx.tb = await startTestBroker({ gateway: { maxSubscriptionsPerConnection: 3 } });
  const admin = await fx.client(fx.tb.url, { reconnect: false });
  for (const t of ['a.1', 'a.2', 'a.3', 'b']) await admin.createTopic(t, { partitions: 1 });
  const raw = await RawClient.connect(fx.tb.url);
  fx.defer(() => raw.close());

  const pattern = await raw.request({ op: 'subscribe', pattern: 'a.*' });
  expect(pattern).toMatchObject({ op: 'result' });
  for (const topic of ['a.1', 'a.2', 'a.3']) await raw.waitFor((f) => f.op === 'matched' && f.topic === topic);
  const topicSub = await raw.request({ op: 'subscribe', topic: 'b' });
  expect(topicSub).toMatchObject({ op: 'result' });
  const queueSub = await raw.request({ op: 'queue_subscribe', topic: 'b', group: 'workers' });
  expect(queueSub).toMatchObject({ op: 'result' });

  const refusal = { op: 'error', code: 'RESOURCE_LIMIT', retryable: true, details: { limit: 'subscriptions', max: 3 } };
  expect(await raw.request({ op: 'subscribe', topic: 'b' })).toMatchObject(refusal);
  expect(await raw.request({ op: 'subscribe', pattern: 'b' })).toMatchObject(refusal);
  expect(await raw.request({ op: 'queue_subscribe', topic: 'b', group: 'workers' })).toMatchObject(refusal);

  // Each kind's unsubscribe frees its place.
  expect(await raw.request({ op: 'unsubscribe', sub: topicSub.sub })).toMatchObject({ op: 'result' });
  const again = await raw.request({ op: 'subscribe', topic: 'b' });
  expect(again).toMatchObject({ op: 'result' });
  expect(await raw.request({ op: 'queue_unsubscribe', sub: queueSub.sub })).toMatchObject({ op: 'result' });
  expect(await raw.request({ op: 'queue_subscribe', topic: 'b', group: 'workers' })).toMatchObject({ op: 'result' });
  expect(await raw.request({ op: 'unsubscribe_pattern', patternSub: pattern.patternSub })).toMatchObject({ op: 'result' });
  expect(await raw.request({ op: 'subscribe', pattern: 'a.#' })).toMatchObject({ op: 'result' });
  expect(await raw.request({ op: 'subscribe', topic: 'a.1' })).toMatchObject(refusal);

  // The limit is per connection.
  const other = await RawClient.connect(fx.tb.url);
  fx.defer(() => other.close());
  expect(await other.request({ op: 'subscribe', topic: 'b' })).toMatchObject({ op: 'result' });
});

it('refuses a request beyond maxInFlightRequestsPerConnection unanswered ones (retryable), answers ping all the same, and takes requests again once answers went out', async () => {
  fx.tb = await startTestBroker({ gateway: { maxInFlightRequestsPerConnection: 4 } });
  const client = await fx.client(fx.tb.url, { reconnect: false });
  await client.createTopic('t', { partitions: 1 });
  // Many requests answered one after the other leave nothing counted behind.
  for (let i = 0; i < 50; i++) {
    await client.produce('t', [{ value: `m${i}` }]);
    await client.fetch('t', 0, i);
    await client.describeTopic('t');
  }

  const raw = await RawClient.connect(fx.tb.url);
  fx.defer(() => raw.close());
  // Long polls at the log end: taken, unanswered until a record arrives.
  const polls = [1, 2, 3, 4].map((id) => raw.waitFor((f) => f.id === id, 15_000));
  for (const id of [1, 2, 3, 4]) raw.send({ op: 'fetch', id, topic: 't', partition: 0, offset: 50, maxBytes: 1024, maxWaitMs: 10_000 });
  const fifth = raw.waitFor((f) => f.id === 5);
  raw.send({ op: 'describe_topic', id: 5, topic: 't' });
  expect(await fifth).toMatchObject({ op: 'error', code: 'RESOURCE_LIMIT', retryable: true, details: { limit: 'inFlightRequests', max: 4 } });
  const ping = raw.waitFor((f) => f.id === 6);
  raw.send({ op: 'ping', id: 6 });
  expect(await ping).toMatchObject({ op: 'result' });

  await client.produce('t', [{ value: 'wake' }]);
  for (const answer of await Promise.all(polls)) expect(answer).toMatchObject({ op: 'result', count: 1 });
  expect(await raw.request({ op: 'describe_topic', topic: 't' })).toMatchObject({ op: 'result', topic: 't' });
});
