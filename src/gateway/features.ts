/**
 * The messaging features beyond the partitioned log (queues, delayed messages, routing, exactly-once
 * append, transactions). Each lives in its own folder under src/features/ and plugs into the gateway
 * through its services (registerOp, append, read, onConnectionClosed, addControlInterceptor). They
 * are installed with every gateway and closed with it: when the supervisor restarts the gateway,
 * they rebuild their state from disk like everything else.
 */
import type { FsyncPolicy } from '../broker.js';
import type { Gateway } from './server.js';
import { installRouting } from '../features/routing/feature.js';
import { installProducers } from '../features/producers/feature.js';
import { installTime } from '../features/scheduler/index.js';
import { installTransactions } from '../features/transactions/index.js';
import { installQueues } from '../features/queue/service.js';

export interface FeatureContext {
  gateway: Gateway;
  /** The broker's data directory; a feature keeps its files under `<dataDir>/<feature>/`. */
  dataDir: string;
  fsync: FsyncPolicy;
}

export interface Feature {
  readonly name: string;
  /** Stop timers, flush and close files. The gateway has stopped serving by then. */
  close(): Promise<void> | void;
}

type Installer = (ctx: FeatureContext) => Feature | Promise<Feature>;

/** In start order; closed in reverse. */
const installers: Installer[] = [
  installRouting,
  installProducers, // exactly-once append: init_producer
  (ctx) => installTime(ctx), // time: delayed messages (src/features/scheduler/)
  installTransactions,
  installQueues,
];

export async function installFeatures(ctx: FeatureContext): Promise<Feature[]> {
  const features: Feature[] = [];
  for (const install of installers) features.push(await install(ctx));
  return features;
}

export async function closeFeatures(features: Feature[]): Promise<void> {
  for (const f of [...features].reverse()) await f.close();
}
