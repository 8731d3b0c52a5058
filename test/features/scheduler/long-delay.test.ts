/**
 * A delayed message due further ahead than setTimeout can wait (2^31−1 ms, about 24.8 days): Node
 * runs such a timer after 1 ms, so a scheduler that armed it as is re-armed a 1 ms timer forever.
 * The scheduler waits in steps of at most 2^31−1 ms instead, and still delivers the message when it
 * is due. Its clock is injected (SchedulerClock, the scheduler's own seam): the test sees every
 * timer it arms, lets real time pass for a second, then moves time on to the due time. The gateway
 * is a stand-in, as in permanent-errors.test.ts: the scheduler only needs read/append from it.
 */
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { FiredLog } from '../../../src/features/scheduler/fired-log.js';
import { TopicScheduler, DEFAULT_SCHEDULER_OPTIONS, MAX_TIMER_MS, type SchedulerClock, type SchedulerHost } from '../../../src/features/scheduler/scheduler.js';
import type { Topic } from '../../../src/core/topics/registry.js';
import type { ReadResult } from '../../../src/core/feature-host.js';
import { BatchBuilder } from '../../../src/protocol/batch-builder.js';
import { readMessages } from '../../../src/protocol/batch-reader.js';
import { Header } from '../../../src/protocol/headers.js';
import { RecordIndex, scanBatch, stampRecord } from '../../../src/protocol/record.js';
import { tmpDir } from '../../support/tmp-dir.js';

const tmp = tmpDir('weir-sched-long-');
afterEach(() => tmp.cleanup());

const DAY = 24 * 3_600_000;

it('arms a message due in 30 days with at most 2^31-1 ms timers, not a 1 ms timer loop, and delivers it when due', async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error): void => void warnings.push(w.name);
  process.on('warning', onWarning);

  let now = Date.now();
  const armed: number[] = [];
  let last: { fire: () => void; timer: ReturnType<typeof setTimeout> } | null = null;
  const clock: SchedulerClock = {
    now: () => now,
    setTimer: (fire, ms) => {
      armed.push(ms);
      const timer = setTimeout(fire, ms); // a real timer: an over-long one would fire after 1 ms
      last = { fire, timer };
      return timer;
    },
    clearTimer: (timer) => clearTimeout(timer as ReturnType<typeof setTimeout>),
  };

  // The schedule log: one delayed message at offset 0.
  const due = now + 30 * DAY;
  const b = new BatchBuilder();
  b.add(null, 'in-30-days', { [Header.DELIVER_AT]: String(due) });
  const stored = b.take();
  const index = new RecordIndex();
  scanBatch(stored, index, { maxRecordBytes: 1 << 20, maxRecords: 10 });
  stampRecord(stored, 0, 0, now);

  const delivered: string[] = [];
  const gateway = {
    read: (_t: Topic, _p: number, from: number): Promise<ReadResult> =>
      Promise.resolve(from === 0 ? { records: stored, count: 1, next: 1, end: 1 } : { records: new Uint8Array(0), count: 0, next: from, end: 1 }),
    append: (_t: Topic, records: Uint8Array): Promise<{ parts: Array<[number, number, number]> }> => {
      delivered.push(...readMessages('t', 0, records).map((m) => new TextDecoder().decode(m.value)));
      return Promise.resolve({ parts: [] });
    },
    ensureTopic: () => Promise.reject(new Error('a scheduler under test creates no topic')),
  } satisfies SchedulerHost;
  const topic = (name: string): Topic => ({ name, partitions: 1, actors: [{}], config: { ttlMs: null, deadLetterExpired: false, deadLetterTopic: null } }) as unknown as Topic;
  const log = new FiredLog(path.join(tmp.dir, 'x.fired'), 1, { mode: 'never' }, '__delay.t');
  const s = new TopicScheduler(gateway, topic('__delay.t'), topic('t'), log, DEFAULT_SCHEDULER_OPTIONS, clock);
  try {
    await s.start();
    expect(s.stats().pending).toBe(1);

    await new Promise((r) => setTimeout(r, 1_000)); // real time: a clamped timer would fire ~1000 times
    expect(armed.length).toBeGreaterThanOrEqual(1);
    expect(armed.length).toBeLessThanOrEqual(3);
    expect(Math.max(...armed)).toBeLessThanOrEqual(MAX_TIMER_MS);
    expect(warnings).not.toContain('TimeoutOverflowWarning');
    expect(delivered).toEqual([]);

    // Move time on as each armed timer asks, firing it then: early (still 5 days to go) once, then due.
    for (let step = 0; step < 5 && delivered.length === 0; step++) {
      const t = last!;
      clearTimeout(t.timer);
      now += armed[armed.length - 1]!;
      t.fire();
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(now).toBeGreaterThanOrEqual(due);
    expect(delivered).toEqual(['in-30-days']);
    expect(armed.length).toBeLessThanOrEqual(4);
    expect(s.stats()).toMatchObject({ fired: 1, pending: 0 });
  } finally {
    process.off('warning', onWarning);
    await s.close();
    await log.close();
  }
});
