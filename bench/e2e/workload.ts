/**
 * What a load-generator run does, independent of the system under test (modelled on the
 * OpenMessaging Benchmark's workload files, https://github.com/openmessaging/benchmark, Apache-2.0).
 *
 * A Workload is plain data (structured-cloneable): it is sent as-is to every producer/consumer
 * thread and written into the JSON report.
 */

/** How producers pick message keys (OMB's KeyDistributorType). */
export type KeyDistribution =
  /** No key: the broker spreads batches over partitions (weir: round-robin per request). */
  | 'none'
  /** Key i mod `keys` for message i of each producer: every partition gets every batch's share. */
  | 'round-robin'
  /** A uniformly random key among `keys` per message. */
  | 'random';

export interface Workload {
  /** Preset name, or 'custom'. */
  name: string;
  topics: number;
  partitionsPerTopic: number;
  /** Payload (value) bytes per message, ≥ 8: the first 8 hold the intended send time. */
  messageSize: number;
  /** Producers per topic, each on its own connection and thread. */
  producersPerTopic: number;
  /** Consumers per topic, each on its own connection and thread, all in one subscription (group) per topic. */
  consumersPerTopic: number;
  keyDistribution: KeyDistribution;
  /** Distinct keys for 'round-robin' and 'random'. */
  keys: number;
  /** Target messages/s summed over every producer of every topic; 0 = as fast as acks allow. */
  producerRate: number;
  /** Most messages per produce call (one call = one batch = one request). */
  batchSize: number;
  /** At a fixed rate, a partial batch is sent once its oldest message is this old (0: every wake-up sends what is due). */
  lingerMs: number;
  /**
   * At a fixed rate, the last this-many ms before the next send are waited by re-checking on every
   * event-loop turn (setImmediate) instead of a timer: timers fire up to ~1 ms late, and latency is
   * measured from the intended send time, so a timer-paced producer at 5,000 msg/s would add its
   * own millisecond to every percentile. Costs load-generator CPU (shown in the report). 0 = timers only.
   */
  spinMs: number;
  /**
   * At a fixed rate, the last this-many ms before the next send are slept with Atomics.wait (a
   * futex with a sub-millisecond timeout: precise like spinning, without its CPU), after one
   * event-loop turn that reads what arrived (acks). Taken before spinMs. 0 = off.
   */
  sleepMs: number;
  /**
   * > 0: each producer and consumer thread of the load generator asks for a scheduler slice of this
   * many µs (Linux >= 6.12, src/common/native-io.ts), so a message's wake-ups on the client side
   * preempt other threads instead of waiting out their slices: the load generator's own share of
   * the latency tail shrinks, for every system alike. 0 = the kernel's default.
   */
  threadSliceUs: number;
  /**
   * > 0: each producer and consumer thread sets its timer slack to this many ns (prctl, via
   * src/common/native-io.ts). The kernel fires a timed sleep up to the slack late (50 µs by
   * default), so sleepMs pacing adds that much to every message's wait before it is sent; 1 takes
   * it out, for every system alike. 0 = the kernel's default.
   */
  timerSlackNs: number;
  /** Unacknowledged batches per producer; the producer waits (and its schedule slips, which the latency shows) beyond it. */
  maxInFlightBatches: number;
  /**
   * Max rate only, > 0: producers hold back while more than this many messages are sent and not yet
   * received (every topic summed), so the run measures the highest rate the consumers sustain (the
   * rate OMB's controller searches for at producerRate 0). 0: flat out, producers only wait for acks.
   */
  maxBacklog: number;
  warmupSeconds: number;
  /** Measured window; for a backlog run, the longest the drain may take. */
  durationSeconds: number;
  /** Broker durability: 'never' | 'always' | 'interval:MS' (weir's --fsync; peers map it to theirs). */
  fsync: string;
  /**
   * > 0: a backlog run. Producers first write this many payload bytes at max rate with no consumer,
   * then consumers start from the beginning while producers continue at `producerRate` (0: max
   * rate); the run reports how fast the backlog drains.
   */
  backlogBytes: number;
  /**
   * How consumers read: 'log' (a consumer group over partitions, committed offsets) or 'queue'
   * (a weir queue group: competing consumers, one ack per message, `prefetch` unacked each).
   */
  consumeMode: 'log' | 'queue';
  /** Queue mode: unacknowledged messages per consumer. */
  prefetch: number;
  /**
   * > 0: every message is produced as a delayed message due this many ms after its intended send
   * time (weir: `deliverAt`). Its stamp is the due time, so end-to-end latency is lateness after due.
   */
  delayMs: number;
}

export const DEFAULT_WORKLOAD: Workload = {
  name: 'custom',
  topics: 1,
  partitionsPerTopic: 8,
  messageSize: 100,
  producersPerTopic: 1,
  consumersPerTopic: 1,
  keyDistribution: 'none',
  keys: 1000,
  producerRate: 0,
  batchSize: 1000,
  lingerMs: 1,
  spinMs: 0,
  sleepMs: 0,
  threadSliceUs: 0,
  timerSlackNs: 0,
  maxInFlightBatches: 8,
  maxBacklog: 0,
  warmupSeconds: 5,
  durationSeconds: 30,
  fsync: 'never',
  backlogBytes: 0,
  consumeMode: 'log',
  prefetch: 100,
  delayMs: 0,
};

/** Throws a readable error for a workload that cannot run. */
export function validateWorkload(w: Workload): Workload {
  const int = (name: keyof Workload, min: number): void => {
    const v = w[name];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new Error(`workload.${name} must be an integer ≥ ${min}, got ${String(v)}`);
  };
  const num = (name: keyof Workload, min: number): void => {
    const v = w[name];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw new Error(`workload.${name} must be a number ≥ ${min}, got ${String(v)}`);
  };
  int('topics', 1);
  int('partitionsPerTopic', 1);
  int('messageSize', 8);
  int('producersPerTopic', 1);
  int('consumersPerTopic', 0);
  int('keys', 1);
  num('producerRate', 0);
  int('batchSize', 1);
  num('lingerMs', 0);
  num('spinMs', 0);
  num('sleepMs', 0);
  num('threadSliceUs', 0);
  int('timerSlackNs', 0);
  int('maxInFlightBatches', 1);
  int('maxBacklog', 0);
  num('warmupSeconds', 0);
  num('durationSeconds', 0.1);
  num('backlogBytes', 0);
  int('prefetch', 1);
  num('delayMs', 0);
  if (w.consumeMode !== 'log' && w.consumeMode !== 'queue') throw new Error(`workload.consumeMode must be log or queue, got ${String(w.consumeMode)}`);
  if (!['none', 'round-robin', 'random'].includes(w.keyDistribution)) throw new Error(`workload.keyDistribution must be none, round-robin or random, got ${w.keyDistribution}`);
  if (!/^(never|always|interval:\d+)$/.test(w.fsync)) throw new Error(`workload.fsync must be never, always or interval:MS, got ${w.fsync}`);
  if (w.backlogBytes > 0 && w.consumersPerTopic < 1) throw new Error('a backlog run needs at least one consumer per topic');
  if (w.maxBacklog > 0) {
    if (w.backlogBytes > 0 || w.producerRate > 0) throw new Error('workload.maxBacklog applies to max-rate runs only (producerRate 0, no backlogBytes)');
    if (w.consumersPerTopic < 1) throw new Error('workload.maxBacklog needs at least one consumer per topic');
    if (w.maxBacklog < w.batchSize) throw new Error(`workload.maxBacklog (${w.maxBacklog}) must be at least one batch (${w.batchSize} messages)`);
  }
  return w;
}

/** One line for logs and tables. */
export function describeWorkload(w: Workload): string {
  const rate =
    w.producerRate > 0
      ? `${w.producerRate.toLocaleString('en-US')} msg/s`
      : w.maxBacklog > 0
        ? `max sustainable rate (producers hold at ${w.maxBacklog.toLocaleString('en-US')} unconsumed)`
        : 'max rate';
  const keys = w.keyDistribution === 'none' ? 'no key' : `${w.keyDistribution} over ${w.keys} keys`;
  const shape = `${w.topics} topic${w.topics > 1 ? 's' : ''} × ${w.partitionsPerTopic} partition${w.partitionsPerTopic > 1 ? 's' : ''}`;
  const clients = `${w.producersPerTopic} producer${w.producersPerTopic > 1 ? 's' : ''}/${w.consumersPerTopic} consumer${w.consumersPerTopic === 1 ? '' : 's'} per topic`;
  const backlog = w.backlogBytes > 0 ? `, backlog ${formatBytes(w.backlogBytes)} then drain` : '';
  const queue = (w.consumeMode === 'queue' ? `, queue mode (prefetch ${w.prefetch}, ack per message)` : '') + (w.delayMs > 0 ? `, every message delayed ${w.delayMs} ms (latency = after due)` : '');
  return `${shape}, ${w.messageSize} B, ${clients}, ${rate}, ${keys}, batch ≤ ${w.batchSize} (linger ${w.lingerMs} ms${w.spinMs > 0 ? `, spin-paced last ${w.spinMs} ms` : ''}${w.sleepMs > 0 ? `, futex-paced last ${w.sleepMs} ms` : ''}${w.threadSliceUs > 0 ? `, client threads' slice ${w.threadSliceUs} µs` : ''}${w.timerSlackNs > 0 ? `, timer slack ${w.timerSlackNs} ns` : ''}, ${w.maxInFlightBatches} in flight), fsync ${w.fsync}${backlog}${queue}`;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) {
    n /= 1024;
    u++;
  }
  return `${Number.isInteger(n) ? n : n.toFixed(1)} ${units[u]}`;
}

/** "2G", "64M", "512k", "1000" → bytes (binary units). */
export function parseBytes(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(s.trim());
  if (!m) throw new Error(`not a byte size: ${JSON.stringify(s)} (use e.g. 2G, 64M, 512k)`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Math.round(Number(m[1]) * mult);
}
