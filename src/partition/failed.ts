/**
 * Partitions the broker gave up on: their actor kept failing (more than the per-partition limit of
 * failures in the restart period, give-up.ts), or failed to start when the broker started. Such a
 * group stands in for the real one as the supervisor's child, so that one damaged log neither
 * exhausts the partition supervisor's restart intensity (which would restart every partition) nor
 * stops the broker's start: its actors are dead and carry the failure, which requests to them are
 * answered with (see Gateway) and /healthz reports. After `retryMs` the group exits, so the
 * supervisor starts the partitions again: once the cause is gone they serve again.
 */
import type { ChildExit } from '../supervisor/index.js';
import { PartitionRef, type ActorRuntime, type PartitionActorConfig, type PartitionActorGroup, type PartitionFailure, type PartitionResources } from './ref.js';

export class FailedPartitions implements PartitionActorGroup {
  readonly actors: PartitionRef[];
  private exit: ChildExit | null = null;
  private readonly listeners: Array<(e: ChildExit) => void> = [];
  private readonly timer: ReturnType<typeof setTimeout>;

  constructor(configs: PartitionActorConfig[], failure: PartitionFailure, retryMs: number) {
    const runtime = new DeadRuntime(failure);
    this.actors = configs.map((c) => {
      // No rings: a dead actor never writes to one (attachRings does nothing).
      const actor = new PartitionRef(c, runtime, 0, null, { start: 0, end: 0, truncatedBytes: 0, truncatedAtOffset: null, damage: [] });
      actor.failure = failure;
      return actor;
    });
    this.timer = setTimeout(() => this.exited({ normal: false, reason: new Error(`${failure.message}; starting it again`) }), retryMs);
    this.timer.unref();
  }

  handOver(): void {}
  close(): Promise<void> {
    this.exited({ normal: true, reason: null });
    return Promise.resolve();
  }
  destroy(): void {
    this.exited({ normal: true, reason: null });
  }
  onExit(listener: (e: ChildExit) => void): void {
    if (this.exit !== null) queueMicrotask(() => listener(this.exit!));
    else this.listeners.push(listener);
  }

  private exited(e: ChildExit): void {
    if (this.exit !== null) return;
    clearTimeout(this.timer);
    this.exit = e;
    for (const l of this.listeners.splice(0)) l(e);
  }
}

/** A runtime that has already exited: its actors are dead from the start. */
class DeadRuntime implements ActorRuntime {
  readonly worker = null;
  readonly deliversOutput = true;
  constructor(private readonly failure: PartitionFailure) {}
  inputPublished(): void {}
  describe(): Promise<{ start: number; end: number }> {
    return Promise.resolve({ start: 0, end: 0 });
  }
  crash(): void {}
  attachRings(): void {}
  resources(): PartitionResources {
    return { host: 'gateway', ringBytes: 0, bufferBytes: 0, fds: 0 };
  }
  onExit(listener: (e: ChildExit) => void): void {
    listener({ normal: false, reason: new Error(this.failure.message) });
  }
}
