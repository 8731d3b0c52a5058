/** When the fleet gives up on a partition child that keeps failing (pure: failures and a clock in, a verdict out). */
import { expect, it } from 'vitest';
import { GiveUpPolicy, defaultGiveUpAfter } from '../../src/partition/give-up.js';

function policy(after = 3, periodMs = 1_000): { p: GiveUpPolicy; clock: { now: number } } {
  const clock = { now: 10_000 };
  return { p: new GiveUpPolicy({ periodMs, after }, () => clock.now), clock };
}

it('defaults to min(5, the restart intensity), but at least 2, so that one crash is restarted', () => {
  expect(defaultGiveUpAfter(20)).toBe(5);
  expect(defaultGiveUpAfter(3)).toBe(3);
  expect(defaultGiveUpAfter(1)).toBe(2);
  expect(defaultGiveUpAfter(0)).toBe(2);
});

it('gives up on a child once it failed `after` times within the period, not before', () => {
  const { p, clock } = policy(3);
  expect(p.shouldGiveUp('t/0')).toBe(false);
  p.noteFailure('t/0', new Error('one'));
  clock.now += 100;
  p.noteFailure('t/0', new Error('two'));
  expect(p.shouldGiveUp('t/0')).toBe(false);
  expect(p.shouldGiveUp('t/1')).toBe(false); // children are counted apart
  clock.now += 100;
  p.noteFailure('t/0', new Error('three'));
  expect(p.shouldGiveUp('t/0')).toBe(true);
  expect(p.giveUp('t/0')).toEqual({ reason: new Error('three'), failures: 3 });
});

it('forgets failures older than the period', () => {
  const { p, clock } = policy(3, 1_000);
  p.noteFailure('t/0', new Error('old'));
  clock.now += 600;
  p.noteFailure('t/0', new Error('old too'));
  clock.now += 600; // the first is now out of the period
  p.noteFailure('t/0', new Error('new'));
  expect(p.shouldGiveUp('t/0')).toBe(false);
  clock.now += 1;
  p.noteFailure('t/0', new Error('newer'));
  expect(p.shouldGiveUp('t/0')).toBe(true);
});

it('gives a child started again after being given up one chance within two periods, then the full count again', () => {
  const { p, clock } = policy(3, 1_000);
  for (let i = 0; i < 3; i++) p.noteFailure('t/0', new Error(`crash ${i}`));
  expect(p.shouldGiveUp('t/0')).toBe(true);
  p.giveUp('t/0');
  clock.now += 1_500; // started again a period later: the old failures are out of the period
  expect(p.shouldGiveUp('t/0')).toBe(false);
  p.noteFailure('t/0', new Error('again'));
  expect(p.shouldGiveUp('t/0')).toBe(true); // one failure is enough now
  p.giveUp('t/0');
  clock.now += 2_001; // more than two periods since it was last given up
  p.noteFailure('t/0', new Error('much later'));
  expect(p.shouldGiveUp('t/0')).toBe(false);
});

it('says a child given up without a noted failure failed once, for no known reason', () => {
  const { p } = policy();
  expect(p.giveUp('t/0')).toEqual({ reason: null, failures: 1 });
});
