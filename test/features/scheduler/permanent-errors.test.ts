/**
 * A due delayed message the topic refuses for good (MESSAGE_TOO_LARGE, an invalid dead-letter
 * topic…) is given up once (marked fired, counted lost), not retried every 100 ms forever, and does
 * not take the rest of its batch down with it. The scheduler runs on a fake host
 * (test/support/fake-feature-host.ts) whose limit is smaller than a record its schedule log holds:
 * what a broker restarted with a smaller maxMessageBytes finds.
 */
import path from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { FiredLog } from '../../../src/features/scheduler/fired-log.js';
import { TopicScheduler, DEFAULT_SCHEDULER_OPTIONS, scheduleTopicOf, type SchedulerHost } from '../../../src/features/scheduler/scheduler.js';
import type { Topic } from '../../../src/core/topics/registry.js';
import { partitionForKey } from '../../../src/common/murmur2.js';
import { BatchBuilder } from '../../../src/protocol/batch-builder.js';
import { Header } from '../../../src/protocol/headers.js';
import { fakeFeatureHost, type FakeFeatureHost } from '../../support/fake-feature-host.js';

afterEach(() => {
  vi.restoreAllMocks();
});

const decoder = new TextDecoder();
const valuesIn = async (host: FakeFeatureHost, topic: string, partition: number): Promise<string[]> =>
  (await host.messages(topic, partition)).map((m) => decoder.decode(m.value));

/** A topic and its schedule topic (as the time feature creates it), `partitions` each. */
async function topicPair(host: FakeFeatureHost, partitions: number): Promise<{ schedule: Topic; target: Topic }> {
  const target = await host.ensureTopic('t', partitions);
  const schedule = await host.ensureTopic(scheduleTopicOf('t'), partitions, { deadLetterTopic: null }, true);
  return { schedule, target };
}

it('gives up a message refused with a non-retryable error, delivers the rest, and stops retrying', async () => {
  vi.spyOn(console, 'error').mockImplementation(() => undefined);
  const host = fakeFeatureHost({ maxMessageBytes: 256 });
  const { schedule, target } = await topicPair(host, 1);
  // Stored by the schedule log before the limit was lowered: written straight into its store.
  const due = Date.now();
  const b = new BatchBuilder();
  for (const v of ['a', 'x'.repeat(300), 'c']) b.add(null, v, { [Header.DELIVER_AT]: String(due) });
  const stored = b.take();
  const scheduleLog = host.logOf(schedule, 0);
  scheduleLog.append(stored, 0, stored.length, 3);
  scheduleLog.flush();

  let appends = 0;
  const counting: SchedulerHost = {
    read: (topic, partition, offset, options) => host.read(topic, partition, offset, options),
    append: (topic, records, partition) => {
      appends++;
      return host.append(topic, records, partition);
    },
    ensureTopic: (name, partitions, config, internal) => host.ensureTopic(name, partitions, config, internal),
  };
  const log = new FiredLog(path.join(host.context.dataDir, 'x.fired'), 1, { mode: 'never' }, schedule.name);
  const s = new TopicScheduler(counting, schedule, target, log, DEFAULT_SCHEDULER_OPTIONS);
  await s.start();
  const deadline = Date.now() + 5_000;
  while (s.stats().fired + s.stats().lost < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  expect(await valuesIn(host, 't', 0)).toEqual(['a', 'c']);
  expect(s.stats()).toMatchObject({ fired: 2, lost: 1, pending: 0 });
  expect(log.sets[0]!.low).toBe(3); // the refused one counts as fired: a restart does not retry it
  const settled = appends;
  await new Promise((r) => setTimeout(r, 500)); // five retry periods
  expect(appends).toBe(settled);
  expect(console.error).toHaveBeenCalledTimes(1);
  expect(vi.mocked(console.error).mock.calls[0]![0]).toMatch(/cannot be delivered to t; given up \(not retryable\): record 0 is larger than maxMessageBytes/);
  await s.close();
  await log.close();
});

it('reads the schedule log only to catch up at start; later schedule appends are indexed from their acknowledgement', async () => {
  const host = fakeFeatureHost();
  const { schedule, target } = await topicPair(host, 2);
  let reads = 0;
  const counting: SchedulerHost = {
    read: (topic, partition, offset, options) => {
      reads++;
      return host.read(topic, partition, offset, options);
    },
    append: (topic, records, partition) => host.append(topic, records, partition),
    ensureTopic: (name, partitions, config, internal) => host.ensureTopic(name, partitions, config, internal),
  };
  const log = new FiredLog(path.join(host.context.dataDir, 'y.fired'), 2, { mode: 'never' }, schedule.name);
  const s = new TopicScheduler(counting, schedule, target, log, DEFAULT_SCHEDULER_OPTIONS);
  await s.start();
  await new Promise((r) => setTimeout(r, 300));
  expect(reads).toBe(2); // one per partition: caught up, no long-poll afterwards
  expect(s.stats().tailing).toBe(0);
  // A batch the schedule log acknowledges on partitions 1 and 0 (by key: 1, 0, 1), as the time
  // feature appends it; the scheduler indexes it from the answer.
  const b = new BatchBuilder();
  for (const [partition, v] of [[1, 'p1-a'], [0, 'p0-a'], [1, 'p1-b']] as const) b.add(keyOn(partition, 2), v, { [Header.DELIVER_AT]: String(Date.now() + 50) });
  const batch = b.take();
  const answer = await host.append(schedule, batch);
  expect(answer.parts).toEqual([[0, 0, 1], [1, 0, 2]]);
  s.indexAppended(batch, answer.parts, answer.route);
  expect(s.stats().pending).toBe(3);
  const deadline = Date.now() + 5_000;
  while (s.stats().fired < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  // Each to the topic's partition of the same number, in order.
  expect(await valuesIn(host, 't', 0)).toEqual(['p0-a']);
  expect(await valuesIn(host, 't', 1)).toEqual(['p1-a', 'p1-b']);
  await new Promise((r) => setTimeout(r, 50));
  expect([log.sets[0]!.has(0), log.sets[1]!.has(0), log.sets[1]!.has(1), log.sets[1]!.has(2)]).toEqual([true, true, true, false]);
  expect(reads).toBe(2); // the cached records were delivered without reading the log
  await s.close();
  await log.close();
});

/** A key the broker's partitioner (murmur2) sends to `partition` of `partitions`. */
function keyOn(partition: number, partitions: number): string {
  const encoder = new TextEncoder();
  for (let i = 0; ; i++) {
    const key = encoder.encode(`k${i}`);
    if (partitionForKey(key, 0, key.length, partitions) === partition) return `k${i}`;
  }
}
