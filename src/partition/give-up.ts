/**
 * When the broker gives up on a partition child that keeps failing (and FailedPartitions stands in
 * for it), instead of restarting it again: after `after` failures (crashes or failed restarts)
 * within `periodMs`, reached before the partition supervisor's restart intensity so that one
 * damaged log does not make it escalate (restarting every partition). A child started again after
 * being given up gets one chance, not another round of restarts. The pure rule: the fleet notes
 * the failures and asks.
 */
import { performance } from 'node:perf_hooks';

export interface GiveUpOptions {
  /** The partition supervisor's restart period (ms): failures older than this are forgotten. */
  periodMs: number;
  /** Failures within the period after which the child is given up. */
  after: number;
}

/** `partitionGiveUpAfter`'s default: min(5, the restart intensity), at least 2 (one crash is restarted). */
export function defaultGiveUpAfter(restartIntensity: number): number {
  return Math.max(2, Math.min(5, restartIntensity));
}

/** What a child given up had failed with: its last reason, and how many failures were counted. */
export interface GivenUp {
  reason: Error | null;
  failures: number;
}

export class GiveUpPolicy {
  /** Per child id: when it failed within the period, and why last. */
  private readonly failures = new Map<string, { at: number[]; reason: Error }>();
  /** Per child id: when it was last given up. */
  private readonly givenUpAt = new Map<string, number>();

  constructor(
    readonly opts: GiveUpOptions,
    private readonly now: () => number = () => performance.now(),
  ) {}

  noteFailure(id: string, reason: Error): void {
    const f = this.failures.get(id);
    if (f) {
      f.at.push(this.now());
      f.reason = reason;
    } else this.failures.set(id, { at: [this.now()], reason });
  }

  /** The child failed often enough within the period to be given up on now. */
  shouldGiveUp(id: string): boolean {
    return this.recentFailures(id) >= this.limit(id);
  }

  /** Record that the child is given up now, and say what it failed with. */
  giveUp(id: string): GivenUp {
    this.givenUpAt.set(id, this.now());
    const f = this.failures.get(id);
    return { reason: f?.reason ?? null, failures: f?.at.length ?? 1 };
  }

  private recentFailures(id: string): number {
    const f = this.failures.get(id);
    if (!f) return 0;
    const since = this.now() - this.opts.periodMs;
    f.at = f.at.filter((t) => t >= since);
    return f.at.length;
  }

  private limit(id: string): number {
    if (this.now() - (this.givenUpAt.get(id) ?? -Infinity) <= 2 * this.opts.periodMs) return 1;
    return this.opts.after;
  }
}
