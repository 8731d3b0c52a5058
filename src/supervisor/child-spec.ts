/**
 * OTP vocabulary for supervised children (see erlang.org/doc/design_principles/sup_princ).
 *
 * - `permanent`: always restarted, whatever the exit.
 * - `transient`: restarted only after an abnormal exit (`normal: false`).
 * - `temporary`: never restarted; its spec is forgotten once it exits (as in OTP).
 */
export type Restart = 'permanent' | 'transient' | 'temporary';

export type Strategy = 'one_for_one' | 'one_for_all' | 'rest_for_one';

/** How a child ended. `normal` is true only for a requested, clean stop (`close()` completed). */
export interface ChildExit {
  normal: boolean;
  reason: Error | null;
}

export type ExitListener = (exit: ChildExit) => void;

/**
 * Anything a Supervisor can own: a worker thread, an in-process actor, another Supervisor.
 *
 * Contract:
 * - `close()` drains, flushes and stops; it resolves once the child has stopped and reported
 *   `{normal: true}`. It may reject (e.g. the child crashed while stopping); a Supervisor treats a
 *   rejection like a spent budget and calls `destroy()`. It may also never settle: the
 *   supervisor bounds it with the spec's `shutdown` budget.
 * - `destroy()` kills now; the child then reports `{normal: false}`.
 * - `onExit` listeners are called exactly once, for whatever ends the child (crash, close, destroy).
 *   A listener registered after the exit is still called once (asynchronously).
 */
export interface ChildHandle {
  close(): Promise<void>;
  destroy(): void;
  onExit(listener: ExitListener): void;
}

export interface ChildSpec<H extends ChildHandle = ChildHandle> {
  /** Unique within its supervisor. */
  id: string;
  /**
   * Resolves once the child is ready to serve (e.g. a partition that replayed its WAL). Must settle
   * in bounded time (startWorkerChild has `readyTimeoutMs`): the supervisor's operations are
   * serialized, so a start that hangs also holds up restarts of other children.
   */
  start: () => Promise<H>;
  restart: Restart;
  /**
   * Milliseconds to wait for `close()` (and the exit it causes) before `destroy()`; `Infinity` waits
   * forever (OTP `infinity`, meant for child supervisors); `'brutal_kill'` calls `destroy()` directly.
   */
  shutdown: number | 'brutal_kill';
}

export interface BackoffOptions {
  /** Delay before the first restart of a child. */
  initialMs: number;
  /** Upper bound of any delay (jitter included). */
  maxMs: number;
  /** Growth per consecutive restart of the same child. Default 2. */
  factor?: number;
  /** Fraction in [0, 1]: each delay is spread uniformly over ±jitter of its base value. Default 0. */
  jitter?: number;
  /**
   * A child that stayed up at least this long before failing starts again from `initialMs`.
   * Default: `maxMs`.
   */
  resetAfterMs?: number;
}

export interface SupervisorFlags {
  strategy: Strategy;
  /** Max restarts (OTP MaxR)... */
  intensity: number;
  /** ...within this many ms (OTP MaxT); one more escalates. */
  period: number;
  /** Per-child exponential backoff before a restart. Absent: restart at once (OTP behaviour). */
  backoff?: BackoffOptions;
}

export type ChildStatus = 'starting' | 'running' | 'restarting' | 'stopped';

export interface ChildInfo<H extends ChildHandle = ChildHandle> {
  id: string;
  status: ChildStatus;
  /** Times the supervisor replaced this child with a freshly started instance. */
  restarts: number;
  /** The current instance; absent unless `status === 'running'`. */
  handle?: H;
}
