/**
 * startWorkerChild over real worker threads (fixtures/child.mjs is plain JS, no build needed).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { once } from 'node:events';
import { startWorkerChild, type ChildExit, type WorkerChild } from '../../src/supervisor/index.js';
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
