/**
 * Named workloads. Each preset only states what differs from DEFAULT_WORKLOAD; CLI options
 * (`--fsync`, `--duration`, …) are applied on top, and `--quick` shortens the run for smoke tests.
 */
import { DEFAULT_WORKLOAD, validateWorkload, type Workload } from './workload.js';

export interface Preset {
  name: string;
  description: string;
  workload: Partial<Workload>;
}

const max = (partitions: number, clients: number): Preset => ({
  name: `max-${partitions}p${clients > 1 ? `-${clients}x${clients}` : ''}`,
  description: `max rate, 100 B, ${partitions} partition${partitions > 1 ? 's' : ''}, ${clients} producer/${clients} consumer connection${clients > 1 ? 's' : ''}, produce and consume concurrently`,
  workload: { partitionsPerTopic: partitions, producersPerTopic: clients, consumersPerTopic: clients, producerRate: 0, messageSize: 100 },
});

const lat = (rate: number, size: number): Preset => ({
  name: `lat-${rate / 1000}k${size >= 1024 ? '-1k' : ''}`,
  description: `fixed ${rate.toLocaleString('en-US')} msg/s, ${size >= 1024 ? '1 KiB' : `${size} B`}, 8 partitions, 1 producer/1 consumer: latency at a rate the broker sustains`,
  // Timer-paced with a 1 ms linger. Spin pacing without linger (`spinMs`, tried on 2026-11-22,
  // bench/results/2026-11-22-peers-lat-5k.md) cut every system's p50 but raised every p99: the
  // spinning generator takes a core the brokers need on this 2-core machine.
  workload: { partitionsPerTopic: 8, producerRate: rate, messageSize: size, lingerMs: 1 },
});

/** 1 producer and 4 consumers at max rate, producers held at 4 × the producer's in-flight window unconsumed. */
const consumersOf4: Partial<Workload> = { partitionsPerTopic: 8, producersPerTopic: 1, consumersPerTopic: 4, producerRate: 0, messageSize: 100, maxBacklog: 32_000 };

const list: Preset[] = [
  max(1, 1),
  max(8, 1),
  max(16, 1),
  max(1, 4),
  max(8, 4),
  max(16, 4),
  lat(5_000, 100),
  {
    name: 'lat-5k-fine',
    description:
      'fixed 5,000 msg/s, 100 B, 8 partitions, 1 producer/1 consumer, paced below the 1 ms timer granularity (futex sleeps) with a 0.25 ms linger, 100 µs scheduler slices and a 1 ns timer slack on the client threads: latency without the 1-2 ms that lat-5k\'s timer and linger add by construction',
    // lat-5k's 1 ms linger, on Node timers that fire 1.0-1.3 ms late, puts its p99 above 1 ms for
    // every system by construction. Futex pacing with linger 0.25 (about two messages a request)
    // measured the lowest weir p99 of linger 0.1 / 0.25 / 0.5 (2026-11-22, docs/performance.md item 23);
    // linger 0.1, one request per message, loads the 2 cores enough to raise every tail. The client
    // threads' 100 µs slice (eleventh session, item 25) takes the load generator's own wake-up delays
    // out of every system's tail alike. A 1 ns timer slack (twelfth session, item 26) stops the
    // kernel from firing the futex sleeps up to 50 µs late.
    workload: { partitionsPerTopic: 8, producerRate: 5_000, messageSize: 100, lingerMs: 0.25, sleepMs: 1, threadSliceUs: 100, timerSlackNs: 1 },
  },
  lat(50_000, 100),
  lat(5_000, 1024),
  lat(50_000, 1024),
  {
    name: 'backlog',
    description:
      'write a 2 GiB backlog (1 KiB messages, 8 partitions) at max rate with no consumer, then drain it from the start while producing continues at 10,000 msg/s; reports drain rate and broker RSS (--backlog-bytes to change the size)',
    workload: { partitionsPerTopic: 8, messageSize: 1024, producerRate: 10_000, backlogBytes: 2 * 1024 ** 3, warmupSeconds: 0, durationSeconds: 600 },
  },
  // queue-4c against log-4c: the same clients, only the consume mode differs. Both run at the
  // highest rate their consumers sustain (maxBacklog): flat out, the producer takes CPU from queue
  // consumers that are bound by the ack → redeliver round trip, and what it produces beyond what
  // they consume counts for nothing (msg/s = min(produced, consumed)). --max-backlog 0 runs flat out.
  {
    name: 'queue-4c',
    description: 'max sustainable rate, 100 B, 8 partitions, 1 producer, 4 queue-mode consumers (one queue group, prefetch 100, one ack per message); compare with log-4c',
    workload: { ...consumersOf4, consumeMode: 'queue', prefetch: 100 },
  },
  {
    name: 'log-4c',
    description: 'max sustainable rate, 100 B, 8 partitions, 1 producer, 4 log-mode consumers (one consumer group): the log-mode reference for queue-4c',
    workload: { ...consumersOf4, consumeMode: 'log' },
  },
  {
    name: 'delay-1s',
    description: 'fixed 5,000 msg/s, 100 B, 8 partitions, every message delayed 1 s (deliverAt): end-to-end latency is the lateness after the due time; weir only (no packaged peer has delayed delivery)',
    workload: { partitionsPerTopic: 8, producerRate: 5_000, messageSize: 100, lingerMs: 1, delayMs: 1_000 },
  },
  {
    name: 'scale-64p',
    description: 'max rate, 100 B, 64 partitions (64 partition threads), 1 producer/1 consumer',
    workload: { partitionsPerTopic: 64, producerRate: 0, messageSize: 100 },
  },
];

export const PRESETS: ReadonlyMap<string, Preset> = new Map(list.map((p) => [p.name, p]));

export function presetNames(): string[] {
  return [...PRESETS.keys()];
}

/** Shorter runs for smoke tests: 1 s warm-up, 5 s measured, a 64 MiB backlog (unless set explicitly). */
export function quickOverrides(base: Workload): Partial<Workload> {
  return {
    warmupSeconds: Math.min(base.warmupSeconds, 1),
    durationSeconds: base.backlogBytes > 0 ? Math.min(base.durationSeconds, 60) : Math.min(base.durationSeconds, 5),
    backlogBytes: base.backlogBytes > 0 ? Math.min(base.backlogBytes, 64 * 1024 ** 2) : 0,
  };
}

/**
 * The workload for a preset (or the defaults when `preset` is undefined), then `--quick`, then
 * explicit overrides (which win over both).
 */
export function buildWorkload(preset: string | undefined, overrides: Partial<Workload> = {}, options: { quick?: boolean } = {}): Workload {
  let w: Workload = { ...DEFAULT_WORKLOAD };
  if (preset !== undefined) {
    const p = PRESETS.get(preset);
    if (!p) throw new Error(`unknown preset ${JSON.stringify(preset)}; presets: ${presetNames().join(', ')}`);
    w = { ...w, ...p.workload, name: p.name };
  }
  if (options.quick) w = { ...w, ...quickOverrides(w) };
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) as Partial<Workload>;
  return validateWorkload({ ...w, ...defined });
}
