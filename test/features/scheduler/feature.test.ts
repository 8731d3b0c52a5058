/**
 * The time feature's shell (feature.ts) installed on a fake host (test/support/fake-feature-host.ts)
 * as the composition root installs it: a client's delayed produce goes through its control
 * interceptor to the schedule topic, and its scheduler appends the message to the topic when due.
 */
import { expect, it } from 'vitest';
import { installTime } from '../../../src/features/scheduler/feature.js';
import { scheduleTopicOf } from '../../../src/features/scheduler/scheduler.js';
import { partitionForKey } from '../../../src/common/murmur2.js';
import { BatchBuilder } from '../../../src/protocol/batch-builder.js';
import { Header } from '../../../src/protocol/headers.js';
import { fakeFeatureHost, type FakeFeatureHost } from '../../support/fake-feature-host.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function waitForMessages(host: FakeFeatureHost, topic: string, partition: number, n: number, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await host.messages(topic, partition)).length < n && Date.now() < deadline) await sleep(10);
}

it('stores a delayed message in the schedule topic, appends it to its topic and partition once due, and not again after a restart', async () => {
  const host = fakeFeatureHost();
  await host.ensureTopic('orders', 4);
  const time = await host.install((ctx) => installTime(ctx));
  const client = host.openSession();

  const b = new BatchBuilder();
  b.add('customer-7', 'ship it', { [Header.DELAY]: '300', app: 'kept' });
  const producedAt = Date.now();
  const answer = await host.produce(client, 'orders', b.take());

  // Acknowledged by the schedule topic (internal, as many partitions), in the key's partition.
  const key = encoder.encode('customer-7');
  const partition = partitionForKey(key, 0, key.length, 4);
  expect(answer.parts).toEqual([[partition, 0, 1]]);
  const schedule = host.topics.get(scheduleTopicOf('orders'))!;
  expect(schedule).toMatchObject({ internal: true, partitions: 4 });
  expect(await host.messages(schedule.name, partition)).toHaveLength(1);
  expect(await host.messages('orders', partition)).toEqual([]);

  await waitForMessages(host, 'orders', partition, 1);
  const delivered = await host.messages('orders', partition);
  expect(Date.now() - producedAt).toBeGreaterThanOrEqual(300);
  expect(delivered).toHaveLength(1);
  expect(delivered[0]!.key).toBe('customer-7');
  expect(decoder.decode(delivered[0]!.value)).toBe('ship it');
  // The delay headers are gone; the application's are kept.
  expect(delivered[0]!.headers).toEqual({ app: 'kept' });
  expect(time.scheduler('orders')!.stats()).toMatchObject({ fired: 1, pending: 0 });

  // A restart of the features rebuilds the scheduler from the schedule topic and its fired log.
  await host.closeInstalled();
  const again = await host.install((ctx) => installTime(ctx));
  expect(again.scheduler('orders')!.stats()).toMatchObject({ pending: 0 });
  await sleep(200);
  expect(await host.messages('orders', partition)).toHaveLength(1);
});

it('appends a batch with only immediate weir- headers to the topic at once, and refuses one that mixes delayed and immediate messages', async () => {
  const host = fakeFeatureHost();
  const topic = await host.ensureTopic('events', 1);
  await host.install((ctx) => installTime(ctx));
  const client = host.openSession();

  const ttl = new BatchBuilder();
  ttl.add(null, 'short-lived', { [Header.TTL]: '60000' });
  expect((await host.produce(client, 'events', ttl.take())).parts).toEqual([[0, 0, 1]]);
  expect((await host.messages('events', 0)).map((m) => m.headers)).toEqual([{ [Header.TTL]: '60000' }]);
  expect(topic.hasControlRecords).toBe(true);
  expect(host.topics.get(scheduleTopicOf('events'))).toBeUndefined();

  const mixed = new BatchBuilder();
  mixed.add(null, 'now');
  mixed.add(null, 'later', { [Header.DELAY]: '1000' });
  await expect(host.produce(client, 'events', mixed.take())).rejects.toMatchObject({ code: 'BAD_REQUEST', details: { field: 'records', scheduled: 1, count: 2 } });
  expect(await host.messages('events', 0)).toHaveLength(1);
});
