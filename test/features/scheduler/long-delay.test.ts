/**
 * A delayed message due further ahead than setTimeout can wait (2^31−1 ms, about 24.8 days): Node
 * runs such a timer after 1 ms, so a scheduler that armed it as is re-armed a 1 ms timer forever.
 * The scheduler waits in steps of at most 2^31−1 ms instead, and still delivers the message when it
 * is due. Its clock is injected (SchedulerClock, the scheduler's own seam): the test sees every
 * timer it arms, lets real time pass for a second, then moves time on to the due time. The
 * scheduler runs on a fake host (test/support/fake-feature-host.ts), as in permanent-errors.test.ts.
 */
import path from 'node:path';
import { expect, it } from 'vitest';
import { FiredLog } from '../../../src/features/scheduler/fired-log.js';
import { TopicScheduler, DEFAULT_SCHEDULER_OPTIONS, MAX_TIMER_MS, scheduleTopicOf, type SchedulerClock } from '../../../src/features/scheduler/scheduler.js';
import { BatchBuilder } from '../../../src/protocol/batch-builder.js';
import { Header } from '../../../src/protocol/headers.js';
import { fakeFeatureHost } from '../../support/fake-feature-host.js';

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
  const host = fakeFeatureHost();
  const target = await host.ensureTopic('t', 1);
  const schedule = await host.ensureTopic(scheduleTopicOf('t'), 1, { deadLetterTopic: null }, true);
  const due = now + 30 * DAY;
  const b = new BatchBuilder();
  b.add(null, 'in-30-days', { [Header.DELIVER_AT]: String(due) });
  await host.append(schedule, b.take());
  const delivered = async (): Promise<string[]> => (await host.messages('t', 0)).map((m) => new TextDecoder().decode(m.value));

  const log = new FiredLog(path.join(host.context.dataDir, 'x.fired'), 1, { mode: 'never' }, schedule.name);
  const s = new TopicScheduler(host, schedule, target, log, DEFAULT_SCHEDULER_OPTIONS, clock);
  try {
    await s.start();
    expect(s.stats().pending).toBe(1);

    await new Promise((r) => setTimeout(r, 1_000)); // real time: a clamped timer would fire ~1000 times
    expect(armed.length).toBeGreaterThanOrEqual(1);
    expect(armed.length).toBeLessThanOrEqual(3);
    expect(Math.max(...armed)).toBeLessThanOrEqual(MAX_TIMER_MS);
    expect(warnings).not.toContain('TimeoutOverflowWarning');
    expect(await delivered()).toEqual([]);

    // Move time on as each armed timer asks, firing it then: early (still 5 days to go) once, then due.
    for (let step = 0; step < 5 && (await delivered()).length === 0; step++) {
      const t = last!;
      clearTimeout(t.timer);
      now += armed[armed.length - 1]!;
      t.fire();
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(now).toBeGreaterThanOrEqual(due);
    expect(await delivered()).toEqual(['in-30-days']);
    expect(armed.length).toBeLessThanOrEqual(4);
    expect(s.stats()).toMatchObject({ fired: 1, pending: 0 });
  } finally {
    process.off('warning', onWarning);
    await s.close();
    await log.close();
  }
});
