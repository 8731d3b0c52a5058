/**
 * The supervisor over REAL worker-thread children (fixtures/child.mjs): crashes by uncaught
 * exception, OOM under resourceLimits, terminate() from outside, graceful shutdown protocol.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { once } from 'node:events';
import {
  Supervisor,
  startWorkerChild,
  supervisorSpec,
  type ChildExit,
  type ChildHandle,
  type ChildSpec,
  type Restart,
  type SupervisorFlags,
  type SupervisorRestartMessage,
  type WorkerChild,
} from '../../src/supervisor/index.js';
import { nextEvent, record } from './helpers.js';

const entry = new URL('./fixtures/child.mjs', import.meta.url);

const spawns = new Map<string, number>();
function workerSpec(
  id: string,
  workerData: Record<string, unknown> = {},
  opts: { restart?: Restart; shutdown?: number | 'brutal_kill'; resourceLimits?: object } = {},
): ChildSpec<WorkerChild> {
  return {
    id,
    restart: opts.restart ?? 'permanent',
    shutdown: opts.shutdown ?? 2000,
    start: () => {
      spawns.set(id, (spawns.get(id) ?? 0) + 1);
      return startWorkerChild({ entry, name: id, workerData, readyTimeoutMs: 5000, ...(opts.resourceLimits ? { resourceLimits: opts.resourceLimits } : {}) });
    },
  };
}

const flags = (over: Partial<SupervisorFlags> = {}): SupervisorFlags => ({ strategy: 'one_for_one', intensity: 5, period: 10_000, ...over });

const live: Supervisor<ChildHandle>[] = [];
function track<H extends ChildHandle>(s: Supervisor<H>): Supervisor<H> {
  live.push(s as unknown as Supervisor<ChildHandle>);
  return s;
}
afterEach(async () => {
  spawns.clear();
  await Promise.all(live.splice(0).map((s) => s.close()));
});

async function ping(child: WorkerChild): Promise<number> {
  child.worker.postMessage({ type: 'ping' });
  for (;;) {
    const [msg] = (await once(child.worker, 'message')) as [{ type: string; threadId: number }];
    if (msg.type === 'pong') return msg.threadId;
  }
}

describe('supervising worker threads', () => {
  it('one_for_one: a crashed worker is replaced by a new thread, the restart event delivers it, siblings keep theirs', async () => {
    const s = track(new Supervisor<WorkerChild>('w1', flags(), [workerSpec('p0'), workerSpec('p1'), workerSpec('p2')]));
    await s.start();
    const before = s.whichChildren().map((c) => c.handle!.threadId);
    const exitEvent = nextEvent(s, 'exit', (id) => id === 'p1');
    const restarted = nextEvent(s, 'restart', (id) => id === 'p1');
    s.getChild('p1')!.worker.postMessage({ type: 'crash', message: 'partition bug' });
    const [[, exit], [, fresh]] = await Promise.all([exitEvent, restarted]);
    expect(exit).toMatchObject({ normal: false, reason: { code: 'CHILD_CRASHED' } });
    expect(fresh).toBe(s.getChild('p1'));
    expect(fresh.threadId).not.toBe(before[1]);
    expect(await ping(fresh)).toBe(fresh.threadId);
    const after = s.whichChildren().map((c) => c.handle!.threadId);
    expect([after[0], after[2]]).toEqual([before[0], before[2]]);
    expect(spawns.get('p1')).toBe(2);
  });

  it('restarts a worker that ran out of memory, and one terminated from outside', async () => {
    const s = track(
      new Supervisor<WorkerChild>('w2', flags(), [
        workerSpec('hog', {}, { resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 4 } }),
        workerSpec('victim'),
      ]),
    );
    await s.start();
    const oomExit = nextEvent(s, 'exit', (id) => id === 'hog');
    const hogBack = nextEvent(s, 'restart', (id) => id === 'hog');
    s.getChild('hog')!.worker.postMessage({ type: 'oom' });
    expect((await oomExit)[1]).toMatchObject({ normal: false, reason: { code: 'CHILD_OUT_OF_MEMORY' } });
    await hogBack;

    const victimExit = nextEvent(s, 'exit', (id) => id === 'victim');
    const victimBack = nextEvent(s, 'restart', (id) => id === 'victim');
    await s.getChild('victim')!.worker.terminate();
    expect((await victimExit)[1]).toMatchObject({ normal: false, reason: { code: 'CHILD_EXITED' } });
    const [, v] = await victimBack;
    expect(await ping(v)).toBe(v.threadId);
  });

  it('rest_for_one: when the first worker (e.g. the WAL writer) dies, the later ones are stopped in reverse and all restarted in order', async () => {
    const s = track(new Supervisor<WorkerChild>('w3', flags({ strategy: 'rest_for_one' }), [workerSpec('wal'), workerSpec('p0'), workerSpec('p1')]));
    await s.start();
    const exits: [string, boolean][] = [];
    const restarts: string[] = [];
    s.on('exit', (id, e) => exits.push([id, e.normal]));
    s.on('restart', (id) => restarts.push(id));
    const allBack = nextEvent(s, 'restart', (id) => id === 'p1');
    s.getChild('wal')!.worker.postMessage({ type: 'crash' });
    await allBack;
    expect(exits).toEqual([
      ['wal', false],
      ['p1', true], // graceful: shutdown -> stopped -> exit
      ['p0', true],
    ]);
    expect(restarts).toEqual(['wal', 'p0', 'p1']);
    expect([...spawns.values()]).toEqual([2, 2, 2]);
  });

  it('backoff delays grow between consecutive restarts of a crashing worker', async () => {
    const rec = record<SupervisorRestartMessage>('weir:supervisor:restart');
    try {
      const s = track(new Supervisor<WorkerChild>('w4', flags({ backoff: { initialMs: 60, maxMs: 2000, factor: 2 } }), [workerSpec('p')]));
      await s.start();
      const gaps: number[] = [];
      for (let i = 0; i < 3; i++) {
        const back = nextEvent(s, 'restart');
        const t0 = performance.now();
        s.getChild('p')!.worker.postMessage({ type: 'crash' });
        await back;
        gaps.push(performance.now() - t0);
      }
      const delays = rec.messages.filter((m) => m.supervisor === 'w4').map((m) => m.delayMs);
      expect(delays).toEqual([60, 120, 240]);
      gaps.forEach((g, i) => expect(g).toBeGreaterThanOrEqual(delays[i]! - 2));
      expect(gaps[2]!).toBeGreaterThan(gaps[0]!);
    } finally {
      rec.stop();
    }
  });

  it('a crash-looping worker makes its supervisor escalate to the root, which gives up too (intensity 0)', async () => {
    const root = track(
      new Supervisor<ChildHandle>('root', flags({ intensity: 0 }), [
        workerSpec('gateway'),
        supervisorSpec<WorkerChild>('partitions', flags({ intensity: 1 }), [workerSpec('looper', { crashAfterMs: 30 })]),
      ]),
    );
    const rootExit = new Promise<ChildExit>((resolve) => root.onExit(resolve));
    const innerExit = nextEvent(root, 'exit', (id) => id === 'partitions');
    const gatewayExit = nextEvent(root, 'exit', (id) => id === 'gateway');
    await root.start();
    const [, inner] = await innerExit;
    expect(inner).toMatchObject({ normal: false, reason: { code: 'SUPERVISOR_ESCALATED' } });
    expect(inner.reason!.cause).toMatchObject({ code: 'CHILD_CRASHED' });
    const exit = await rootExit;
    expect(exit).toMatchObject({ normal: false, reason: { code: 'SUPERVISOR_ESCALATED', details: { childId: 'partitions' } } });
    expect((await gatewayExit)[1]).toEqual({ normal: true, reason: null }); // stopped gracefully by the root
    expect(spawns.get('looper')).toBe(2); // initial + the one restart intensity 1 allows
    expect(spawns.get('gateway')).toBe(1);
    expect(root.status).toBe('stopped');
  });

  it('close() waits for each worker to answer stopped, and destroys one that ignores shutdown after its budget', async () => {
    const s = track(
      new Supervisor<WorkerChild>('w5', flags(), [
        workerSpec('flusher', { shutdownDelayMs: 100 }, { shutdown: 3000 }),
        workerSpec('stubborn', { ignoreShutdown: true }, { shutdown: 150 }),
      ]),
    );
    await s.start();
    const events: string[] = [];
    s.getChild('flusher')!.worker.on('message', (m: { type: string }) => events.push(`flusher:${m.type}`));
    s.on('exit', (id, e) => events.push(`exit:${id}:${e.normal ? 'normal' : (e.reason as { code?: string }).code}`));
    const t0 = performance.now();
    await s.close();
    const took = performance.now() - t0;
    expect(events).toEqual(['exit:stubborn:CHILD_KILLED', 'flusher:stopped', 'exit:flusher:normal']);
    expect(took).toBeGreaterThanOrEqual(245); // 150 budget, then 100 flush
    expect(took).toBeLessThan(2500);
  });

  it('a worker failing during the initial start fails start() once, without a restart loop', async () => {
    const s = track(
      new Supervisor<WorkerChild>('w6', flags({ backoff: { initialMs: 1, maxMs: 1 } }), [
        workerSpec('ok'),
        workerSpec('broken', { throwAtStartup: 'cannot open WAL' }),
        workerSpec('never'),
      ]),
    );
    const exits: [string, boolean][] = [];
    s.on('exit', (id, e) => exits.push([id, e.normal]));
    await expect(s.start()).rejects.toMatchObject({
      code: 'CHILD_START_FAILED',
      details: { id: 'broken', supervisor: 'w6' },
      cause: { code: 'CHILD_START_FAILED', cause: { message: 'cannot open WAL' } },
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(Object.fromEntries(spawns)).toEqual({ ok: 1, broken: 1 });
    expect(exits).toEqual([['ok', true]]);
    expect(s.status).toBe('stopped');
  });
});
