/**
 * The systems of the side-by-side benchmark and how to bring each one up for one run: start its
 * server (a fresh one per run, with an empty data dir, as the weir runs get a fresh broker), hand
 * the runner a DriverSpec and the PIDs to measure, and stop it afterwards.
 */
import { startWeirBroker } from '../e2e/weir-broker.js';
import type { DriverSpec } from '../e2e/driver.js';
import type { PeerName } from './install.js';
import { startNats } from './servers/nats.js';
import { startRabbit } from './servers/rabbitmq.js';
import { startRedis } from './servers/redis.js';
import type { Durability, FsyncSpec } from './servers/types.js';

export const SYSTEMS = ['weir', 'nats-jetstream', 'nats-jetstream-async', 'rabbitmq-quorum', 'rabbitmq-classic', 'redis-streams'] as const;
export type SystemName = (typeof SYSTEMS)[number];
export type PeerSystem = Exclude<SystemName, 'weir'>;

/** The Debian package each peer system needs. */
export const SYSTEM_PEER: Record<PeerSystem, PeerName> = {
  'nats-jetstream': 'nats',
  'nats-jetstream-async': 'nats',
  'rabbitmq-quorum': 'rabbitmq',
  'rabbitmq-classic': 'rabbitmq',
  'redis-streams': 'redis',
};

/** `--peers` accepts system names and the short package names (nats = both publish modes, rabbitmq = both queue types). */
export function parsePeers(list: string): PeerSystem[] {
  const out = new Set<PeerSystem>();
  for (const raw of list.split(',').map((s) => s.trim()).filter(Boolean)) {
    const s = raw.toLowerCase();
    if (s === 'nats' || s === 'jetstream') {
      out.add('nats-jetstream');
      out.add('nats-jetstream-async');
    } else if (s === 'nats-jetstream' || s === 'nats-js') out.add('nats-jetstream');
    else if (s === 'nats-async' || s === 'nats-jetstream-async') out.add('nats-jetstream-async');
    else if (s === 'redis' || s === 'redis-streams') out.add('redis-streams');
    else if (s === 'rabbitmq' || s === 'rabbit') {
      out.add('rabbitmq-quorum');
      out.add('rabbitmq-classic');
    } else if (s === 'rabbitmq-quorum' || s === 'quorum') out.add('rabbitmq-quorum');
    else if (s === 'rabbitmq-classic' || s === 'classic') out.add('rabbitmq-classic');
    else throw new Error(`unknown peer ${JSON.stringify(raw)}: use nats, nats-jetstream, nats-async, redis, rabbitmq, rabbitmq-quorum, rabbitmq-classic`);
  }
  return SYSTEMS.filter((s): s is PeerSystem => s !== 'weir' && out.has(s as PeerSystem));
}

export interface RunningSystem {
  system: SystemName;
  version: string;
  driver: DriverSpec;
  /** Processes whose CPU and RSS the runner samples (the server, not our wrappers). */
  cpuPids: number[];
  durability: Durability;
  stop(): Promise<string>;
}

const driverUrl = (file: string): string => new URL(`./drivers/${file}`, import.meta.url).href;

export function weirDurability(fsync: FsyncSpec): Durability {
  if (fsync === 'never') return { short: 'fsync never (write to OS)', setting: 'fsync never: ack after write() to the OS (group commit)', exact: true };
  if (fsync === 'always') return { short: 'fsync always', setting: 'fsync always: fdatasync before ack (group commit)', exact: true };
  return { short: `fsync ${fsync}`, setting: `fsync ${fsync}: ack after write(), fdatasync at least every ${fsync.slice(9)} ms`, exact: true };
}

/** `weirArgs`: extra `weir start` flags (e.g. `--actor-host=gateway`). */
export async function startSystem(system: SystemName, fsync: FsyncSpec, weirVersion: string, weirArgs: string[] = []): Promise<RunningSystem> {
  switch (system) {
    case 'weir': {
      const b = await startWeirBroker({ fsync, args: weirArgs, onOutput: () => undefined });
      return {
        system,
        version: weirVersion,
        driver: { module: new URL('../e2e/drivers/weir.js', import.meta.url).href, config: { url: b.url } },
        cpuPids: [b.pid],
        durability: weirDurability(fsync),
        stop: async () => {
          const st = await b.stop();
          return `exit code ${st.code} signal ${st.signal}`;
        },
      };
    }
    case 'nats-jetstream':
    case 'nats-jetstream-async': {
      // js: js.publish() per message; async: the PublishAsync pattern (drivers/nats-jetstream.ts).
      const s = await startNats(fsync);
      return {
        system,
        version: s.version,
        driver: { module: driverUrl('nats-jetstream.js'), config: { servers: `nats://127.0.0.1:${s.port}`, publish: system === 'nats-jetstream' ? 'js' : 'async' } },
        cpuPids: s.cpuPids(),
        durability: s.durability,
        stop: () => s.stop(),
      };
    }
    case 'redis-streams': {
      const s = await startRedis(fsync);
      return {
        system,
        version: s.version,
        driver: { module: driverUrl('redis-streams.js'), config: { host: '127.0.0.1', port: s.port } },
        cpuPids: s.cpuPids(),
        durability: s.durability,
        stop: () => s.stop(),
      };
    }
    case 'rabbitmq-quorum':
    case 'rabbitmq-classic': {
      const kind = system === 'rabbitmq-quorum' ? 'quorum' : 'classic';
      const s = await startRabbit(fsync);
      return {
        system,
        version: s.version,
        driver: {
          module: driverUrl(`rabbitmq-${kind}.js`),
          config: { url: `amqp://guest:guest@127.0.0.1:${s.port}`, queueType: kind },
        },
        cpuPids: s.cpuPids(),
        durability: s.durability(kind),
        stop: () => s.stop(),
      };
    }
  }
}
