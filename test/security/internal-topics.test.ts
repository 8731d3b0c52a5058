/**
 * The broker's internal topics (`__…`: the half messages of open transactions, delayed messages)
 * are reachable by no client, on a broker without authentication too: every op naming one is
 * answered as if it did not exist (INVALID_TOPIC_NAME for a create), and nothing of it is read or
 * written.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BatchBuilder } from '../../src/protocol/batch-builder.js';
import { HALF_TOPIC } from '../../src/core/topics/names.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { RawClient } from '../support/raw-client.js';

let tb: TestBroker;
let c: RawClient;

const records = (value: string): Uint8Array => {
  const b = new BatchBuilder();
  b.add(null, value);
  return b.take();
};

beforeAll(async () => {
  tb = await startTestBroker();
  c = await RawClient.connect(tb.url);
  expect(tb.broker.authenticationRequired).toBe(false);
  await c.request({ op: 'create_topic', topic: 'orders', partitions: 1 });
  // An open transaction: its uncommitted half message is in the internal topic.
  const txn = (await c.request({ op: 'txn_begin', topic: 'orders', producerGroup: 'pg' })).txn;
  expect(await c.request({ op: 'txn_produce', txn, records: records('uncommitted') })).toMatchObject({ op: 'result' });
});
afterAll(async () => {
  c?.close();
  await tb?.stop();
});

it(`${HALF_TOPIC} cannot be fetched, produced to, subscribed to, described, altered, or reached by the features' ops`, async () => {
  const half = tb.broker.partitionActor(HALF_TOPIC, 0);
  const before = await half.describe();
  expect(before.end).toBeGreaterThan(0);
  const notFound = [
    { op: 'fetch', topic: HALF_TOPIC, partition: 0, offset: 0 },
    { op: 'produce', topic: HALF_TOPIC, records: records('forged half message') },
    { op: 'subscribe', topic: HALF_TOPIC, from: 'earliest', credits: 10 },
    { op: 'describe_topic', topic: HALF_TOPIC },
    { op: 'alter_topic', topic: HALF_TOPIC, config: { ttlMs: 1 } },
    { op: 'queue_subscribe', topic: HALF_TOPIC, group: 'q' },
    { op: 'reset_offsets', group: 'g', topic: HALF_TOPIC, to: 'earliest' },
    { op: 'dlq_redrive', topic: HALF_TOPIC },
    { op: 'txn_begin', topic: HALF_TOPIC, producerGroup: 'pg' },
  ];
  for (const frame of notFound) expect(await c.request(frame), frame.op).toMatchObject({ op: 'error', code: 'TOPIC_NOT_FOUND', retryable: false });
  expect(await c.request({ op: 'create_topic', topic: '__mine', partitions: 1 })).toMatchObject({ op: 'error', code: 'INVALID_TOPIC_NAME' });
  expect(await c.request({ op: 'subscribe', pattern: '#', from: 'earliest', credits: 10 })).toMatchObject({ op: 'result' });
  expect(await c.request({ op: 'list_topics' })).toMatchObject({ topics: [{ topic: 'orders', partitions: 1 }] });

  await new Promise((r) => setTimeout(r, 200));
  expect(c.frames.filter((f) => f.op === 'deliver' || (f.op === 'matched' && f.topic !== 'orders'))).toEqual([]);
  expect(await half.describe()).toEqual(before);
  // Refusals of a name that does not exist, not permission denials.
  expect(tb.broker.core.securityStats().forbidden).toBe(0);
});
