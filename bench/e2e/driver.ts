/**
 * The system-under-test boundary (OMB's BenchmarkDriver): the load generator talks to a broker only
 * through a Driver. Every producer and consumer thread creates its OWN Driver (its own connection);
 * the runner's main thread creates one more for administration (createTopic).
 *
 * Drivers cross thread boundaries as a DriverSpec: a module URL that exports `createDriver` plus a
 * structured-cloneable config (e.g. the broker URL). Peer drivers (NATS, RabbitMQ, Redis) live in
 * their own modules and are passed to runWorkload() the same way.
 */
import type { Workload } from './workload.js';

/**
 * `count` messages of `size` bytes each, back to back: message i is values.subarray(i·size, (i+1)·size).
 * The driver may keep referencing `values` (and `keys`) until the produce() promise settles; then
 * the producer reuses `values` for a later batch (the load generator allocates no payload per batch).
 */
export interface ProduceBatch {
  values: Uint8Array;
  size: number;
  count: number;
  /** keys[i] is message i's key; null: messages have no key. */
  keys: string[] | null;
}

export interface DriverSubscribeOptions {
  /** Consumers that share a name share the topic's partitions (a consumer group / queue group). */
  subscription: string;
  /** Start at the oldest retained message (true) or only new ones (false). */
  fromBeginning: boolean;
}

/**
 * Called once per message, in order per partition. `value` is only valid during the call
 * (copy it to keep it). The listener is synchronous and cheap; it must not throw.
 */
export type MessageListener = (value: Uint8Array) => void;

export interface DriverSubscription {
  /** Stop delivery and leave the subscription. */
  close(): Promise<void>;
}

export interface Driver {
  /** e.g. 'weir', 'nats-jetstream'. */
  readonly name: string;
  /** Open this driver's connection. Called once, before anything else. */
  connect(): Promise<void>;
  /** Create a topic (idempotent for the same partition count). */
  createTopic(topic: string, partitions: number): Promise<void>;
  /** Send one batch as one request; resolves once the broker acknowledged every message of it. */
  produce(topic: string, batch: ProduceBatch): Promise<void>;
  /** Resolves once delivery can start (the subscription is registered and, for groups, assigned). */
  subscribe(topic: string, options: DriverSubscribeOptions, onMessage: MessageListener): Promise<DriverSubscription>;
  /** Graceful close: flush, leave subscriptions, close the connection. */
  close(): Promise<void>;
  /** Immediate close (used when close() did not finish in time). */
  destroy(): void;
}

/** Structured-cloneable driver settings (URL, credits, …). */
export type DriverConfig = Record<string, unknown>;

/** What a driver module exports. */
export interface DriverModule {
  createDriver(config: DriverConfig, workload: Workload): Driver;
}

/** How threads find a driver: `module` is an absolute file: URL (use `new URL('./x.js', import.meta.url).href`). */
export interface DriverSpec {
  module: string;
  config: DriverConfig;
}

export async function loadDriver(spec: DriverSpec, workload: Workload): Promise<Driver> {
  const mod = (await import(spec.module)) as Partial<DriverModule>;
  if (typeof mod.createDriver !== 'function') throw new Error(`driver module ${spec.module} does not export createDriver()`);
  return mod.createDriver(spec.config, workload);
}
