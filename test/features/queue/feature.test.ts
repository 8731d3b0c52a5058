/**
 * The queue feature's shell (feature.ts, service.ts) installed on a fake host
 * (test/support/fake-feature-host.ts) as the composition root installs it, driven through its ops:
 * queue_subscribe, deliveries, ack, nack to the dead-letter topic, redelivery after a consumer's
 * connection closed, and the journal across a restart of the features.
 */
import { expect, it } from 'vitest';
import { installQueues } from '../../../src/features/queue/feature.js';
import { QUEUE_SUB_BASE } from '../../../src/features/queue/service.js';
import { BatchBuilder } from '../../../src/protocol/batch-builder.js';
import { readMessages } from '../../../src/protocol/batch-reader.js';
import { Header } from '../../../src/protocol/headers.js';
import type { Frame } from '../../../src/core/session.js';
import { fakeFeatureHost, type FakeFeatureHost } from '../../support/fake-feature-host.js';

const decoder = new TextDecoder();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const batchOf = (...values: string[]): Uint8Array => {
  const b = new BatchBuilder();
  for (const v of values) b.add(null, v);
  return b.take();
};
const valuesOf = (deliver: Frame): string[] => readMessages(String(deliver.topic), Number(deliver.partition), deliver.records as Uint8Array).map((m) => decoder.decode(m.value));
const isDeliver = (sub: unknown) => (f: Frame): boolean => f.op === 'deliver' && f.sub === sub;

it('delivers to a queue consumer; ack settles, a fatal nack sends the message to the dead-letter topic with why', async () => {
  const host = fakeFeatureHost();
  await host.append(await host.ensureTopic('jobs', 1), batchOf('a', 'b', 'c'));
  await host.install(installQueues);
  const worker = host.openSession();

  const subscribed = await host.call(worker, { op: 'queue_subscribe', id: 1, group: 'workers', topic: 'jobs', prefetch: 10 });
  expect(subscribed).toEqual({ op: 'result', id: 1, sub: expect.any(Number) });
  const sub = subscribed.sub as number;
  expect(sub).toBeGreaterThanOrEqual(QUEUE_SUB_BASE);
  const deliver = await host.nextFrame(worker, isDeliver(sub));
  expect(deliver).toMatchObject({ topic: 'jobs', partition: 0, count: 3, next: 3 });
  expect(deliver.deliveries).toBeUndefined(); // first deliveries
  expect(valuesOf(deliver)).toEqual(['a', 'b', 'c']);

  expect(await host.call(worker, { op: 'ack', id: 2, sub, partition: 0, ranges: [0, 2] })).toEqual({ op: 'result', id: 2, count: 2 });
  expect(await host.call(worker, { op: 'nack', id: 3, sub, partition: 0, ranges: [2, 3], action: 'fatal', reason: 'poison' })).toEqual({ op: 'result', id: 3, count: 1 });
  const deadline = Date.now() + 5_000;
  while (host.topics.get('jobs.dlq') === undefined || (await host.messages('jobs.dlq', 0)).length === 0) {
    if (Date.now() > deadline) throw new Error('no dead letter');
    await sleep(10);
  }
  const [letter, ...more] = await host.messages('jobs.dlq', 0);
  expect(more).toEqual([]);
  expect(decoder.decode(letter!.value)).toBe('c');
  expect(letter!.headers).toMatchObject({
    [Header.DLQ_REASON]: 'rejected: poison', [Header.DLQ_TOPIC]: 'jobs', [Header.DLQ_PARTITION]: '0',
    [Header.DLQ_OFFSET]: '2', [Header.DLQ_GROUP]: 'workers', [Header.DLQ_DELIVERIES]: '1',
  });

  expect(await host.call(worker, { op: 'ack', id: 4, sub: sub + 1, partition: 0, ranges: [0, 1] })).toMatchObject({ op: 'error', code: 'UNKNOWN_SUBSCRIPTION' });
  expect(await host.call(worker, { op: 'ack', id: 5, sub, partition: 0, ranges: [2, 1] })).toMatchObject({ op: 'error', code: 'BAD_REQUEST', details: { field: 'ranges' } });
});

it('delivers what a closed connection held to another consumer of the group (counted), and nothing acked again after a restart', async () => {
  const host = fakeFeatureHost();
  await host.append(await host.ensureTopic('jobs', 1), batchOf('a', 'b'));
  await host.install(installQueues);
  const subscribe = async (session: ReturnType<FakeFeatureHost['openSession']>, id: number): Promise<number> =>
    (await host.call(session, { op: 'queue_subscribe', id, group: 'workers', topic: 'jobs' })).sub as number;

  const first = host.openSession();
  const firstSub = await subscribe(first, 1);
  expect(valuesOf(await host.nextFrame(first, isDeliver(firstSub)))).toEqual(['a', 'b']);
  const second = host.openSession();
  const secondSub = await subscribe(second, 1);
  await sleep(100);
  expect(host.framesOf(second).filter(isDeliver(secondSub))).toEqual([]); // the first holds them

  host.closeSession(first);
  const again = await host.nextFrame(second, isDeliver(secondSub));
  expect(valuesOf(again)).toEqual(['a', 'b']);
  expect([...(again.deliveries as Uint8Array)]).toEqual([2, 0, 2, 0]); // u16 LE per record: second delivery
  expect(await host.call(second, { op: 'ack', id: 2, sub: secondSub, partition: 0, ranges: [0, 2] })).toEqual({ op: 'result', id: 2, count: 2 });

  await host.closeInstalled();
  await host.install(installQueues);
  const third = host.openSession();
  const thirdSub = await subscribe(third, 1);
  await sleep(200);
  expect(host.framesOf(third).filter(isDeliver(thirdSub))).toEqual([]);
  await host.append('jobs', batchOf('c'));
  expect(valuesOf(await host.nextFrame(third, isDeliver(thirdSub)))).toEqual(['c']);
});
