/**
 * One doorbell for a consumer thread that drains several rings (several partition actors hosted
 * by one worker thread). A thread can park on one address only, so its producers ring this bell
 * instead of each ring's own CONSUMER_WAITING flag; the protocol is the same (see doorbell.ts):
 * the sleeper announces (flag = 1), re-checks every ring, then waits while the flag is still 1; a
 * producer publishes first, then wakes the sleeper only if it announced itself.
 *
 * Layout: one Int32 flag on its own cache line. Writers: the sleeper (1, then 0) and wakers (0).
 */
import { Sleeper, type WaitResult } from './doorbell.js';

const BYTES = 64;
const FLAG = 0;

export function createThreadBell(): SharedArrayBuffer {
  return new SharedArrayBuffer(BYTES);
}

export class ThreadBell {
  readonly #sleeper: Sleeper;

  constructor(readonly buffer: SharedArrayBuffer) {
    if (buffer.byteLength !== BYTES) throw new RangeError(`a thread bell is ${BYTES} bytes, got ${buffer.byteLength}`);
    this.#sleeper = new Sleeper(new Int32Array(buffer), FLAG);
  }

  /** Producer, after publishing to any ring of this thread. True if it woke the thread. */
  ring(): boolean {
    return this.#sleeper.wake();
  }

  /** Consumer thread (a worker): block until `hasData()` or the timeout. */
  waitSync(hasData: () => boolean, timeoutMs: number): WaitResult {
    if (hasData()) return 'ok';
    return this.#sleeper.sleepSync(() => (hasData() ? 'ok' : null), timeoutMs);
  }

  /** Consumer thread, without blocking its event loop. */
  waitAsync(hasData: () => boolean, timeoutMs: number): Promise<WaitResult> {
    if (hasData()) return Promise.resolve('ok');
    return this.#sleeper.sleepAsync(() => (hasData() ? 'ok' : null), timeoutMs);
  }
}
