/**
 * Pure restart-intensity and backoff logic. Everything takes `now` (a monotonic ms clock, the
 * supervisor uses `performance.now()`) so it can be tested without timers.
 */
import type { BackoffOptions } from './child-spec.js';

/**
 * OTP restart intensity: more than `intensity` restarts within `period` ms means the supervisor
 * gives up. Like OTP's `add_restart/1`: a restart at time t counts while `now - t < period`; the
 * new restart is added first, then the window is checked (so `intensity: 0` escalates on the first
 * restart, `intensity: 1` allows one restart per period).
 */
export class RestartIntensity {
  private stamps: number[] = [];

  constructor(
    readonly intensity: number,
    readonly period: number,
  ) {}

  /** Records a restart at `now`. Returns false when the limit is exceeded (escalate). */
  record(now: number): boolean {
    this.prune(now);
    this.stamps.push(now);
    return this.stamps.length <= this.intensity;
  }

  /** Restarts still inside the window at `now`. */
  count(now: number): number {
    this.prune(now);
    return this.stamps.length;
  }

  reset(): void {
    this.stamps = [];
  }

  private prune(now: number): void {
    // Stamps are appended with non-decreasing `now`, so the expired ones are a prefix.
    let i = 0;
    while (i < this.stamps.length && now - this.stamps[i]! >= this.period) i++;
    if (i > 0) this.stamps.splice(0, i);
  }
}

/**
 * Delay before restart number `attempt` (0-based) of one child:
 * `min(maxMs, initialMs * factor^attempt)`, then spread by ±jitter and clamped to [0, maxMs].
 * `random` returns a value in [0, 1) (injected for tests).
 */
export function backoffDelay(policy: BackoffOptions, attempt: number, random: () => number = Math.random): number {
  const factor = policy.factor ?? 2;
  const jitter = policy.jitter ?? 0;
  const base = Math.min(policy.maxMs, policy.initialMs * factor ** Math.max(0, attempt));
  const spread = jitter === 0 ? 0 : base * jitter * (2 * random() - 1);
  return Math.max(0, Math.min(policy.maxMs, Math.round(base + spread)));
}

/** Returns a list of problems with a backoff policy (empty when valid). */
export function validateBackoff(policy: BackoffOptions): string[] {
  const problems: string[] = [];
  const finiteNonNeg = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0;
  if (!finiteNonNeg(policy.initialMs)) problems.push('backoff.initialMs must be a finite number >= 0');
  if (!finiteNonNeg(policy.maxMs) || policy.maxMs < policy.initialMs) problems.push('backoff.maxMs must be finite and >= initialMs');
  if (policy.factor !== undefined && !(Number.isFinite(policy.factor) && policy.factor >= 1)) problems.push('backoff.factor must be >= 1');
  if (policy.jitter !== undefined && !(policy.jitter >= 0 && policy.jitter <= 1)) problems.push('backoff.jitter must be in [0, 1]');
  if (policy.resetAfterMs !== undefined && !finiteNonNeg(policy.resetAfterMs)) problems.push('backoff.resetAfterMs must be a finite number >= 0');
  return problems;
}

/**
 * Per-child backoff state. `next(now)` is called when the child failed (crash or failed start) and
 * returns the delay before the next start; `markStarted(now)` when a start succeeded. A child that
 * stayed up for `resetAfterMs` (default `maxMs`) before failing starts over from `initialMs`.
 * Without a policy every delay is 0.
 */
export class BackoffState {
  private attempt = 0;
  private startedAt: number | undefined;

  constructor(
    private readonly policy: BackoffOptions | undefined,
    private readonly random: () => number = Math.random,
  ) {}

  /** Consecutive failures counted so far (what the next delay is based on). */
  get attempts(): number {
    return this.attempt;
  }

  markStarted(now: number): void {
    this.startedAt = now;
  }

  next(now: number): number {
    if (this.policy === undefined) return 0;
    const resetAfter = this.policy.resetAfterMs ?? this.policy.maxMs;
    if (this.startedAt !== undefined && now - this.startedAt >= resetAfter) this.attempt = 0;
    // A failed start never calls markStarted, so the next failure keeps growing the delay.
    this.startedAt = undefined;
    const delay = backoffDelay(this.policy, this.attempt, this.random);
    this.attempt++;
    return delay;
  }

  reset(): void {
    this.attempt = 0;
    this.startedAt = undefined;
  }
}
