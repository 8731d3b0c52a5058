/**
 * A `ChildHandle` over one raw `worker_threads` Worker (house style pitfall 9: long-lived actors get
 * a raw Worker owned by the supervisor, not a pool).
 *
 * Thread protocol (plain objects; custom errors do not survive postMessage, pitfall 8):
 *   worker → owner  `{ type: 'ready', ...payload }`   once, when ready to serve
 *   owner  → worker `{ type: 'shutdown' }`            drain, flush, then answer and exit
 *   worker → owner  `{ type: 'stopped' }`             state is safe; the worker exits next
 * A WarmWorker, before those: worker → owner `{ type: 'warm' }` (loaded), owner → worker
 * `{ type: 'start', workerData }`.
 * Any other message is left to the owner (`child.worker.on('message', ...)`).
 *
 * Exit mapping (exactly one `onExit` call per worker):
 *   'error' event with ERR_WORKER_OUT_OF_MEMORY → normal:false, CHILD_OUT_OF_MEMORY
 *   'error' event (uncaught exception)          → normal:false, CHILD_CRASHED (cause = the error)
 *   exit after close(), with `stopped` or code 0 → normal:true
 *   exit after destroy()                        → normal:false, CHILD_KILLED
 *   any other exit (terminate() from outside, process.exit) → normal:false, CHILD_EXITED
 */
import { parentPort, Worker, workerData as spawnData, type ResourceLimits, type TransferListItem } from 'node:worker_threads';
import type { ChildExit, ChildHandle, ExitListener } from './child-spec.js';
import {
  ChildCrashedError,
  ChildExitedError,
  ChildKilledError,
  ChildOutOfMemoryError,
  ChildStartFailedError,
  ChildStartTimeoutError,
} from './errors.js';

export interface ReadyMessage {
  type: 'ready';
  [key: string]: unknown;
}

export interface WorkerChildOptions {
  /** Compiled JS entry: use `workerEntry(relative, import.meta.url)` for files under src/. */
  entry: URL;
  /** Used in errors and as the thread name. */
  name: string;
  workerData?: unknown;
  transferList?: readonly TransferListItem[];
  resourceLimits?: ResourceLimits;
  /** Max ms between spawn and the `ready` message; then the worker is terminated. */
  readyTimeoutMs: number;
  execArgv?: string[];
  /**
   * A thread spawned earlier with the same entry (`new WarmWorker(...)`): it is given `workerData`
   * now instead of a new thread being spawned. Its name, limits and argv are the ones it was spawned with.
   */
  warm?: WarmWorker;
}

export interface WorkerChild<R extends ReadyMessage = ReadyMessage> extends ChildHandle {
  readonly name: string;
  /** For the owner's control messages; do not call `terminate()` on it, use `destroy()`. */
  readonly worker: Worker;
  readonly threadId: number;
  /** The `ready` message the worker posted. */
  readonly ready: R;
  /** Set once the worker has exited. */
  readonly exit: ChildExit | undefined;
}

/**
 * Spawns the worker and resolves once it posted `{type:'ready'}`. Rejects with CHILD_START_TIMEOUT
 * (after terminating the worker) or CHILD_START_FAILED (the worker threw or exited before ready);
 * in both cases the thread is gone when the promise settles.
 */
export function startWorkerChild<R extends ReadyMessage = ReadyMessage>(opts: WorkerChildOptions): Promise<WorkerChild<R>> {
  return new Promise<WorkerChild<R>>((resolve, reject) => {
    let worker: Worker;
    try {
      worker = opts.warm
        ? opts.warm.take(opts.workerData, opts.transferList)
        : new Worker(opts.entry, {
            workerData: opts.workerData,
            transferList: opts.transferList ? [...opts.transferList] : undefined,
            resourceLimits: opts.resourceLimits,
            name: opts.name,
            execArgv: opts.execArgv,
          });
    } catch (err) {
      reject(new ChildStartFailedError({ id: opts.name }, err));
      return;
    }
    let settled = false;
    let startError: unknown;
    const cleanup = () => {
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    const onMessage = (msg: unknown) => {
      if (settled || !isMessage(msg, 'ready')) return;
      settled = true;
      cleanup();
      // Synchronously attaches the handle's own 'error'/'exit' listeners: no event can slip between.
      resolve(new WorkerChildHandle<R>(worker, opts.name, msg as R));
    };
    const onError = (err: unknown) => {
      startError ??= err; // 'exit' follows and settles
    };
    const onExit = (exitCode: number) => {
      cleanup();
      if (settled) return;
      settled = true;
      reject(new ChildStartFailedError({ id: opts.name, exitCode }, startError));
    };
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      cleanup();
      const err = new ChildStartTimeoutError({ id: opts.name, timeoutMs: opts.readyTimeoutMs });
      worker.terminate().then(
        () => reject(err),
        () => reject(err),
      );
    }, opts.readyTimeoutMs);
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  });
}

/**
 * A thread spawned ahead of need, so that its isolate starts and its entry's modules load while the
 * owner goes on (a topic moving to worker threads holds its requests only for the opening of its
 * logs, not for thread starts). `startWorkerChild({ warm })` later hands it its data; an entry that
 * may be started so reads its data with `workerStartData()`. One use; `discard()` stops it unused.
 */
export class WarmWorker {
  /** Settles once the entry has loaded and waits for its data: resolves, or rejects if the thread died first. */
  readonly loaded: Promise<void>;
  private readonly worker: Worker;
  private dead: unknown = null;
  private taken = false;

  constructor(opts: Pick<WorkerChildOptions, 'entry' | 'name' | 'resourceLimits' | 'execArgv'>) {
    this.worker = new Worker(opts.entry, { workerData: WARM, resourceLimits: opts.resourceLimits, name: opts.name, execArgv: opts.execArgv });
    let error: unknown;
    this.loaded = new Promise<void>((resolve, reject) => {
      const onMessage = (m: unknown): void => {
        if (isMessage(m, 'warm')) resolve();
      };
      this.worker.on('message', onMessage);
      this.worker.on('error', (err: unknown) => (error ??= err));
      this.worker.once('exit', (exitCode: number) => {
        this.worker.off('message', onMessage);
        this.dead = new ChildStartFailedError({ id: opts.name, exitCode }, error);
        reject(this.dead);
      });
    });
    this.loaded.catch(() => undefined); // a caller that never waits must not see an unhandled rejection
  }

  /** For startWorkerChild: the thread, now given its data. Throws if it died or was taken. */
  take(workerData: unknown, transferList?: readonly TransferListItem[]): Worker {
    if (this.dead !== null) throw this.dead;
    if (this.taken) throw new Error('WarmWorker: already taken');
    this.taken = true;
    this.worker.postMessage({ type: 'start', workerData }, transferList ? [...transferList] : undefined);
    return this.worker;
  }

  /** Stop the thread if it was not taken. */
  discard(): void {
    if (this.taken || this.dead !== null) return;
    this.taken = true;
    this.worker.terminate().catch(() => undefined);
  }
}

const WARM = { weirWarmWorker: true } as const;

/**
 * In a worker's entry: its data, from `workerData`, or, in a thread spawned as a WarmWorker, from
 * the start message it waits for (after telling its owner it has loaded).
 */
export function workerStartData<T>(): Promise<T> {
  const d = spawnData as unknown;
  if (typeof d !== 'object' || d === null || (d as { weirWarmWorker?: unknown }).weirWarmWorker !== true) return Promise.resolve(d as T);
  const port = parentPort!;
  return new Promise<T>((resolve) => {
    const onMessage = (m: unknown): void => {
      if (!isMessage(m, 'start')) return;
      port.off('message', onMessage);
      resolve((m as { workerData: T }).workerData);
    };
    port.on('message', onMessage);
    port.postMessage({ type: 'warm' });
  });
}

class WorkerChildHandle<R extends ReadyMessage> implements WorkerChild<R> {
  readonly threadId: number;
  private closeRequested = false;
  private destroyed = false;
  private stoppedAck = false;
  private error: unknown;
  private exitInfo: ChildExit | undefined;
  private readonly listeners: ExitListener[] = [];
  private readonly exited: Promise<ChildExit>;
  private resolveExited!: (exit: ChildExit) => void;

  constructor(
    readonly worker: Worker,
    readonly name: string,
    readonly ready: R,
  ) {
    this.threadId = worker.threadId;
    this.exited = new Promise((resolve) => (this.resolveExited = resolve));
    worker.on('message', (msg: unknown) => {
      if (isMessage(msg, 'stopped')) this.stoppedAck = true;
    });
    worker.on('error', (err: unknown) => {
      this.error ??= err;
    });
    worker.once('exit', (code: number) => this.onWorkerExit(code));
  }

  get exit(): ChildExit | undefined {
    return this.exitInfo;
  }

  /** Asks the worker to shut down and resolves when it exited normally; rejects with the reason otherwise. */
  close(): Promise<void> {
    if (this.exitInfo === undefined && !this.closeRequested) {
      this.closeRequested = true;
      try {
        this.worker.postMessage({ type: 'shutdown' });
      } catch {
        // The port is already closing: the 'exit' event settles this.
      }
    }
    return this.exited.then((exit) => {
      if (!exit.normal) throw exit.reason;
    });
  }

  destroy(): void {
    if (this.exitInfo !== undefined || this.destroyed) return;
    this.destroyed = true;
    this.worker.terminate().catch(() => undefined);
  }

  onExit(listener: ExitListener): void {
    const exit = this.exitInfo;
    if (exit !== undefined) queueMicrotask(() => listener(exit));
    else this.listeners.push(listener);
  }

  private onWorkerExit(exitCode: number): void {
    const details = { id: this.name, threadId: this.threadId };
    let exit: ChildExit;
    if (this.error !== undefined) {
      const oom = (this.error as { code?: unknown }).code === 'ERR_WORKER_OUT_OF_MEMORY';
      exit = {
        normal: false,
        reason: oom ? new ChildOutOfMemoryError(details, this.error) : new ChildCrashedError(details, this.error),
      };
    } else if (this.closeRequested && (this.stoppedAck || (exitCode === 0 && !this.destroyed))) {
      exit = { normal: true, reason: null };
    } else if (this.destroyed) {
      exit = { normal: false, reason: new ChildKilledError(details) };
    } else {
      exit = { normal: false, reason: new ChildExitedError({ ...details, exitCode }) };
    }
    this.exitInfo = exit;
    this.resolveExited(exit);
    for (const listener of this.listeners.splice(0)) {
      try {
        listener(exit);
      } catch (err) {
        process.nextTick(() => {
          throw err;
        });
      }
    }
  }
}

function isMessage(msg: unknown, type: string): boolean {
  return typeof msg === 'object' && msg !== null && (msg as { type?: unknown }).type === type;
}
