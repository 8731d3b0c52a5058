import { describe, expect, it } from 'vitest';
import { planRestart, shouldRestart, type StrategyChild } from '../../src/supervisor/internal.js';

describe('shouldRestart', () => {
  it.each([
    ['permanent', true, true],
    ['permanent', false, true],
    ['transient', true, false],
    ['transient', false, true],
    ['temporary', true, false],
    ['temporary', false, false],
  ] as const)('%s child, normal=%s -> %s', (restart, normal, expected) => {
    expect(shouldRestart(restart, { normal, reason: normal ? null : new Error('x') })).toBe(expected);
  });
});

describe('planRestart', () => {
  const kids = (...ids: string[]): StrategyChild[] => ids.map((id) => ({ id, restart: 'permanent', running: true }));
  const failedB = (children: StrategyChild[]) => children.map((c) => (c.id === 'b' ? { ...c, running: false } : c));

  it('one_for_one restarts only the failed child', () => {
    expect(planRestart('one_for_one', failedB(kids('a', 'b', 'c', 'd')), 'b')).toEqual({ stop: [], start: ['b'], drop: [] });
  });

  it('rest_for_one stops the later children in reverse and restarts from the failed one on', () => {
    expect(planRestart('rest_for_one', failedB(kids('a', 'b', 'c', 'd')), 'b')).toEqual({
      stop: ['d', 'c'],
      start: ['b', 'c', 'd'],
      drop: [],
    });
    expect(planRestart('rest_for_one', kids('a', 'b', 'c').map((c) => (c.id === 'c' ? { ...c, running: false } : c)), 'c')).toEqual({
      stop: [],
      start: ['c'],
      drop: [],
    });
  });

  it('one_for_all stops every other child in reverse and restarts all in order', () => {
    expect(planRestart('one_for_all', failedB(kids('a', 'b', 'c', 'd')), 'b')).toEqual({
      stop: ['d', 'c', 'a'],
      start: ['a', 'b', 'c', 'd'],
      drop: [],
    });
  });

  it('temporary siblings are stopped and dropped, never restarted; transient ones are restarted', () => {
    const children: StrategyChild[] = [
      { id: 'a', restart: 'permanent', running: true },
      { id: 'b', restart: 'permanent', running: false },
      { id: 'c', restart: 'temporary', running: true },
      { id: 'd', restart: 'transient', running: true },
    ];
    expect(planRestart('rest_for_one', children, 'b')).toEqual({ stop: ['d', 'c'], start: ['b', 'd'], drop: ['c'] });
  });

  it('siblings already waiting for a restart are started but not stopped', () => {
    const children: StrategyChild[] = [
      { id: 'a', restart: 'permanent', running: false },
      { id: 'b', restart: 'permanent', running: false },
      { id: 'c', restart: 'permanent', running: true },
    ];
    expect(planRestart('one_for_all', children, 'a')).toEqual({ stop: ['c'], start: ['a', 'b', 'c'], drop: [] });
  });

  it('an unknown child yields an empty plan', () => {
    expect(planRestart('one_for_all', kids('a'), 'zz')).toEqual({ stop: [], start: [], drop: [] });
  });
});
