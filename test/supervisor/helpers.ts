/**
 * Test children for supervisor tests: tiny real ChildHandle implementations whose crashes the test
 * triggers (not mocks of weir components). Worker-thread children live in ./fixtures.
 */
import diagnostics_channel from 'node:diagnostics_channel';
import type { ChildExit, ChildHandle, ChildSpec, ExitListener, Restart } from '../../src/supervisor/index.js';
import type { Supervisor, SupervisorEvents } from '../../src/supervisor/index.js';

export interface TestChildBehavior {
  /** close() takes this long before the child exits normally. Default 0. */
  closeMs?: number;
  /** close() never completes (the supervisor must destroy after the shutdown budget). */
  hangOnClose?: boolean;
}

let instanceSeq = 0;

export class TestChild implements ChildHandle {
  readonly instance = ++instanceSeq;
  exitInfo: ChildExit | undefined;
  closeCalls = 0;
  destroyCalls = 0;
  private readonly listeners: ExitListener[] = [];

  constructor(
    readonly id: string,
    private readonly log: string[],
    private readonly behavior: TestChildBehavior = {},
  ) {}

  crash(message = `${this.id} crashed`): void {
    this.report({ normal: false, reason: new Error(message) });
  }

  /** Exits on its own with normal=true (e.g. a transient child that finished). */
  finish(): void {
    this.report({ normal: true, reason: null });
  }

  close(): Promise<void> {
    this.closeCalls++;
    this.log.push(`close:${this.id}`);
    if (this.behavior.hangOnClose) return new Promise(() => {});
    return new Promise((resolve) => {
      setTimeout(() => {
        this.report({ normal: true, reason: null });
        resolve();
      }, this.behavior.closeMs ?? 0);
    });
  }

  destroy(): void {
    this.destroyCalls++;
    this.log.push(`destroy:${this.id}`);
    this.report({ normal: false, reason: new Error('killed') });
  }

  onExit(listener: ExitListener): void {
    const exit = this.exitInfo;
    if (exit) queueMicrotask(() => listener(exit));
    else this.listeners.push(listener);
  }

  get alive(): boolean {
    return this.exitInfo === undefined;
  }

  private report(exit: ChildExit): void {
    if (this.exitInfo) return;
    this.exitInfo = exit;
    this.log.push(`exit:${this.id}`);
    for (const l of this.listeners.splice(0)) l(exit);
  }
}

export interface TestSpecOptions extends TestChildBehavior {
  restart?: Restart;
  shutdown?: number | 'brutal_kill';
  /** The first N calls of start() reject. */
  failStarts?: number;
  /** Every call of start() rejects. */
  failAlways?: boolean;
  /** These (1-based) calls of start() reject. */
  failOnCalls?: number[];
  startDelayMs?: number;
}

/** Creates specs and remembers every instance and every start() call, in order. */
export class Fleet {
  readonly log: string[] = [];
  readonly instances = new Map<string, TestChild[]>();
  readonly startCalls = new Map<string, number>();
  /** performance.now() of every start() call, per id. */
  readonly startTimes = new Map<string, number[]>();

  spec(id: string, opts: TestSpecOptions = {}): ChildSpec<TestChild> {
    return {
      id,
      restart: opts.restart ?? 'permanent',
      shutdown: opts.shutdown ?? 1000,
      start: async () => {
        const n = (this.startCalls.get(id) ?? 0) + 1;
        this.startCalls.set(id, n);
        this.log.push(`start:${id}`);
        this.startTimes.set(id, [...(this.startTimes.get(id) ?? []), performance.now()]);
        if (opts.startDelayMs) await sleep(opts.startDelayMs);
        if (opts.failAlways || n <= (opts.failStarts ?? 0) || opts.failOnCalls?.includes(n)) throw new Error(`start of ${id} failed (#${n})`);
        const child = new TestChild(id, this.log, opts);
        const list = this.instances.get(id) ?? [];
        list.push(child);
        this.instances.set(id, list);
        return child;
      },
    };
  }

  current(id: string): TestChild {
    const list = this.instances.get(id);
    if (!list || list.length === 0) throw new Error(`no instance of ${id}`);
    return list[list.length - 1]!;
  }

  starts(id: string): number {
    return this.startCalls.get(id) ?? 0;
  }

  /** Log entries of the given kinds, in order, e.g. kinds('start', 'close'). */
  kinds(...kinds: string[]): string[] {
    return this.log.filter((e) => kinds.includes(e.split(':')[0]!));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function waitFor(predicate: () => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** Resolves with the arguments of the next `event` emitted by `sup` (optionally filtered). */
export function nextEvent<H extends ChildHandle, E extends keyof SupervisorEvents<H>>(
  sup: Supervisor<H>,
  event: E,
  filter: (...args: Parameters<SupervisorEvents<H>[E]>) => boolean = () => true,
  timeoutMs = 5000,
): Promise<Parameters<SupervisorEvents<H>[E]>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sup.off(event, listener);
      reject(new Error(`no ${String(event)} event within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = ((...args: Parameters<SupervisorEvents<H>[E]>) => {
      if (!filter(...args)) return;
      clearTimeout(timer);
      sup.off(event, listener);
      resolve(args);
    }) as SupervisorEvents<H>[E];
    sup.on(event, listener);
  });
}

/** Collects the messages published on a diagnostics channel until `stop()`. */
export function record<T = unknown>(name: string): { messages: T[]; stop: () => void } {
  const messages: T[] = [];
  const fn = (msg: unknown) => messages.push(msg as T);
  diagnostics_channel.subscribe(name, fn);
  return { messages, stop: () => diagnostics_channel.unsubscribe(name, fn) };
}

/** Number of live timers in this process (to assert none are left behind). */
export function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}
