/**
 * startWorkerChild over real worker threads (fixtures/child.mjs is plain JS, no build needed).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { once } from 'node:events';
import { startWorkerChild, WarmWorker, type ChildExit, type WorkerChild } from '../../src/supervisor/index.js';
import { WeirError } from '../../src/common/errors.js';

const entry = new URL('./fixtures/child.mjs', import.meta.url);

const started: WorkerChild[] = [];
async function spawn(workerData: Record<string, unknown> = {}, extra: { resourceLimits?: object; readyTimeoutMs?: number } = {}) {
  const child = await startWorkerChild({ entry, name: 'w', workerData, readyTimeoutMs: extra.readyTimeoutMs ?? 5000, ...extra });
  started.push(child);
  return child;
}
afterEach(async () => {
  for (const c of started.splice(0)) c.destroy();
});

function exitOf(child: WorkerChild): Promise<ChildExit> {
  return new Promise((resolve) => child.onExit(resolve));
}

describe('startWorkerChild', () => {
  it('resolves after the ready message and exposes its payload and the worker', async () => {
    const child = await spawn({ ready: { partition: 7 } });
    expect(child.ready).toMatchObject({ type: 'ready', partition: 7, threadId: child.threadId });
    child.worker.postMessage({ type: 'ping' });
    const [pong] = (await once(child.worker, 'message')) as [{ type: string }];
    expect(pong.type).toBe('pong');
  });

  it('close() sends shutdown, waits for stopped and the exit, and reports a normal exit once', async () => {
    const child = await spawn({ shutdownDelayMs: 80 });
    const messages: string[] = [];
    child.worker.on('message', (m: { type: string }) => messages.push(m.type));
    const exits: ChildExit[] = [];
    child.onExit((e) => exits.push(e));
    const t0 = performance.now();
    await child.close();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(75); // waited for the "flush"
    expect(messages).toEqual(['stopped']);
    expect(exits).toEqual([{ normal: true, reason: null }]);
    child.destroy(); // no second report
    await child.close(); // idempotent once exited
    const late: ChildExit[] = [];
    child.onExit((e) => late.push(e));
    await Promise.resolve();
    expect(exits).toHaveLength(1);
    expect(late).toEqual([{ normal: true, reason: null }]); // late listeners still hear it, once
  });

  it('an uncaught exception becomes exactly one abnormal exit with CHILD_CRASHED', async () => {
    const child = await spawn();
    const exits: ChildExit[] = [];
    child.onExit((e) => exits.push(e));
    const exited = exitOf(child);
    child.worker.postMessage({ type: 'crash', message: 'kaboom' });
    const exit = await exited;
    expect(exit.normal).toBe(false);
    expect(exit.reason).toMatchObject({ code: 'CHILD_CRASHED' });
    expect((exit.reason!.cause as Error).message).toBe('kaboom');
    await new Promise((r) => setTimeout(r, 20));
    expect(exits).toHaveLength(1);
  });

  it('running out of memory under resourceLimits becomes CHILD_OUT_OF_MEMORY', async () => {
    const child = await spawn({}, { resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 4 } });
    const exited = exitOf(child);
    child.worker.postMessage({ type: 'oom' });
    const exit = await exited;
    expect(exit.normal).toBe(false);
    expect(exit.reason).toMatchObject({ code: 'CHILD_OUT_OF_MEMORY' });
    expect(exit.reason!.cause).toMatchObject({ code: 'ERR_WORKER_OUT_OF_MEMORY' });
  });

  it('worker.terminate() from outside is an abnormal CHILD_EXITED; destroy() is CHILD_KILLED', async () => {
    const a = await spawn();
    const aExit = exitOf(a);
    await a.worker.terminate();
    expect(await aExit).toMatchObject({ normal: false, reason: { code: 'CHILD_EXITED' } });

    const b = await spawn();
    const bExit = exitOf(b);
    b.destroy();
    expect(await bExit).toMatchObject({ normal: false, reason: { code: 'CHILD_KILLED' } });
  });

  it('process.exit(0) without a close() request is not a normal exit', async () => {
    const child = await spawn();
    const exited = exitOf(child);
    child.worker.postMessage({ type: 'exit', code: 0 });
    expect(await exited).toMatchObject({ normal: false, reason: { code: 'CHILD_EXITED', details: { exitCode: 0 } } });
  });

  it('close() on a worker that ignores shutdown never resolves by itself; destroy() ends it abnormally', async () => {
    const child = await spawn({ ignoreShutdown: true });
    const closing = child.close().then(
      () => 'resolved',
      (e: WeirError) => e.code,
    );
    const winner = await Promise.race([closing, new Promise((r) => setTimeout(r, 150, 'pending'))]);
    expect(winner).toBe('pending');
    child.destroy();
    expect(await closing).toBe('CHILD_KILLED');
    expect(child.exit).toMatchObject({ normal: false });
  });

  it('a worker that throws before ready fails with CHILD_START_FAILED and the thread is gone', async () => {
    const err = await startWorkerChild({ entry, name: 'boot', workerData: { throwAtStartup: 'no config' }, readyTimeoutMs: 5000 }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(WeirError.isWeirError(err)).toBe(true);
    expect(err).toMatchObject({ code: 'CHILD_START_FAILED', details: { id: 'boot', exitCode: 1 } });
    expect(((err as Error).cause as Error).message).toBe('no config');
  });

  it('a worker that never posts ready is terminated after readyTimeoutMs with CHILD_START_TIMEOUT', async () => {
    const t0 = performance.now();
    const err = await startWorkerChild({ entry, name: 'mute', workerData: { neverReady: true }, readyTimeoutMs: 150 }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(performance.now() - t0).toBeGreaterThanOrEqual(145);
    expect(err).toMatchObject({ code: 'CHILD_START_TIMEOUT', retryable: true, details: { timeoutMs: 150 } });
  });

  it('a missing entry file fails with CHILD_START_FAILED', async () => {
    await expect(
      startWorkerChild({ entry: new URL('./fixtures/does-not-exist.mjs', import.meta.url), name: 'x', readyTimeoutMs: 5000 }),
    ).rejects.toMatchObject({ code: 'CHILD_START_FAILED' });
  });
});

describe('WarmWorker', () => {
  const warmEntry = new URL('./fixtures/warm-child.mjs', import.meta.url);

  it('loads ahead of need; startWorkerChild then gives it its data (shared memory included) and it serves and stops like any child', async () => {
    const warm = new WarmWorker({ entry: warmEntry, name: 'warm' });
    await warm.loaded;
    const shared = new Int32Array(new SharedArrayBuffer(4));
    const before = Date.now();
    const child = await startWorkerChild<{ type: 'ready'; data: { n: number; shared: Int32Array }; loadedAt: number }>({
      entry: warmEntry, name: 'warm', workerData: { n: 42, shared }, readyTimeoutMs: 5000, warm,
    });
    started.push(child);
    expect(child.ready.data.n).toBe(42);
    expect(child.ready.loadedAt).toBeLessThanOrEqual(before); // its module ran before it was started
    Atomics.store(shared, 0, 7); // what the thread was given (and posted back) is this memory, not a copy
    expect(Atomics.load(child.ready.data.shared, 0)).toBe(7);
    const exit = exitOf(child);
    await child.close();
    expect(await exit).toEqual({ normal: true, reason: null });
    warm.discard(); // taken: no effect
  });

  it('a thread that dies before it is started fails that start with CHILD_START_FAILED; one started twice is refused', async () => {
    const dead = new WarmWorker({ entry: new URL('./fixtures/does-not-exist.mjs', import.meta.url), name: 'gone' });
    await expect(dead.loaded).rejects.toMatchObject({ code: 'CHILD_START_FAILED' });
    await expect(startWorkerChild({ entry: warmEntry, name: 'gone', readyTimeoutMs: 5000, warm: dead })).rejects.toMatchObject({ code: 'CHILD_START_FAILED' });

    const warm = new WarmWorker({ entry: warmEntry, name: 'once' });
    started.push(await startWorkerChild({ entry: warmEntry, name: 'once', workerData: {}, readyTimeoutMs: 5000, warm }));
    await expect(startWorkerChild({ entry: warmEntry, name: 'once', readyTimeoutMs: 5000, warm })).rejects.toMatchObject({ code: 'CHILD_START_FAILED' });
  });

  it('a start that throws fails with CHILD_START_FAILED and its cause; discard() stops an unused thread', async () => {
    const warm = new WarmWorker({ entry: warmEntry, name: 'bad' });
    await warm.loaded;
    const err = await startWorkerChild({ entry: warmEntry, name: 'bad', workerData: { throwAtStart: 'bad slots' }, readyTimeoutMs: 5000, warm }).then(() => null, (e: unknown) => e);
    expect(err).toMatchObject({ code: 'CHILD_START_FAILED' });
    expect(((err as Error).cause as Error).message).toBe('bad slots');

    const unused = new WarmWorker({ entry: warmEntry, name: 'unused' });
    await unused.loaded;
    unused.discard();
    await expect(startWorkerChild({ entry: warmEntry, name: 'unused', readyTimeoutMs: 5000, warm: unused })).rejects.toMatchObject({ code: 'CHILD_START_FAILED' });
  });
});
