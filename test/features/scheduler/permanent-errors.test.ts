/**
 * A due delayed message the topic refuses for good (MESSAGE_TOO_LARGE, an invalid dead-letter
 * topic…) is given up once (marked fired, counted lost), not retried every 100 ms forever, and does
 * not take the rest of its batch down with it. The gateway is a stand-in: the scheduler only needs
 * read/append, and a real broker has no way to make an accepted delayed message unappendable.
 */
import path from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { FiredLog } from '../../../src/features/scheduler/fired-log.js';
import { TopicScheduler, DEFAULT_SCHEDULER_OPTIONS, type SchedulerHost } from '../../../src/features/scheduler/scheduler.js';
import type { Topic } from '../../../src/core/topics/registry.js';
import { WeirError } from '../../../src/common/errors.js';
import type { ReadResult } from '../../../src/core/feature-host.js';
import { BatchBuilder } from '../../../src/protocol/batch-builder.js';
import { readMessages } from '../../../src/protocol/batch-reader.js';
import { ErrorCode } from '../../../src/protocol/codes.js';
import { Header } from '../../../src/protocol/headers.js';
import { RecordIndex, scanBatch, stampRecord } from '../../../src/protocol/record.js';
import { tmpDir } from '../../support/tmp-dir.js';

const tmp = tmpDir('weir-sched-perm-');
afterEach(() => {
  vi.restoreAllMocks();
  tmp.cleanup();
});

it('gives up a message refused with a non-retryable error, delivers the rest, and stops retrying', async () => {
  vi.spyOn(console, 'error').mockImplementation(() => undefined);
  const due = Date.now();
  const b = new BatchBuilder();
  for (const v of ['a', 'too-big', 'c']) b.add(null, v, { [Header.DELIVER_AT]: String(due) });
  const schedule = b.take();
  const index = new RecordIndex();
  scanBatch(schedule, index, { maxRecordBytes: 1 << 20, maxRecords: 1000 });
  for (let i = 0; i < index.count; i++) stampRecord(schedule, index.start[i]!, i, due);

  const delivered: string[] = [];
  let appends = 0;
  let reads = 0;
  const gateway = {
    read: (): Promise<ReadResult> =>
      reads++ === 0 ? Promise.resolve({ records: schedule, count: 3, next: 3, end: 3 }) : new Promise<ReadResult>(() => undefined), // then: nothing new
    append: (_t: Topic, records: Uint8Array): Promise<{ parts: Array<[number, number, number]> }> => {
      appends++;
      const values = readMessages('t', 0, records).map((m) => new TextDecoder().decode(m.value));
      if (values.includes('too-big')) return Promise.reject(new WeirError(ErrorCode.MESSAGE_TOO_LARGE, 'too large'));
      delivered.push(...values);
      return Promise.resolve({ parts: [] });
    },
    ensureTopic: () => Promise.reject(new Error('a scheduler under test creates no topic')),
  } satisfies SchedulerHost;
  const topic = (name: string): Topic => ({ name, partitions: 1, actors: [{}], config: { ttlMs: null, deadLetterExpired: false, deadLetterTopic: null } }) as unknown as Topic;
  const log = new FiredLog(path.join(tmp.dir, 'x.fired'), 1, { mode: 'never' }, '__delay.t');
  const s = new TopicScheduler(gateway, topic('__delay.t'), topic('t'), log, DEFAULT_SCHEDULER_OPTIONS);
  await s.start();
  const deadline = Date.now() + 5_000;
  while (s.stats().fired + s.stats().lost < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  expect(delivered).toEqual(['a', 'c']);
  expect(s.stats()).toMatchObject({ fired: 2, lost: 1, pending: 0 });
  expect(log.sets[0]!.low).toBe(3); // the refused one counts as fired: a restart does not retry it
  const settled = appends;
  await new Promise((r) => setTimeout(r, 500)); // five retry periods
  expect(appends).toBe(settled);
  expect(console.error).toHaveBeenCalledTimes(1);
  await s.close();
  await log.close();
});

it('reads the schedule log only to catch up at start; later schedule appends are indexed from their acknowledgement', async () => {
  let reads = 0;
  const delivered: string[] = [];
  const gateway = {
    read: (): Promise<ReadResult> => {
      reads++;
      return new Promise((r) => setTimeout(() => r({ records: new Uint8Array(0), count: 0, next: 0, end: 0 }), 5));
    },
    append: (_t: Topic, records: Uint8Array): Promise<{ parts: Array<[number, number, number]> }> => {
      delivered.push(...readMessages('t', 0, records).map((m) => new TextDecoder().decode(m.value)));
      return Promise.resolve({ parts: [] });
    },
    ensureTopic: () => Promise.reject(new Error('a scheduler under test creates no topic')),
  } satisfies SchedulerHost;
  const topic = (name: string): Topic => ({ name, partitions: 2, actors: [{}, {}], config: { ttlMs: null, deadLetterExpired: false, deadLetterTopic: null } }) as unknown as Topic;
  const log = new FiredLog(path.join(tmp.dir, 'y.fired'), 2, { mode: 'never' }, '__delay.t');
  const s = new TopicScheduler(gateway, topic('__delay.t'), topic('t'), log, DEFAULT_SCHEDULER_OPTIONS);
  await s.start();
  await new Promise((r) => setTimeout(r, 300));
  expect(reads).toBe(2); // one per partition: caught up, no long-poll afterwards
  expect(s.stats().tailing).toBe(0);
  // A batch the schedule log acknowledged on partitions 1 and 0 (route: 1, 0, 1) at bases 7 and 3.
  const b = new BatchBuilder();
  for (const v of ['p1-a', 'p0-a', 'p1-b']) b.add(null, v, { [Header.DELIVER_AT]: String(Date.now() + 50) });
  const batch = b.take();
  const route = new Uint8Array([1, 0, 0, 0, 1, 0]);
  s.indexAppended(batch, [[1, 7, 2], [0, 3, 1]], route);
  expect(s.stats().pending).toBe(3);
  const deadline = Date.now() + 5_000;
  while (delivered.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  expect(delivered.sort()).toEqual(['p0-a', 'p1-a', 'p1-b']);
  await new Promise((r) => setTimeout(r, 50));
  expect([log.sets[0]!.has(3), log.sets[1]!.has(7), log.sets[1]!.has(8), log.sets[1]!.has(9)]).toEqual([true, true, true, false]);
  expect(reads).toBe(2); // the cached records were delivered without reading the log
  await s.close();
  await log.close();
});
