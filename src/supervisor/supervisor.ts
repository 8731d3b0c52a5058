/**
 * An Erlang/OTP-style supervisor, generic over its children (`ChildHandle`).
 *
 * Invariants:
 * - Children start in order and stop in reverse order, one at a time, each within its `shutdown`
 *   budget (close, then destroy when the budget is spent).
 * - Every operation that starts or stops children (start, restarts, startChild,
 *   startChildrenSettled, terminateChild, restartChild, deleteChild, close) runs on one serial
 *   queue, so two of them never interleave (startChildrenSettled's own starts run concurrently).
 *   Backoff delays are timers *outside* the queue: while child A waits to be restarted, the
 *   supervisor keeps handling other children.
 * - A child instance is "owned" while `record.instance` points at it. The supervisor detaches an
 *   instance before stopping it, so the exit that follows is recognised as requested, not a crash.
 * - More than `intensity` restarts within `period` ms: stop all children, exit `{normal:false,
 *   reason: SupervisorEscalationError}` and let the parent decide (OTP escalation).
 * - `close()`/`destroy()` cancel pending restart timers; no timer outlives the supervisor.
 */
import { channels } from '../common/diagnostics.js';
import type {
  ChildExit,
  ChildHandle,
  ChildInfo,
  ChildSpec,
  ChildStatus,
  ExitListener,
  Restart,
  SupervisorFlags,
} from './child-spec.js';
import {
  ChildAlreadyExistsError,
  ChildNotFoundError,
  ChildRunningError,
  ChildStartFailedError,
  SupervisorConfigError,
  SupervisorEscalationError,
  SupervisorKilledError,
  SupervisorNotRunningError,
} from './errors.js';
import { BackoffState, RestartIntensity, validateBackoff } from './intensity.js';
import { planRestart, shouldRestart } from './strategy.js';

export type SupervisorState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped';
export type StartKind = 'initial' | 'dynamic' | 'restart';

export interface SupervisorOptions {
  /** Monotonic clock in ms for intensity and backoff. Default `performance.now`. */
  now?: () => number;
  /** Random source in [0, 1) for backoff jitter. Default `Math.random`. */
  random?: () => number;
  /** After `destroy()`, how long to wait for the child to report its exit before moving on. Default 5000. */
  destroyWaitMs?: number;
}

/** Listener signatures of `Supervisor.on`. */
export interface SupervisorEvents<H extends ChildHandle = ChildHandle> {
  /** Any successful start (initial, dynamic or restart). */
  start: (id: string, handle: H, kind: StartKind) => void;
  /** A child was replaced by a fresh instance (automatic restart or `restartChild`). Re-wire here. */
  restart: (id: string, handle: H) => void;
  /** Every exit of a child instance, requested or not. Fail the instance's in-flight work here. */
  exit: (id: string, exit: ChildExit) => void;
  /** Restart intensity exceeded; the supervisor has stopped its children and exited. */
  escalate: (error: SupervisorEscalationError) => void;
}

/** Diagnostics channel payloads (see src/common/diagnostics.ts). */
export interface ChildStartMessage {
  supervisor: string;
  id: string;
  kind: StartKind;
  handle: ChildHandle;
}
export interface ChildExitMessage {
  supervisor: string;
  id: string;
  normal: boolean;
  reason: Error | null;
  requested: boolean;
}
export interface SupervisorRestartMessage {
  supervisor: string;
  id: string;
  ids: string[];
  delayMs: number;
  restartsInPeriod: number;
  reason: Error | null;
}
export interface SupervisorEscalateMessage {
  supervisor: string;
  id: string;
  intensity: number;
  period: number;
  error: SupervisorEscalationError;
  /** Why child `id` failed last (also `error.cause`). */
  reason: Error | null;
}

interface Instance<H> {
  handle: H;
  exited: Promise<ChildExit>;
}

interface RestartCycle<H extends ChildHandle> {
  /** Children to start, in start order. */
  members: ChildRecord<H>[];
  timer: ReturnType<typeof setTimeout> | undefined;
  cancelled: boolean;
}

interface ChildRecord<H extends ChildHandle> {
  spec: ChildSpec<H>;
  status: ChildStatus;
  restarts: number;
  backoff: BackoffState;
  instance: Instance<H> | undefined;
  /** Set while this child waits (backoff) for a scheduled restart. */
  cycle: RestartCycle<H> | undefined;
  lastReason: Error | null;
}

type StartResult<H> = { ok: true; handle: H } | { ok: false; error: unknown };

const RESTARTS: readonly Restart[] = ['permanent', 'transient', 'temporary'];
const STRATEGIES: readonly SupervisorFlags['strategy'][] = ['one_for_one', 'one_for_all', 'rest_for_one'];
/** setTimeout cannot wait longer than this; treat larger budgets as infinite. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class Supervisor<H extends ChildHandle = ChildHandle> implements ChildHandle {
  readonly name: string;
  readonly flags: Readonly<SupervisorFlags>;

  private state: SupervisorState = 'idle';
  private readonly records = new Map<string, ChildRecord<H>>();
  /** Start order; dynamic children are appended, restarts keep their position. */
  private order: ChildRecord<H>[] = [];
  private readonly intensity: RestartIntensity;
  private readonly cycles = new Set<RestartCycle<H>>();
  /** Instances being stopped right now (detached), so `destroy()` can kill them too. */
  private readonly stopping = new Set<ChildHandle>();
  private queue: Promise<unknown> = Promise.resolve();
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly destroyWaitMs: number;

  private exitInfo: ChildExit | undefined;
  private readonly exitListeners: ExitListener[] = [];
  private readonly listeners: { [E in keyof SupervisorEvents<H>]: Set<SupervisorEvents<H>[E]> } = {
    start: new Set(),
    restart: new Set(),
    exit: new Set(),
    escalate: new Set(),
  };

  constructor(name: string, flags: SupervisorFlags, specs: readonly ChildSpec<H>[] = [], options: SupervisorOptions = {}) {
    this.name = name;
    const problems = validateFlags(flags);
    const seen = new Set<string>();
    for (const spec of specs) {
      problems.push(...validateSpec(spec));
      if (seen.has(spec.id)) problems.push(`duplicate child id ${spec.id}`);
      seen.add(spec.id);
    }
    if (problems.length > 0) throw new SupervisorConfigError(name, problems);
    this.flags = Object.freeze({ ...flags, ...(flags.backoff ? { backoff: Object.freeze({ ...flags.backoff }) } : {}) });
    this.intensity = new RestartIntensity(flags.intensity, flags.period);
    this.now = options.now ?? (() => performance.now());
    this.random = options.random ?? Math.random;
    this.destroyWaitMs = options.destroyWaitMs ?? 5000;
    for (const spec of specs) this.addRecord(spec);
  }

  get status(): SupervisorState {
    return this.state;
  }

  // ---------------------------------------------------------------- events

  on<E extends keyof SupervisorEvents<H>>(event: E, listener: SupervisorEvents<H>[E]): this {
    this.listeners[event].add(listener);
    return this;
  }

  off<E extends keyof SupervisorEvents<H>>(event: E, listener: SupervisorEvents<H>[E]): this {
    this.listeners[event].delete(listener);
    return this;
  }

  private emit<E extends keyof SupervisorEvents<H>>(event: E, ...args: Parameters<SupervisorEvents<H>[E]>): void {
    for (const listener of [...this.listeners[event]]) {
      safeCall(() => (listener as (...a: unknown[]) => void)(...args));
    }
  }

  // ---------------------------------------------------------------- ChildHandle

  onExit(listener: ExitListener): void {
    const exit = this.exitInfo;
    if (exit !== undefined) queueMicrotask(() => safeCall(() => listener(exit)));
    else this.exitListeners.push(listener);
  }

  /**
   * Starts the children in order. If one fails, the ones already started are stopped in reverse
   * order and the returned promise rejects with CHILD_START_FAILED (no restart loop: piscina's
   * rule for workers failing during bootstrap).
   */
  start(): Promise<void> {
    if (this.state !== 'idle') return Promise.reject(new SupervisorNotRunningError(this.name, `already ${this.state}`));
    this.state = 'starting';
    return this.enqueue(() => this.doStart());
  }

  /** Graceful: cancels pending restarts, stops children in reverse start order, exits normally. */
  close(): Promise<void> {
    if (this.state === 'idle') {
      this.finish({ normal: true, reason: null });
      return Promise.resolve();
    }
    if (this.state === 'stopping' || this.state === 'stopped') return this.whenStopped();
    this.state = 'stopping';
    this.cancelAllCycles();
    return this.enqueue(async () => {
      await this.stopAll();
      this.finish({ normal: true, reason: null });
    });
  }

  /** Kill now: destroys every child (and any being stopped), exits `{normal:false}`. */
  destroy(): void {
    if (this.exitInfo !== undefined) return;
    this.cancelAllCycles();
    for (const rec of [...this.order].reverse()) {
      const inst = rec.instance;
      rec.instance = undefined;
      rec.status = 'stopped';
      if (inst) safeDestroy(inst.handle);
    }
    for (const handle of [...this.stopping]) safeDestroy(handle);
    this.finish({ normal: false, reason: new SupervisorKilledError(this.name) });
  }

  // ---------------------------------------------------------------- dynamic children

  /** Adds and starts a child at the end of the start order. Resolves with its handle. */
  async startChild(spec: ChildSpec<H>): Promise<H> {
    const [outcome] = await this.startChildrenSettled([spec]);
    if (outcome!.status === 'rejected') throw outcome!.reason;
    return outcome!.value;
  }

  /**
   * Adds several children at the end of the start order, in the order given, and starts them at
   * once: their start functions run concurrently (children whose starts are independent, such as
   * worker threads opening their own files, then take as long as the slowest, not the sum). One
   * outcome per spec, in order: a child that failed to start is forgotten (the reason is a
   * ChildStartFailedError, as from startChild); the others run, and what to do with them is the
   * caller's choice. Rejects, starting nothing, when a spec is invalid or an id is taken.
   */
  startChildrenSettled(specs: readonly ChildSpec<H>[]): Promise<PromiseSettledResult<H>[]> {
    const problems = specs.flatMap((spec) => validateSpec(spec));
    const ids = new Set<string>();
    for (const spec of specs) {
      if (ids.has(spec.id)) problems.push(`id '${spec.id}' is given twice`);
      ids.add(spec.id);
    }
    if (problems.length > 0) return Promise.reject(new SupervisorConfigError(this.name, problems));
    return this.enqueue(async () => {
      if (this.state !== 'running') throw new SupervisorNotRunningError(this.name, this.state);
      for (const spec of specs) if (this.records.has(spec.id)) throw new ChildAlreadyExistsError(this.name, spec.id);
      const recs = specs.map((spec) => this.addRecord(spec));
      const results = await Promise.all(recs.map((rec) => this.startRecord(rec, 'dynamic')));
      return results.map((result, i): PromiseSettledResult<H> => {
        if (result.ok) return { status: 'fulfilled', value: result.handle };
        const rec = recs[i]!;
        this.forget(rec);
        return { status: 'rejected', reason: new ChildStartFailedError({ id: rec.spec.id, supervisor: this.name }, result.error) };
      });
    });
  }

  /** Stops a child (within its shutdown budget) and keeps its spec as `stopped`; temporary specs are forgotten. */
  terminateChild(id: string): Promise<void> {
    return this.enqueue(async () => {
      const rec = this.mustGet(id);
      if (rec.cycle) this.removeFromCycle(rec);
      rec.status = 'stopped';
      await this.stopInstance(rec);
      rec.status = 'stopped';
      if (rec.spec.restart === 'temporary') this.forget(rec);
    });
  }

  /** Starts a `stopped` child again (OTP restart_child). Emits `restart`. */
  restartChild(id: string): Promise<H> {
    return this.enqueue(async () => {
      if (this.state !== 'running') throw new SupervisorNotRunningError(this.name, this.state);
      const rec = this.mustGet(id);
      if (rec.status !== 'stopped') throw new ChildRunningError(this.name, id, rec.status);
      const result = await this.startRecord(rec, 'restart');
      if (!result.ok) {
        rec.status = 'stopped';
        throw new ChildStartFailedError({ id, supervisor: this.name }, result.error);
      }
      return result.handle;
    });
  }

  /** Forgets the spec of a `stopped` child. */
  deleteChild(id: string): Promise<void> {
    return this.enqueue(async () => {
      const rec = this.mustGet(id);
      if (rec.status !== 'stopped') throw new ChildRunningError(this.name, id, rec.status);
      this.forget(rec);
    });
  }

  /** Children in start order. */
  whichChildren(): ChildInfo<H>[] {
    return this.order.map((rec) => {
      const info: ChildInfo<H> = { id: rec.spec.id, status: rec.status, restarts: rec.restarts };
      if (rec.instance) info.handle = rec.instance.handle;
      return info;
    });
  }

  /** The current instance of a child (changes after every restart), or undefined. */
  getChild(id: string): H | undefined {
    return this.records.get(id)?.instance?.handle;
  }

  // ---------------------------------------------------------------- internals: lifecycle

  private async doStart(): Promise<void> {
    for (const rec of [...this.order]) {
      if (this.state !== 'starting') break;
      const result = await this.startRecord(rec, 'initial');
      if (!result.ok) {
        const failure = new ChildStartFailedError({ id: rec.spec.id, supervisor: this.name }, result.error);
        rec.status = 'stopped';
        if (this.state === 'starting') {
          this.state = 'stopping';
          await this.stopAll();
          this.finish({ normal: false, reason: failure });
        }
        throw failure;
      }
    }
    if (this.state !== 'starting') throw new SupervisorNotRunningError(this.name, this.state);
    this.state = 'running';
  }

  private async startRecord(rec: ChildRecord<H>, kind: StartKind): Promise<StartResult<H>> {
    rec.status = kind === 'restart' ? 'restarting' : 'starting';
    let handle: H;
    try {
      handle = await rec.spec.start();
    } catch (error) {
      return { ok: false, error };
    }
    if (this.exitInfo !== undefined || this.records.get(rec.spec.id) !== rec) {
      // Destroyed while this child was starting: nobody would own the new instance.
      safeDestroy(handle);
      rec.status = 'stopped';
      return { ok: false, error: new SupervisorNotRunningError(this.name, this.state) };
    }
    let resolveExited!: (exit: ChildExit) => void;
    const exited = new Promise<ChildExit>((resolve) => (resolveExited = resolve));
    const instance: Instance<H> = { handle, exited };
    rec.instance = instance;
    rec.status = 'running';
    rec.backoff.markStarted(this.now());
    if (kind === 'restart') rec.restarts++;
    let reported = false;
    handle.onExit((exit) => {
      if (reported) return; // a handle that reports twice must not restart twice
      reported = true;
      resolveExited(exit);
      this.onChildExit(rec, instance, exit);
    });
    if (channels.childStart.hasSubscribers) {
      channels.childStart.publish({ supervisor: this.name, id: rec.spec.id, kind, handle } satisfies ChildStartMessage);
    }
    this.emit('start', rec.spec.id, handle, kind);
    if (kind === 'restart') this.emit('restart', rec.spec.id, handle);
    return { ok: true, handle };
  }

  private onChildExit(rec: ChildRecord<H>, instance: Instance<H>, exit: ChildExit): void {
    const requested = rec.instance !== instance;
    if (channels.childExit.hasSubscribers) {
      channels.childExit.publish({
        supervisor: this.name,
        id: rec.spec.id,
        normal: exit.normal,
        reason: exit.reason,
        requested,
      } satisfies ChildExitMessage);
    }
    this.emit('exit', rec.spec.id, exit);
    if (requested) return;
    rec.instance = undefined;
    rec.lastReason = exit.reason;
    if (this.state !== 'running' && this.state !== 'starting') {
      rec.status = 'stopped';
      return;
    }
    if (!shouldRestart(rec.spec.restart, exit)) {
      rec.status = 'stopped';
      if (rec.spec.restart === 'temporary') this.forget(rec);
      return;
    }
    rec.status = 'restarting';
    void this.enqueue(() => this.handleFailure(rec));
  }

  /**
   * A child failed (crashed, or its restart's `start()` rejected). Counts toward intensity, stops
   * the strategy's siblings in reverse order, and schedules their restart after the failed child's
   * backoff delay.
   */
  private async handleFailure(failed: ChildRecord<H>): Promise<void> {
    if (this.state !== 'running' || this.records.get(failed.spec.id) !== failed) return;
    // Already handled meanwhile: restarted, stopped by terminateChild, or swept into another plan.
    if (failed.status !== 'restarting' || failed.instance !== undefined || failed.cycle !== undefined) return;

    const now = this.now();
    if (!this.intensity.record(now)) {
      await this.escalate(failed);
      return;
    }

    const live = this.order.filter((r) => r.status === 'running' || r.status === 'restarting');
    const plan = planRestart(
      this.flags.strategy,
      live.map((r) => ({ id: r.spec.id, restart: r.spec.restart, running: r.instance !== undefined })),
      failed.spec.id,
    );

    // A pending restart of a sibling inside this plan is merged into this one.
    const startIds = new Set(plan.start);
    for (const id of plan.start) {
      const pending = this.records.get(id)?.cycle;
      if (pending === undefined) continue;
      for (const m of pending.members) startIds.add(m.spec.id);
      this.cancelCycle(pending);
    }

    for (const id of plan.stop) {
      const rec = this.records.get(id);
      if (rec === undefined) continue;
      rec.status = 'restarting';
      await this.stopInstance(rec);
      if (this.state !== 'running') return; // close()/destroy() takes over
    }
    for (const id of plan.drop) {
      const rec = this.records.get(id);
      if (rec === undefined) continue;
      rec.status = 'stopped';
      this.forget(rec);
    }

    const delayMs = failed.backoff.next(now);
    const cycle: RestartCycle<H> = {
      members: this.order.filter((r) => startIds.has(r.spec.id)),
      timer: undefined,
      cancelled: false,
    };
    for (const m of cycle.members) {
      m.status = 'restarting';
      m.cycle = cycle;
    }
    this.cycles.add(cycle);
    if (channels.supervisorRestart.hasSubscribers) {
      channels.supervisorRestart.publish({
        supervisor: this.name,
        id: failed.spec.id,
        ids: cycle.members.map((m) => m.spec.id),
        delayMs,
        restartsInPeriod: this.intensity.count(now),
        reason: failed.lastReason,
      } satisfies SupervisorRestartMessage);
    }
    if (delayMs <= 0) {
      await this.runCycle(cycle);
      return;
    }
    // Ref'd on purpose: a pending restart is pending work. close()/destroy() clear it.
    cycle.timer = setTimeout(() => {
      cycle.timer = undefined;
      void this.enqueue(() => this.runCycle(cycle));
    }, delayMs);
  }

  private async runCycle(cycle: RestartCycle<H>): Promise<void> {
    if (cycle.cancelled || this.state !== 'running') return;
    this.cycles.delete(cycle);
    const members = cycle.members.filter((m) => m.cycle === cycle && this.records.get(m.spec.id) === m);
    // Detach first: if one start fails, the rest stay `restarting` and the failure's plan picks them up.
    for (const m of members) m.cycle = undefined;
    for (const m of members) {
      if (m.status !== 'restarting') continue;
      const result = await this.startRecord(m, 'restart');
      if (this.state !== 'running') return;
      if (!result.ok) {
        m.status = 'restarting';
        m.lastReason = result.error instanceof Error ? result.error : new Error(String(result.error));
        // Counts toward intensity and backs off again: a failing start never loops hot.
        await this.handleFailure(m);
        return;
      }
    }
  }

  private async escalate(failed: ChildRecord<H>): Promise<void> {
    const error = new SupervisorEscalationError(
      { supervisor: this.name, childId: failed.spec.id, intensity: this.flags.intensity, period: this.flags.period },
      failed.lastReason ?? undefined,
    );
    this.state = 'stopping';
    this.cancelAllCycles();
    if (channels.supervisorEscalate.hasSubscribers) {
      channels.supervisorEscalate.publish({
        supervisor: this.name,
        id: failed.spec.id,
        intensity: this.flags.intensity,
        period: this.flags.period,
        error,
        reason: failed.lastReason,
      } satisfies SupervisorEscalateMessage);
    }
    await this.stopAll();
    this.finish({ normal: false, reason: error });
  }

  /** Stops every child in reverse start order. */
  private async stopAll(): Promise<void> {
    this.cancelAllCycles();
    for (const rec of [...this.order].reverse()) {
      await this.stopInstance(rec);
      rec.status = 'stopped';
      rec.cycle = undefined;
    }
  }

  private async stopInstance(rec: ChildRecord<H>): Promise<void> {
    const inst = rec.instance;
    if (inst === undefined) return;
    rec.instance = undefined; // detach: the coming exit is a requested one
    this.stopping.add(inst.handle);
    try {
      await shutdownHandle(inst.handle, inst.exited, rec.spec.shutdown, this.destroyWaitMs);
    } finally {
      this.stopping.delete(inst.handle);
    }
  }

  private finish(exit: ChildExit): void {
    if (this.exitInfo !== undefined) return;
    this.exitInfo = exit;
    this.state = 'stopped';
    this.cancelAllCycles();
    for (const resolve of this.stoppedWaiters.splice(0)) resolve();
    if (exit.reason instanceof SupervisorEscalationError) this.emit('escalate', exit.reason);
    for (const listener of this.exitListeners.splice(0)) safeCall(() => listener(exit));
  }

  private readonly stoppedWaiters: (() => void)[] = [];

  private whenStopped(): Promise<void> {
    if (this.state === 'stopped') return Promise.resolve();
    return new Promise((resolve) => this.stoppedWaiters.push(resolve));
  }

  // ---------------------------------------------------------------- internals: bookkeeping

  private enqueue<T>(op: () => Promise<T>): Promise<T> {
    const run = this.queue.then(op);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private cancelCycle(cycle: RestartCycle<H>): void {
    cycle.cancelled = true;
    if (cycle.timer !== undefined) clearTimeout(cycle.timer);
    cycle.timer = undefined;
    this.cycles.delete(cycle);
    for (const m of cycle.members) if (m.cycle === cycle) m.cycle = undefined;
  }

  private cancelAllCycles(): void {
    for (const cycle of [...this.cycles]) this.cancelCycle(cycle);
  }

  private removeFromCycle(rec: ChildRecord<H>): void {
    const cycle = rec.cycle;
    if (cycle === undefined) return;
    rec.cycle = undefined;
    cycle.members = cycle.members.filter((m) => m !== rec);
    if (cycle.members.length === 0) this.cancelCycle(cycle);
  }

  private addRecord(spec: ChildSpec<H>): ChildRecord<H> {
    const rec: ChildRecord<H> = {
      spec,
      status: 'stopped',
      restarts: 0,
      backoff: new BackoffState(this.flags.backoff, this.random),
      instance: undefined,
      cycle: undefined,
      lastReason: null,
    };
    this.records.set(spec.id, rec);
    this.order.push(rec);
    return rec;
  }

  private forget(rec: ChildRecord<H>): void {
    if (this.records.get(rec.spec.id) === rec) this.records.delete(rec.spec.id);
    this.order = this.order.filter((r) => r !== rec);
  }

  private mustGet(id: string): ChildRecord<H> {
    const rec = this.records.get(id);
    if (rec === undefined) throw new ChildNotFoundError(this.name, id);
    return rec;
  }
}

/**
 * Stops one handle: `close()` and wait for its exit, at most `shutdown` ms; then (or directly for
 * `'brutal_kill'`) `destroy()` and wait up to `destroyWaitMs` for the exit. Never throws.
 * Returns how it ended: 'closed', 'destroyed', or 'lost' (never reported its exit).
 */
export async function shutdownHandle(
  handle: ChildHandle,
  exited: Promise<unknown>,
  shutdown: number | 'brutal_kill',
  destroyWaitMs: number,
): Promise<'closed' | 'destroyed' | 'lost'> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const sleep = (ms: number) =>
    new Promise<false>((resolve) => {
      timer = setTimeout(resolve, ms, false);
    });
  const hasExited = exited.then(() => true as const);
  try {
    if (shutdown !== 'brutal_kill') {
      const graceful = (async () => {
        try {
          await handle.close();
        } catch {
          return false;
        }
        return hasExited;
      })();
      const budget = shutdown >= MAX_TIMER_MS ? new Promise<false>(() => {}) : sleep(shutdown);
      const ok = await Promise.race([graceful, hasExited, budget]);
      clearTimeout(timer);
      if (ok) return 'closed';
    }
    safeDestroy(handle);
    const gone = await Promise.race([hasExited, sleep(destroyWaitMs)]);
    return gone ? 'destroyed' : 'lost';
  } finally {
    clearTimeout(timer);
  }
}

export interface SupervisorSpecOptions<H extends ChildHandle> {
  restart?: Restart;
  /** Default `Infinity`: a child supervisor gets all the time its own children's budgets need. */
  shutdown?: number | 'brutal_kill';
  options?: SupervisorOptions;
  /** Called on every new instance before `start()`, e.g. to attach `on('restart')` listeners. */
  setup?: (supervisor: Supervisor<H>) => void;
}

/** A ChildSpec whose child is a (new, on every start) Supervisor: build trees with it. */
export function supervisorSpec<H extends ChildHandle = ChildHandle>(
  id: string,
  flags: SupervisorFlags,
  specs: readonly ChildSpec<H>[],
  opts: SupervisorSpecOptions<H> = {},
): ChildSpec<Supervisor<H>> {
  return {
    id,
    restart: opts.restart ?? 'permanent',
    shutdown: opts.shutdown ?? Infinity,
    start: async () => {
      const sup = new Supervisor<H>(id, flags, specs, opts.options);
      opts.setup?.(sup);
      await sup.start();
      return sup;
    },
  };
}

function validateFlags(flags: SupervisorFlags): string[] {
  const problems: string[] = [];
  if (!STRATEGIES.includes(flags.strategy)) problems.push(`unknown strategy ${String(flags.strategy)}`);
  if (!Number.isInteger(flags.intensity) || flags.intensity < 0) problems.push('intensity must be an integer >= 0');
  if (!(typeof flags.period === 'number' && flags.period > 0)) problems.push('period must be a number > 0 (ms)');
  if (flags.backoff !== undefined) problems.push(...validateBackoff(flags.backoff));
  return problems;
}

function validateSpec(spec: ChildSpec<ChildHandle>): string[] {
  const problems: string[] = [];
  if (typeof spec.id !== 'string' || spec.id.length === 0) problems.push('child id must be a non-empty string');
  if (typeof spec.start !== 'function') problems.push(`child ${spec.id}: start must be a function`);
  if (!RESTARTS.includes(spec.restart)) problems.push(`child ${spec.id}: unknown restart ${String(spec.restart)}`);
  if (spec.shutdown !== 'brutal_kill' && !(typeof spec.shutdown === 'number' && spec.shutdown >= 0)) {
    problems.push(`child ${spec.id}: shutdown must be ms >= 0 or 'brutal_kill'`);
  }
  return problems;
}

function safeDestroy(handle: ChildHandle): void {
  try {
    handle.destroy();
  } catch (err) {
    rethrowLater(err);
  }
}

/** Listener errors must not corrupt supervisor state, but must not vanish either: rethrow async. */
function safeCall(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    rethrowLater(err);
  }
}

function rethrowLater(err: unknown): void {
  process.nextTick(() => {
    throw err;
  });
}
