/**
 * Where a topic's partition actors run under `actorHost: 'auto'`: on the gateway's own thread while
 * the topic is quiet, on worker threads once it is busy. The two hosts cost differently: on the
 * gateway's thread a request needs no thread wake-up,
 * which is most of the broker's CPU per message at low rates; on worker threads the log's writes
 * (and fdatasyncs) run beside the gateway instead of on the thread that serves every socket, which
 * is what a busy topic needs, and what more cores reward.
 *
 * This is the pure decision: fed one sample per period (the gateway thread's event-loop
 * utilization; each topic's records per second and time on the gateway's thread), it answers with
 * at most one move. Moving is the fleet's business (PartitionFleet.moveTopic, fleet.ts). Both
 * directions wait for a sustained signal, and the two thresholds are apart, so a topic near one of
 * them does not move back and forth. A topic that was expensive on the gateway's thread at a low
 * rate (fdatasyncs on a slow disk) waits ten times longer before it comes back.
 */

export type PartitionHostKind = 'threads' | 'gateway';
/** Where a broker runs its partition actors (`--actor-host`): always on one host, or `auto`: placed by load. */
export type ActorHost = PartitionHostKind | 'auto';

export interface PlacementOptions {
  /** How often the broker samples (ms). */
  sampleMs: number;
  /** The gateway thread counts as busy at or above this event-loop utilization (0..1). */
  busyUtilization: number;
  /** Consecutive busy samples before the busiest gateway-hosted topic moves to worker threads. */
  busySamples: number;
  /** Only a topic with at least this many records per second (produced + delivered) is moved off the gateway… */
  hotRecordsPerSec: number;
  /**
   * …or one whose partitions took at least this many ms per second of the gateway's thread
   * (stepping their cores: log writes, fdatasyncs), whatever its rate: under fsync `always` a slow
   * disk makes a quiet topic expensive there.
   */
  hotGatewayMsPerSec: number;
  /** A threaded topic at or below this many records per second for `coldSamples` samples in a row… */
  coldRecordsPerSec: number;
  coldSamples: number;
  /** As coldSamples, for a topic that moved off for its time alone (below hotRecordsPerSec): what made it slow may not have passed. */
  coldSamplesAfterSlow: number;
  /** …moves to the gateway's thread, if the gateway's utilization is at or below this. */
  idleUtilization: number;
}

export const DEFAULT_PLACEMENT: PlacementOptions = {
  sampleMs: 1_000,
  busyUtilization: 0.6,
  busySamples: 3,
  hotRecordsPerSec: 20_000,
  hotGatewayMsPerSec: 250,
  coldRecordsPerSec: 10_000,
  coldSamples: 30,
  coldSamplesAfterSlow: 300,
  idleUtilization: 0.3,
};

export interface TopicLoad {
  topic: string;
  host: PartitionHostKind;
  recordsPerSec: number;
  /** ms per second its partitions took of the gateway's thread (0 on threads). */
  gatewayMsPerSec: number;
}

export interface PlacementMove {
  topic: string;
  to: PartitionHostKind;
}

export class PlacementPolicy {
  private busyRun = 0;
  /** Consecutive cold samples of each threaded topic. */
  private readonly coldRuns = new Map<string, number>();
  /** Threaded topics that moved off the gateway for their time alone. */
  private readonly movedSlow = new Set<string>();

  constructor(readonly opts: PlacementOptions) {
    if (!(opts.coldRecordsPerSec < opts.hotRecordsPerSec)) throw new RangeError('placement: coldRecordsPerSec must be below hotRecordsPerSec');
    if (!(opts.idleUtilization < opts.busyUtilization)) throw new RangeError('placement: idleUtilization must be below busyUtilization');
    if (!(opts.busySamples >= 1 && opts.coldSamples >= 1 && opts.coldSamplesAfterSlow >= 1 && opts.sampleMs > 0 && opts.hotGatewayMsPerSec > 0)) throw new RangeError('placement: sampleMs, busySamples, coldSamples, coldSamplesAfterSlow and hotGatewayMsPerSec must be positive');
  }

  /** One sample: the gateway thread's utilization over the last period and every topic's load. */
  decide(utilization: number, topics: readonly TopicLoad[]): PlacementMove | null {
    const o = this.opts;
    this.busyRun = utilization >= o.busyUtilization ? this.busyRun + 1 : 0;
    const seen = new Set<string>();
    for (const t of topics) {
      seen.add(t.topic);
      if (t.host === 'threads' && t.recordsPerSec <= o.coldRecordsPerSec) this.coldRuns.set(t.topic, (this.coldRuns.get(t.topic) ?? 0) + 1);
      else this.coldRuns.delete(t.topic);
    }
    for (const name of this.coldRuns.keys()) if (!seen.has(name)) this.coldRuns.delete(name);
    for (const name of this.movedSlow) if (!seen.has(name)) this.movedSlow.delete(name);

    if (this.busyRun >= o.busySamples) {
      // The hottest gateway-hosted topic, by whichever of its measures is further past its threshold.
      let hot: TopicLoad | null = null;
      let hotness = 1;
      for (const t of topics) {
        if (t.host !== 'gateway') continue;
        const h = Math.max(t.recordsPerSec / o.hotRecordsPerSec, t.gatewayMsPerSec / o.hotGatewayMsPerSec);
        if (h >= hotness) {
          hot = t;
          hotness = h;
        }
      }
      if (hot !== null) {
        this.busyRun = 0; // the next move needs a fresh busy stretch, measured without this topic
        if (hot.recordsPerSec < o.hotRecordsPerSec) this.movedSlow.add(hot.topic);
        else this.movedSlow.delete(hot.topic);
        return { topic: hot.topic, to: 'threads' };
      }
    }
    if (utilization <= o.idleUtilization) {
      let cold: string | null = null;
      let longest = 0;
      for (const [name, run] of this.coldRuns) {
        if (run >= (this.movedSlow.has(name) ? o.coldSamplesAfterSlow : o.coldSamples) && run > longest) {
          cold = name;
          longest = run;
        }
      }
      if (cold !== null) {
        this.coldRuns.delete(cold);
        this.movedSlow.delete(cold);
        return { topic: cold, to: 'gateway' };
      }
    }
    return null;
  }
}
