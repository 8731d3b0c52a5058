/**
 * WeirError (src/common/errors.ts) and the supervisor's error classes. The common part belongs in
 * test/common/ once that folder is free to edit; it lives here because this module introduced it.
 */
import { describe, expect, it } from 'vitest';
import { MessageChannel } from 'node:worker_threads';
import { once } from 'node:events';
import { WeirError, errorToPlain, type PlainError } from '../../src/common/errors.js';
import {
  ChildCrashedError,
  ChildStartFailedError,
  SupervisorError,
  SupervisorEscalationError,
} from '../../src/supervisor/index.js';

async function throughPort<T>(value: T): Promise<unknown> {
  const { port1, port2 } = new MessageChannel();
  try {
    port1.postMessage(value);
    const [received] = await once(port2, 'message');
    return received;
  } finally {
    port1.close();
    port2.close();
  }
}

describe('WeirError', () => {
  it('carries code, retryable, details, cause, a per-class name and a cross-realm brand', () => {
    const root = new Error('disk full');
    const err = new ChildStartFailedError({ id: 'p3', supervisor: 'parts' }, root);
    expect(err).toBeInstanceOf(SupervisorError);
    expect(err).toBeInstanceOf(WeirError);
    expect(err.name).toBe('ChildStartFailedError');
    expect(err.stack!.split('\n')[0]).toBe('ChildStartFailedError: child p3 failed to start: disk full');
    expect(err.code).toBe('CHILD_START_FAILED');
    expect(err.retryable).toBe(true);
    expect(err.details).toEqual({ id: 'p3', supervisor: 'parts' });
    expect(err.cause).toBe(root);
    expect(WeirError.isWeirError(err)).toBe(true);
    expect(WeirError.isWeirError(root)).toBe(false);
    expect(WeirError.isWeirError({ code: 'X' })).toBe(false);
    expect(WeirError.isWeirError(null)).toBe(false);
    // The brand is Symbol.for-based, so it works for objects from another copy of the module.
    const foreign = Object.assign(new Error('x'), { [Symbol.for('weir.error')]: true });
    expect(WeirError.isWeirError(foreign)).toBe(true);
  });

  it('does not survive postMessage by itself (pitfall 8), but toPlain/fromPlain does', async () => {
    const err = new SupervisorEscalationError(
      { supervisor: 's', childId: 'p1', intensity: 3, period: 5000 },
      new ChildCrashedError({ id: 'p1', threadId: 4 }, new Error('segv')),
    );
    const raw = (await throughPort(err)) as Error;
    expect(raw).toBeInstanceOf(Error);
    expect(WeirError.isWeirError(raw)).toBe(false);
    expect((raw as unknown as { code?: string }).code).toBeUndefined();

    const plain = (await throughPort(err.toPlain())) as PlainError;
    const back = WeirError.fromPlain(plain);
    expect(WeirError.isWeirError(back)).toBe(true);
    expect(back).toMatchObject({
      code: 'SUPERVISOR_ESCALATED',
      name: 'SupervisorEscalationError',
      retryable: false,
      message: err.message,
      details: { supervisor: 's', childId: 'p1', intensity: 3, period: 5000 },
    });
    expect(back.stack).toBe(err.stack);
    expect(back.cause).toMatchObject({ code: 'CHILD_CRASHED', details: { id: 'p1', threadId: 4 } });
    expect((back.cause as WeirError).cause).toMatchObject({ code: 'UNKNOWN', message: 'segv' });
  });

  it('errorToPlain keeps Node error codes and never throws on odd values; fromPlain tolerates garbage', () => {
    const nodeErr = Object.assign(new Error('oom'), { code: 'ERR_WORKER_OUT_OF_MEMORY' });
    expect(errorToPlain(nodeErr)).toMatchObject({ code: 'ERR_WORKER_OUT_OF_MEMORY', message: 'oom', retryable: false });
    expect(errorToPlain('just a string')).toEqual({ code: 'UNKNOWN', message: 'just a string', retryable: false });
    const cyclic = new Error('a') as Error & { cause?: unknown };
    cyclic.cause = cyclic;
    expect(() => errorToPlain(cyclic)).not.toThrow();
    expect(WeirError.fromPlain(42)).toMatchObject({ code: 'UNKNOWN' });
    expect(WeirError.fromPlain({ message: 'm' })).toMatchObject({ code: 'UNKNOWN', message: 'm', retryable: false });
    expect(new WeirError('', 'x').code).toBe('UNKNOWN');
  });
});
