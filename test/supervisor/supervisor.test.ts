/**
 * Supervisor behaviour with in-process test children (tiny real ChildHandles whose crashes the test
 * triggers). Worker-thread children are covered in worker-child.test.ts and supervisor-workers.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  Supervisor,
  supervisorSpec,
  SupervisorEscalationError,
  type ChildExit,
  type ChildHandle,
  type ChildSpec,
  type SupervisorFlags,
  type SupervisorRestartMessage,
  type SupervisorEscalateMessage,
} from '../../src/supervisor/index.js';
import { WeirError } from '../../src/common/errors.js';
import { Fleet, TestChild, activeTimers, nextEvent, record, sleep, waitFor } from './helpers.js';

const flags = (over: Partial<SupervisorFlags> = {}): SupervisorFlags => ({
  strategy: 'one_for_one',
  intensity: 5,
  period: 10_000,
  ...over,
});

const live: Supervisor<ChildHandle>[] = [];
function sup<H extends ChildHandle>(s: Supervisor<H>): Supervisor<H> {
  live.push(s as unknown as Supervisor<ChildHandle>);
  return s;
}
afterEach(() => {
  for (const s of live.splice(0)) s.destroy();
});

/** Crash the current instance of `id` and wait for its replacement. */
async function crashAndAwaitRestart(s: Supervisor<TestChild>, f: Fleet, id: string): Promise<TestChild> {
  const restarted = nextEvent(s, 'restart', (rid) => rid === id);
  f.current(id).crash();
  const [, handle] = await restarted;
  return handle;
}

describe('start and close', () => {
  it('starts children in order and closes them one by one in reverse order', async () => {
    const f = new Fleet();
    const s = sup(new Supervisor('s', flags(), [f.spec('a', { closeMs: 10 }), f.spec('b', { closeMs: 10 }), f.spec('c', { closeMs: 10 })]));
    await s.start();
    expect(f.kinds('start')).toEqual(['start:a', 'start:b', 'start:c']);
    expect(s.whichChildren().map((c) => [c.id, c.status])).toEqual([
      ['a', 'running'],
      ['b', 'running'],
      ['c', 'running'],
    ]);
    const exits: ChildExit[] = [];
    s.onExit((e) => exits.push(e));
    await s.close();
    // Sequential: each child has exited before the previous one is asked to close.
    expect(f.kinds('close', 'exit')).toEqual(['close:c', 'exit:c', 'close:b', 'exit:b', 'close:a', 'exit:a']);
    expect(exits).toEqual([{ normal: true, reason: null }]);
    expect(s.status).toBe('stopped');
    expect(s.whichChildren().every((c) => c.status === 'stopped' && c.handle === undefined)).toBe(true);
  });

  it('a child failing during the initial start fails start(), stops the started ones in reverse, and is not retried', async () => {
    const f = new Fleet();
    const s = sup(
      new Supervisor('s', flags({ backoff: { initialMs: 1, maxMs: 1 } }), [
        f.spec('a'),
        f.spec('b'),
        f.spec('c', { failAlways: true }),
        f.spec('d'),
      ]),
    );
    const exits: ChildExit[] = [];
    s.onExit((e) => exits.push(e));
    const err = await s.start().then(
      () => null,
      (e: unknown) => e,
    );
    expect(WeirError.isWeirError(err) && err.code).toBe('CHILD_START_FAILED');
    expect((err as Error).cause).toBeInstanceOf(Error);
    expect(((err as Error).cause as Error).message).toMatch(/start of c failed/);
    expect(f.kinds('start', 'close')).toEqual(['start:a', 'start:b', 'start:c', 'close:b', 'close:a']);
    await sleep(50);
    expect(f.starts('c')).toBe(1);
    expect(f.starts('d')).toBe(0);
    expect(s.status).toBe('stopped');
    expect(exits).toHaveLength(1);
    expect(exits[0]!.normal).toBe(false);
  });

  it('rejects invalid flags and specs with SUPERVISOR_BAD_CONFIG', () => {
    const f = new Fleet();
    expect(() => new Supervisor('s', flags({ intensity: -1 }), [])).toThrow(expect.objectContaining({ code: 'SUPERVISOR_BAD_CONFIG' }));
    expect(() => new Supervisor('s', flags({ period: 0 }), [])).toThrow(expect.objectContaining({ code: 'SUPERVISOR_BAD_CONFIG' }));
    expect(() => new Supervisor('s', flags(), [f.spec('a'), f.spec('a')])).toThrow(/duplicate child id a/);
    expect(() => new Supervisor('s', flags(), [{ ...f.spec('a'), shutdown: -5 }])).toThrow(/shutdown/);
  });

  it('start() twice is refused', async () => {
    const s = sup(new Supervisor('s', flags(), [new Fleet().spec('a')]));
    await s.start();
    await expect(s.start()).rejects.toMatchObject({ code: 'SUPERVISOR_NOT_RUNNING' });
  });
});

describe('restart strategies', () => {
  it('one_for_one restarts only the crashed child; the restart event delivers the new handle', async () => {
    const f = new Fleet();
    const s = sup(new Supervisor('s', flags(), [f.spec('a'), f.spec('b'), f.spec('c')]));
    await s.start();
    const [a0, b0, c0] = [f.current('a'), f.current('b'), f.current('c')];
    const exitEvent = nextEvent(s, 'exit', (id) => id === 'b');
    const b1 = await crashAndAwaitRestart(s, f, 'b');
    const [, exit] = await exitEvent;
    expect(exit.normal).toBe(false);
    expect(exit.reason?.message).toBe('b crashed');
    expect(b1).not.toBe(b0);
    expect(b1).toBe(f.current('b'));
    expect(s.getChild('b')).toBe(b1);
    expect(b1.alive).toBe(true);
    expect(s.getChild('a')).toBe(a0);
    expect(s.getChild('c')).toBe(c0);
    expect(a0.closeCalls + c0.closeCalls).toBe(0);
    expect(s.whichChildren().map((c) => [c.id, c.restarts])).toEqual([
      ['a', 0],
      ['b', 1],
      ['c', 0],
    ]);
  });

  it('rest_for_one stops the later children in reverse, then restarts from the crashed one in order', async () => {
    const f = new Fleet();
    const s = sup(new Supervisor('s', flags({ strategy: 'rest_for_one' }), ['a', 'b', 'c', 'd'].map((id) => f.spec(id))));
    await s.start();
    const a0 = f.current('a');
    f.log.length = 0;
    const restarted: string[] = [];
    s.on('restart', (id) => restarted.push(id));
    f.current('b').crash();
    await waitFor(() => restarted.length === 3, 2000, 'three restarts');
    expect(restarted).toEqual(['b', 'c', 'd']);
    expect(f.kinds('close', 'start')).toEqual(['close:d', 'close:c', 'start:b', 'start:c', 'start:d']);
    expect(s.getChild('a')).toBe(a0);
    expect(a0.closeCalls).toBe(0);
  });

  it('one_for_all stops all the others in reverse and restarts everything in order', async () => {
    const f = new Fleet();
    const s = sup(new Supervisor('s', flags({ strategy: 'one_for_all' }), ['a', 'b', 'c', 'd'].map((id) => f.spec(id))));
    await s.start();
    f.log.length = 0;
    const restarted: string[] = [];
    s.on('restart', (id) => restarted.push(id));
    f.current('c').crash();
    await waitFor(() => restarted.length === 4, 2000, 'four restarts');
    expect(restarted).toEqual(['a', 'b', 'c', 'd']);
    expect(f.kinds('close', 'start')).toEqual(['close:d', 'close:b', 'close:a', 'start:a', 'start:b', 'start:c', 'start:d']);
  });

  it('honours permanent / transient / temporary', async () => {
    const f = new Fleet();
    const s = sup(
      new Supervisor('s', flags(), [
        f.spec('perm', { restart: 'permanent' }),
        f.spec('trans', { restart: 'transient' }),
        f.spec('temp', { restart: 'temporary' }),
      ]),
    );
    await s.start();
    // permanent: restarted even after a normal exit
    let restarted = nextEvent(s, 'restart', (id) => id === 'perm');
    f.current('perm').finish();
    await restarted;
    // transient: restarted after a crash...
    restarted = nextEvent(s, 'restart', (id) => id === 'trans');
    f.current('trans').crash();
    await restarted;
    // ...not after a normal exit
    f.current('trans').finish();
    // temporary: never restarted, and forgotten
    f.current('temp').crash();
    await sleep(30);
    expect(f.starts('perm')).toBe(2);
    expect(f.starts('trans')).toBe(2);
    expect(f.starts('temp')).toBe(1);
    expect(s.whichChildren().map((c) => [c.id, c.status])).toEqual([
      ['perm', 'running'],
      ['trans', 'stopped'],
    ]);
  });

  it('a temporary sibling inside a rest_for_one set is stopped and dropped, not restarted', async () => {
    const f = new Fleet();
    const s = sup(new Supervisor('s', flags({ strategy: 'rest_for_one' }), [f.spec('a'), f.spec('tmp', { restart: 'temporary' }), f.spec('c')]));
    await s.start();
    const restarted = nextEvent(s, 'restart', (id) => id === 'c');
    f.current('a').crash();
    await restarted;
    expect(f.starts('tmp')).toBe(1);
    expect(f.current('tmp').closeCalls).toBe(1);
    expect(s.whichChildren().map((c) => c.id)).toEqual(['a', 'c']);
  });
});

describe('backoff and intensity', () => {
  it('backs off exponentially between restarts and publishes the chosen delays', async () => {
    const f = new Fleet();
    const rec = record<SupervisorRestartMessage>('weir:supervisor:restart');
    try {
      const s = sup(new Supervisor('bo', flags({ backoff: { initialMs: 40, maxMs: 1000, factor: 2, resetAfterMs: 5000 } }), [f.spec('a')]));
      await s.start();
      const gaps: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        await crashAndAwaitRestart(s, f, 'a');
        gaps.push(performance.now() - t0);
      }
      expect(rec.messages.filter((m) => m.supervisor === 'bo').map((m) => m.delayMs)).toEqual([40, 80, 160]);
      expect(gaps[0]).toBeGreaterThanOrEqual(38);
      expect(gaps[1]).toBeGreaterThanOrEqual(78);
      expect(gaps[2]).toBeGreaterThanOrEqual(158);
      expect(gaps[2]!).toBeGreaterThan(gaps[0]!);
    } finally {
      rec.stop();
    }
  });

  it('exceeding intensity stops all children in reverse and exits abnormally with SUPERVISOR_ESCALATED', async () => {
    const f = new Fleet();
    const esc = record<SupervisorEscalateMessage>('weir:supervisor:escalate');
    try {
      const s = sup(new Supervisor('esc', flags({ intensity: 2, period: 10_000 }), [f.spec('a'), f.spec('b'), f.spec('c')]));
      await s.start();
      const exits: ChildExit[] = [];
      s.onExit((e) => exits.push(e));
      const escalated = nextEvent(s, 'escalate');
      await crashAndAwaitRestart(s, f, 'b');
      await crashAndAwaitRestart(s, f, 'b');
      f.log.length = 0;
      f.current('b').crash('third strike');
      const [error] = await escalated;
      expect(error).toBeInstanceOf(SupervisorEscalationError);
      expect(error.code).toBe('SUPERVISOR_ESCALATED');
      expect((error.cause as Error).message).toBe('third strike');
      expect(exits).toHaveLength(1);
      expect(exits[0]!.normal).toBe(false);
      expect(exits[0]!.reason).toBe(error);
      expect(f.kinds('close')).toEqual(['close:c', 'close:a']);
      expect(f.kinds('start')).toEqual([]);
      expect(f.starts('b')).toBe(3);
      expect(s.status).toBe('stopped');
      expect(esc.messages.filter((m) => m.supervisor === 'esc')).toHaveLength(1);
      // The event carries why the child failed last, not only the escalation.
      expect(esc.messages.find((m) => m.supervisor === 'esc')!.reason?.message).toBe('third strike');
    } finally {
      esc.stop();
    }
  });

  it('restarts spread over more than `period` do not escalate', async () => {
    const f = new Fleet();
    const s = sup(new Supervisor('s', flags({ intensity: 1, period: 60 }), [f.spec('a')]));
    await s.start();
    for (let i = 0; i < 4; i++) {
      await crashAndAwaitRestart(s, f, 'a');
      await sleep(70);
    }
    expect(s.status).toBe('running');
    expect(f.starts('a')).toBe(5);
  });

  it('a restart whose start() fails counts toward intensity and is retried with growing backoff', async () => {
    const f = new Fleet();
    const rec = record<SupervisorRestartMessage>('weir:supervisor:restart');
    try {
      const s = sup(new Supervisor('retry', flags({ intensity: 5, backoff: { initialMs: 20, maxMs: 1000 } }), [f.spec('a', { failOnCalls: [2, 3] })]));
      await s.start();
      const restarted = nextEvent(s, 'restart');
      f.current('a').crash();
      const [, handle] = await restarted;
      expect(handle).toBe(f.current('a'));
      expect(f.starts('a')).toBe(4); // initial, two failed restarts, one good
      const mine = rec.messages.filter((m) => m.supervisor === 'retry');
      expect(mine.map((m) => m.delayMs)).toEqual([20, 40, 80]);
      expect(mine.map((m) => m.restartsInPeriod)).toEqual([1, 2, 3]);
      expect(mine[1]!.reason?.message).toMatch(/start of a failed \(#2\)/);
      const t = f.startTimes.get('a')!;
      expect(t[2]! - t[1]!).toBeGreaterThanOrEqual(38);
      expect(t[3]! - t[2]!).toBeGreaterThanOrEqual(78);
      expect(s.whichChildren()[0]).toMatchObject({ status: 'running', restarts: 1 });
    } finally {
      rec.stop();
    }
  });

  it('a restart that can never start escalates after `intensity` attempts instead of looping (even without backoff)', async () => {
    const f = new Fleet();
    const s = sup(new Supervisor('s', flags({ intensity: 3 }), [f.spec('a', { failOnCalls: [2, 3, 4, 5, 6, 7, 8, 9, 10] }), f.spec('b')]));
    await s.start();
    const exited = new Promise<ChildExit>((resolve) => s.onExit(resolve));
    f.current('a').crash();
    const exit = await exited;
    expect(exit.reason).toBeInstanceOf(SupervisorEscalationError);
    expect(f.starts('a')).toBe(4); // initial + 3 restarts allowed by intensity
    await sleep(30);
    expect(f.starts('a')).toBe(4);
  });

  it('shows `restarting` while waiting for the backoff; a pending restart is merged into a sibling plan', async () => {
    const f = new Fleet();
    const s = sup(new Supervisor('s', flags({ strategy: 'rest_for_one', backoff: { initialMs: 150, maxMs: 150 } }), ['a', 'b', 'c'].map((id) => f.spec(id))));
    await s.start();
    f.current('c').crash();
    await waitFor(() => s.whichChildren()[2]!.status === 'restarting', 1000, 'c restarting');
    expect(s.getChild('c')).toBeUndefined();
    f.current('b').crash(); // plan: b and c; c's pending restart joins it
    const restarted: string[] = [];
    s.on('restart', (id) => restarted.push(id));
    await waitFor(() => restarted.length === 2, 2000, 'b and c restarted');
    await sleep(200); // c's original timer must not start it a second time
    expect(restarted).toEqual(['b', 'c']);
    expect(f.starts('c')).toBe(2);
    expect(s.whichChildren().map((c) => c.status)).toEqual(['running', 'running', 'running']);
  });

  it('under one_for_one, one child waiting for its backoff does not delay another child', async () => {
    const f = new Fleet();
    const s = sup(new Supervisor('s', flags({ backoff: { initialMs: 200, maxMs: 200 } }), [f.spec('a'), f.spec('b')]));
    await s.start();
    const t0 = performance.now();
    const both = Promise.all([nextEvent(s, 'restart', (id) => id === 'a'), nextEvent(s, 'restart', (id) => id === 'b')]);
    f.current('a').crash();
    f.current('b').crash();
    await both;
    expect(performance.now() - t0).toBeLessThan(380); // ~200, not 400
  });
});

describe('shutdown budgets and cancellation', () => {
  it('destroys a child whose close() exceeds its shutdown budget', async () => {
    const f = new Fleet();
    const s = sup(new Supervisor('s', flags(), [f.spec('a'), f.spec('slow', { hangOnClose: true, shutdown: 120 })]));
    await s.start();
    const t0 = performance.now();
    await s.close();
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(115);
    expect(took).toBeLessThan(1000);
    expect(f.kinds('close', 'destroy')).toEqual(['close:slow', 'destroy:slow', 'close:a']);
  });

  it("'brutal_kill' destroys without asking to close", async () => {
    const f = new Fleet();
    const s = sup(new Supervisor('s', flags(), [f.spec('a', { shutdown: 'brutal_kill' })]));
    await s.start();
    await s.close();
    expect(f.kinds('close', 'destroy')).toEqual(['destroy:a']);
  });

  it('close() cancels a pending restart and leaves no timer behind', async () => {
    const f = new Fleet();
    const s = sup(new Supervisor('s', flags({ backoff: { initialMs: 5000, maxMs: 5000 } }), [f.spec('a'), f.spec('b')]));
    await s.start();
    const timersBefore = activeTimers();
    f.current('a').crash();
    await waitFor(() => s.whichChildren()[0]!.status === 'restarting' && activeTimers() > timersBefore, 1000, 'restart timer');
    const t0 = performance.now();
    await s.close();
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(activeTimers()).toBe(timersBefore);
    await sleep(30);
    expect(f.starts('a')).toBe(1);
    expect(s.whichChildren().map((c) => c.status)).toEqual(['stopped', 'stopped']);
  });

  it('destroy() kills every child now, including one still starting', async () => {
    const f = new Fleet();
    const s = sup(new Supervisor('s', flags(), [f.spec('a'), f.spec('b', { startDelayMs: 40 })]));
    const exits: ChildExit[] = [];
    s.onExit((e) => exits.push(e));
    const starting = s.start();
    await waitFor(() => f.starts('b') === 1, 1000, 'b starting');
    s.destroy();
    await expect(starting).rejects.toBeInstanceOf(WeirError);
    expect(f.current('a').destroyCalls).toBe(1);
    await waitFor(() => f.instances.has('b'), 1000, 'b instance');
    expect(f.current('b').destroyCalls).toBe(1); // the late instance is not leaked
    expect(exits).toHaveLength(1);
    expect(exits[0]!.reason).toMatchObject({ code: 'SUPERVISOR_KILLED' });
  });

  it('the exit event reports requested stops as well as crashes', async () => {
    const f = new Fleet();
    const s = sup(new Supervisor('s', flags(), [f.spec('a'), f.spec('b')]));
    await s.start();
    const seen: [string, boolean][] = [];
    s.on('exit', (id, e) => seen.push([id, e.normal]));
    await s.close();
    expect(seen).toEqual([
      ['b', true],
      ['a', true],
    ]);
  });
});

describe('dynamic children', () => {
  it('startChild / terminateChild / restartChild / deleteChild / whichChildren / getChild', async () => {
    const f = new Fleet();
    const s = sup(new Supervisor('s', flags(), [f.spec('a'), f.spec('b')]));
    await s.start();

    const c = await s.startChild(f.spec('c'));
    expect(c).toBe(f.current('c'));
    expect(s.whichChildren().map((x) => x.id)).toEqual(['a', 'b', 'c']);
    await expect(s.startChild(f.spec('c'))).rejects.toMatchObject({ code: 'CHILD_ALREADY_EXISTS' });
    await expect(s.startChild(f.spec('bad', { failAlways: true }))).rejects.toMatchObject({ code: 'CHILD_START_FAILED' });
    expect(s.whichChildren().map((x) => x.id)).toEqual(['a', 'b', 'c']);

    await s.terminateChild('b');
    expect(f.current('b').closeCalls).toBe(1);
    expect(s.whichChildren()[1]).toEqual({ id: 'b', status: 'stopped', restarts: 0 });
    expect(s.getChild('b')).toBeUndefined();
    await sleep(20);
    expect(f.starts('b')).toBe(1); // a terminated child is not restarted

    await expect(s.deleteChild('a')).rejects.toMatchObject({ code: 'CHILD_RUNNING' });
    await expect(s.terminateChild('nope')).rejects.toMatchObject({ code: 'CHILD_NOT_FOUND' });

    const restarted = nextEvent(s, 'restart', (id) => id === 'b');
    const b1 = await s.restartChild('b');
    expect((await restarted)[1]).toBe(b1);
    expect(s.whichChildren()[1]).toMatchObject({ id: 'b', status: 'running', restarts: 1 });

    await s.terminateChild('b');
    await s.deleteChild('b');
    expect(s.whichChildren().map((x) => x.id)).toEqual(['a', 'c']);

    f.log.length = 0;
    await s.close();
    expect(f.kinds('close')).toEqual(['close:c', 'close:a']);
    await expect(s.startChild(f.spec('late'))).rejects.toMatchObject({ code: 'SUPERVISOR_NOT_RUNNING' });
  });

  it('startChildrenSettled starts its children at once and reports each outcome in order', async () => {
    const f = new Fleet();
    const s = sup(new Supervisor('s', flags(), [f.spec('a')]));
    await s.start();

    // Each start waits until the other one has begun: one after the other, neither would finish.
    let begun = 0;
    let bothBegun!: () => void;
    const together = new Promise<void>((resolve) => (bothBegun = resolve));
    const log: string[] = [];
    const meeting = (id: string): ChildSpec<TestChild> => ({
      id,
      restart: 'permanent',
      shutdown: 1000,
      start: async () => {
        if (++begun === 2) bothBegun();
        const met = await Promise.race([together.then(() => true), sleep(3000).then(() => false)]);
        if (!met) throw new Error(`${id} started alone: the other start never began`);
        return new TestChild(id, log, {});
      },
    });
    const outcomes = await s.startChildrenSettled([meeting('m1'), meeting('m2')]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled']);
    expect(outcomes.map((o) => (o.status === 'fulfilled' ? o.value.id : null))).toEqual(['m1', 'm2']);
    expect(s.whichChildren().map((x) => [x.id, x.status])).toEqual([['a', 'running'], ['m1', 'running'], ['m2', 'running']]);

    // One that fails is forgotten; the others run (the caller decides about them).
    const mixed = await s.startChildrenSettled([f.spec('x'), f.spec('bad', { failAlways: true }), f.spec('y')]);
    expect(mixed.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(mixed[1]).toMatchObject({ status: 'rejected', reason: { code: 'CHILD_START_FAILED' } });
    expect(mixed[0]).toMatchObject({ status: 'fulfilled', value: f.current('x') });
    expect(s.whichChildren().map((x) => x.id)).toEqual(['a', 'm1', 'm2', 'x', 'y']);
    expect(s.getChild('bad')).toBeUndefined();

    // Refused whole, nothing started: an id taken, an id given twice, an invalid spec.
    await expect(s.startChildrenSettled([f.spec('z'), f.spec('x')])).rejects.toMatchObject({ code: 'CHILD_ALREADY_EXISTS' });
    await expect(s.startChildrenSettled([f.spec('z'), f.spec('z')])).rejects.toMatchObject({ code: 'SUPERVISOR_BAD_CONFIG' });
    await expect(s.startChildrenSettled([f.spec('z'), { ...f.spec('w'), shutdown: -1 }])).rejects.toMatchObject({ code: 'SUPERVISOR_BAD_CONFIG' });
    expect(f.starts('z')).toBe(0);
    expect(s.whichChildren().map((x) => x.id)).toEqual(['a', 'm1', 'm2', 'x', 'y']);

    await s.close();
    await expect(s.startChildrenSettled([f.spec('late')])).rejects.toMatchObject({ code: 'SUPERVISOR_NOT_RUNNING' });
  });

  it('a dynamic child that crashes is supervised like the others', async () => {
    const f = new Fleet();
    const s = sup(new Supervisor('s', flags(), [f.spec('a')]));
    await s.start();
    await s.startChild(f.spec('dyn'));
    const d1 = await crashAndAwaitRestart(s, f, 'dyn');
    expect(s.getChild('dyn')).toBe(d1);
  });
});

describe('supervision trees', () => {
  it('an escalating child supervisor is restarted by its parent, and the parent escalates in turn', async () => {
    const f = new Fleet();
    const innerFlags = flags({ intensity: 1, period: 10_000 });
    const root = sup(
      new Supervisor<ChildHandle>('root', flags({ intensity: 1, period: 10_000 }), [
        f.spec('r1'),
        supervisorSpec<TestChild>('inner', innerFlags, [f.spec('x'), f.spec('y')]),
      ]),
    );
    await root.start();
    const inner0 = root.getChild('inner') as Supervisor<TestChild>;
    expect(inner0).toBeInstanceOf(Supervisor);

    // Two crashes of x in the inner supervisor: the second exceeds intensity 1.
    await crashAndAwaitRestart(inner0, f, 'x');
    const innerRestarted = nextEvent(root, 'restart', (id) => id === 'inner');
    f.current('x').crash();
    const [, inner1] = await innerRestarted;
    expect(inner1).toBeInstanceOf(Supervisor);
    expect(inner1).not.toBe(inner0);
    expect(inner0.status).toBe('stopped');
    expect(f.starts('x')).toBe(3);
    expect(f.starts('r1')).toBe(1);

    // Again: the root now exceeds its own intensity and exits abnormally.
    const rootExit = new Promise<ChildExit>((resolve) => root.onExit(resolve));
    const inner = inner1 as Supervisor<TestChild>;
    await crashAndAwaitRestart(inner, f, 'x');
    f.current('x').crash();
    const exit = await rootExit;
    expect(exit.normal).toBe(false);
    expect(exit.reason).toMatchObject({ code: 'SUPERVISOR_ESCALATED' });
    expect(exit.reason!.cause).toMatchObject({ code: 'SUPERVISOR_ESCALATED' }); // the inner one
    expect(root.status).toBe('stopped');
    expect(f.current('r1').alive).toBe(false);
    expect(f.current('y').alive).toBe(false);
  });

  it('closing the root closes the nested tree depth-first in reverse order', async () => {
    const f = new Fleet();
    const root = sup(
      new Supervisor<ChildHandle>('root', flags(), [
        f.spec('a'),
        supervisorSpec<TestChild>('inner', flags(), [f.spec('x'), f.spec('y')]),
        f.spec('z'),
      ]),
    );
    await root.start();
    expect(f.kinds('start')).toEqual(['start:a', 'start:x', 'start:y', 'start:z']);
    await root.close();
    expect(f.kinds('close')).toEqual(['close:z', 'close:y', 'close:x', 'close:a']);
  });
});
