/**
 * A whole broker in one process:
 *
 *   root supervisor (one_for_one)
 *   ├── partitions supervisor (one_for_one, backoff, intensity)  ← a child per worker thread of
 *   │                                                              partition actors, or per
 *   │                                                              partition on the gateway's thread
 *   └── gateway (uWebSockets.js on the main thread)
 *
 * With `actorHost: 'auto'` (the default) a quiet topic's actors run on the gateway's thread and a
 * busy one's on worker threads; moveTopic() moves them, holding requests meanwhile.
 * Started in that order and stopped in reverse: the gateway stops accepting and lets in-flight
 * requests finish, then every partition drains its ring, flushes, fsyncs and closes its files.
 */
import os from 'node:os';
import path from 'node:path';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { Supervisor, type ChildHandle, type ChildExit, type ChildSpec, type WarmWorker } from './supervisor/index.js';
import { PartitionThread, type PartitionActor, type PartitionActorConfig, type PartitionActorGroup } from './actors/partition/handle.js';
import { GatewayHostedPartitions } from './actors/partition/gateway-hosted.js';
import { DEFAULT_PLACEMENT, PlacementPolicy, type PartitionHostKind, type PlacementOptions, type TopicLoad } from './actors/partition/placement.js';
import { TopicRegistry, type PartitionHost } from './actors/topics/registry.js';
import { closeFeatures, installFeatures } from './gateway/features.js';
import { GroupCoordinator } from './actors/group/coordinator.js';
import { OffsetStore } from './actors/group/offset-store.js';
import { Gateway } from './gateway/server.js';
import { defaultGatewayConfig, type GatewayConfig } from './gateway/config.js';
import { channels } from './common/diagnostics.js';
import { WeirError } from './common/errors.js';
import { checkDataDirPath, lockDataDir, type DataDirLock } from './common/data-dir.js';
import { checkPortFree } from './gateway/native.js';
import type { PartitionSlotData } from './partition-worker/protocol.js';
import { HALF_TOPIC } from './actors/transactions/coordinator.js';
import { SCHEDULE_TOPIC_PREFIX } from './actors/scheduler/scheduler.js';

export type FsyncPolicy = PartitionSlotData['log']['fsync'];
export type ActorHost = PartitionHostKind | 'auto';

export function parseActorHost(v: string | undefined): ActorHost {
  if (v === undefined || v === 'auto') return 'auto';
  if (v === 'gateway' || v === 'threads') return v;
  throw new WeirError('BAD_CONFIG', `--actor-host must be auto, threads or gateway (got ${JSON.stringify(v)})`);
}

export interface BrokerOptions {
  /** Locked while the broker runs (`<dataDir>/.weir.lock`, src/common/data-dir.ts): one broker per directory. */
  dataDir?: string;
  host?: string;
  port?: number;
  /** Partition count for `create_topic` without one. */
  defaultPartitions?: number;
  fsync?: FsyncPolicy | string;
  segmentBytes?: number;
  /** Per partition; not applied to schedule topics (`__delay.*`: delayed messages not yet due). */
  retentionBytes?: number;
  /** Per partition; not applied to schedule topics (`__delay.*`: delayed messages not yet due). */
  retentionMs?: number;
  /**
   * Page-cache drop-behind, per partition: keep about this many of its newest bytes in the OS page
   * cache and drop older pages once written back (default 32 MiB; 0 = leave it to the kernel).
   * Needs the native helper built by `npm install` (src/common/native-io.ts).
   */
  pageCacheBytes?: number;
  /** Bytes of each of a partition's two shared-memory rings. */
  ringBytes?: number;
  gateway?: Partial<GatewayConfig>;
  /** Partition supervisor: restarts allowed within `period` ms before it escalates. */
  restartIntensity?: number;
  restartPeriodMs?: number;
  restartBackoff?: { initialMs: number; maxMs: number };
  /** Root supervisor: restarts of the partition supervisor allowed within `restartPeriodMs` before the broker gives up. */
  rootRestartIntensity?: number;
  /**
   * Partition actors per worker thread. A topic's partitions are grouped in order (0..k-1 share a
   * thread, k..2k-1 the next, …). `auto` (the default) spreads a topic over as many threads as the
   * machine has cores: measured on 2 cores it beat a thread per partition at 8 partitions (+12%
   * msg/s, −25% CPU per message) and at 64 (+63%); see bench/results/. 1 gives each partition its
   * own thread, so a crash takes down one partition only.
   */
  actorsPerThread?: number | 'auto';
  /**
   * Where partition actors run. `auto` (the default): each topic starts on the gateway's own
   * thread and moves to worker threads while it is busy, and back once quiet, by `placement`'s
   * rules (src/actors/partition/placement.ts), under every fsync policy: with `always` a quiet
   * topic's fdatasyncs then run on the thread that serves every socket (as Redis's do: cheaper
   * than a thread wake-up per request; a disk stall then holds every connection, not only the
   * topic's), and a busy topic's move off it. `threads`: always on
   * worker threads, as `actorsPerThread` groups them (a partition's crash or out-of-memory is then
   * a thread's). `gateway`: always on the gateway's thread, one supervised child per partition.
   * On 2 cores the gateway's thread costs ≈ 40 % less CPU per message at low rates (no thread
   * wake-up per request) and gives the same max rate with fsync `never`, 31 % less with `always`
   * (docs/performance.md, items 17 and 19).
   */
  actorHost?: ActorHost;
  /** `actorHost: 'auto'` only: when a topic moves (defaults: DEFAULT_PLACEMENT). */
  placement?: Partial<PlacementOptions>;
  /** Enables the crash hooks tests use. */
  testHooks?: boolean;
}

export function parseFsync(v: FsyncPolicy | string | undefined): FsyncPolicy {
  if (v === undefined || v === 'never') return { mode: 'never' };
  if (typeof v !== 'string') return v;
  if (v === 'always') return { mode: 'always' };
  const m = /^interval:(\d+)$/.exec(v);
  if (m) return { mode: 'interval', intervalMs: Math.max(1, Number(m[1])) };
  throw new WeirError('BAD_CONFIG', `--fsync must be never, always or interval:MS (got ${JSON.stringify(v)})`);
}

/** `pageCacheBytes` (`--page-cache-bytes`): a whole number of bytes, 0 or more, or unset (the default). */
export function checkPageCacheBytes(v: number | undefined): void {
  if (v !== undefined && !(Number.isSafeInteger(v) && v >= 0)) {
    throw new WeirError('BAD_CONFIG', `--page-cache-bytes must be a whole number of bytes, 0 or more (got ${JSON.stringify(v)})`);
  }
}

export function fsyncLabel(f: FsyncPolicy): string {
  return f.mode === 'interval' ? `interval:${f.intervalMs}` : f.mode;
}

export class Broker {
  readonly topics: TopicRegistry;
  readonly groups = new GroupCoordinator();
  readonly offsets: OffsetStore;
  private partitions: Supervisor<PartitionActorGroup> | null = null;
  private gateway: Gateway | null = null;
  private readonly root: Supervisor;
  private readonly fsync: FsyncPolicy;
  private closed = false;
  private readonly fatalListeners: Array<(err: Error) => void> = [];
  /** Where each topic's partitions run now (`hostOf`), and the supervisor children that run them. */
  private readonly hosts = new Map<string, PartitionHostKind>();
  private readonly childIds = new Map<string, string[]>();
  /** Moves run one at a time. */
  private moves: Promise<unknown> = Promise.resolve();
  private moveRunning = false;
  private placementTimer: NodeJS.Timeout | null = null;

  private constructor(
    private readonly opts: Required<Pick<BrokerOptions, 'dataDir'>> & BrokerOptions,
    /** Held from before anything is read or written in the data directory until close(). */
    readonly dataDirLock: DataDirLock,
  ) {
    this.fsync = parseFsync(opts.fsync);
    checkPageCacheBytes(opts.pageCacheBytes);
    this.topics = new TopicRegistry(opts.dataDir);
    this.offsets = new OffsetStore(path.join(opts.dataDir, 'groups'), this.fsync.mode === 'always');
    const partitionsSpec: ChildSpec = {
      id: 'partitions',
      start: () => this.startPartitionSupervisor(),
      restart: 'permanent',
      shutdown: Infinity,
    };
    const gatewaySpec: ChildSpec = {
      id: 'gateway',
      start: () => this.startGateway(),
      restart: 'permanent',
      shutdown: 15_000,
    };
    // one_for_one: a restarted partition supervisor re-registers its actors in the topic registry the
    // gateway reads, so clients stay connected; the gateway does not depend on the old actors.
    this.root = new Supervisor(
      'weir',
      { strategy: 'one_for_one', intensity: opts.rootRestartIntensity ?? 3, period: opts.restartPeriodMs ?? 60_000 },
      [partitionsSpec, gatewaySpec],
    );
    this.root.onExit((exit) => {
      if (!exit.normal && !this.closed) for (const l of this.fatalListeners) l(exit.reason ?? new Error('broker supervisor exited'));
    });
  }

  /**
   * Refuses, having written nothing, a data path no broker can use (BAD_DATA_DIR), a port in use
   * (LISTEN_FAILED) and a data directory another broker holds (DATA_DIR_LOCKED): checked in that
   * order, before the directory is created, locked, recovered or written.
   */
  static async start(options: BrokerOptions = {}): Promise<Broker> {
    const dataDir = path.resolve(options.dataDir ?? './data');
    checkDataDirPath(dataDir);
    const { host, port } = listenAddress(options);
    if (port !== 0) await checkPortFree(host, port);
    const lock = lockDataDir(dataDir);
    let broker: Broker | undefined;
    try {
      broker = new Broker({ ...options, dataDir }, lock);
      await broker.root.start();
    } catch (err) {
      broker?.groups.close();
      broker?.offsets.close();
      lock.release();
      // Another process took the port after checkPortFree: say so as plainly as it would have.
      const cause = err instanceof Error ? err.cause : undefined;
      throw WeirError.isWeirError(cause) && cause.code === 'LISTEN_FAILED' ? cause : err;
    }
    broker.startPlacement();
    return broker;
  }

  get port(): number {
    return this.gateway?.port ?? 0;
  }
  get url(): string {
    return `ws://${this.opts.host ?? defaultGatewayConfig.host}:${this.port}`;
  }

  /** Called when supervision gives up (restart intensity exceeded at the root). */
  onFatal(listener: (err: Error) => void): void {
    this.fatalListeners.push(listener);
  }

  /** The live actor of a partition (tests and tools). */
  partitionActor(topic: string, partition: number): PartitionActor {
    const a = this.topics.get(topic)?.actors[partition];
    if (!a) throw new WeirError('PARTITION_NOT_FOUND', `no partition ${topic}/${partition}`);
    return a;
  }

  gatewayStats(): ReturnType<Gateway['stats']> {
    if (!this.gateway) throw new WeirError('SHUTTING_DOWN', 'gateway is not running');
    return this.gateway.stats();
  }

  /** Wait until every partition actor serves (e.g. after a crash, once the supervisor restarted it). */
  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let ok = true;
      for (const t of this.topics.all()) for (const a of t.actors) if (!a.available) ok = false;
      if (ok) return;
      if (Date.now() > deadline) throw new WeirError('TIMEOUT', 'partitions did not come back in time');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.placementTimer !== null) clearInterval(this.placementTimer);
    await this.moves;
    await this.root.close();
    this.groups.close();
    this.offsets.close();
    this.dataDirLock.release();
  }

  /** Where a topic's partition actors run now (a topic not started yet: where it would start). */
  hostOf(topic: string): PartitionHostKind {
    return this.hosts.get(topic) ?? this.initialHost();
  }

  private initialHost(): PartitionHostKind {
    const h = this.opts.actorHost ?? 'auto';
    return h === 'auto' ? 'gateway' : h;
  }

  /**
   * Move a topic's partition actors to the other host, without failing a request: each actor holds
   * what arrives meanwhile (PartitionActor.beginMove), its old host closes gracefully (answering all
   * it was given; parked fetches get their final, empty answer and are asked again), the new host
   * opens the logs and takes the same actors over (rehost), which then write what they held.
   * Resolves false when there is nothing to move. Used by `actorHost: 'auto'`; tests call it too.
   */
  moveTopic(topic: string, to: PartitionHostKind): Promise<boolean> {
    const run = async (): Promise<boolean> => {
      const sup = this.partitions;
      const t = this.topics.get(topic);
      const from = this.hostOf(topic);
      if (sup === null || t === undefined || this.closed || from === to) return false;
      this.moveRunning = true;
      let started = Date.now();
      const actors = [...t.actors];
      // Threads the topic moves to start before its requests are held: only the opening of the
      // logs happens while they are.
      const warm: WarmWorker[] = [];
      try {
        const specs = this.partitionSpecs(topic, t.partitions, to, actors, warm);
        await Promise.allSettled(warm.map((w) => w.loaded)); // one that died fails its start below
        started = Date.now(); // the hold starts here
        for (const a of actors) a.beginMove();
        for (const id of this.childIds.get(topic) ?? []) {
          sup.getChild(id)?.handOver();
          await sup.terminateChild(id);
          await sup.deleteChild(id);
        }
        this.childIds.delete(topic);
        let failure: unknown = null;
        let host = to;
        for (const h of [to, from]) {
          host = h;
          try {
            const hSpecs = h === to ? specs : this.partitionSpecs(topic, t.partitions, h, actors);
            for (const a of await this.startSpecs(sup, topic, hSpecs, h)) this.topics.replace(a.topic, a.partition, a);
            failure = null;
            break;
          } catch (err) {
            failure ??= err; // then try the old host once, with the same (still held) requests
          }
        }
        if (failure !== null) {
          this.hosts.set(topic, host); // on success startSpecs recorded it
          const reason = failure instanceof Error ? failure : new Error(String(failure));
          for (const a of actors) a.abandonMove(reason);
          throw reason;
        }
        if (channels.partitionMove.hasSubscribers) channels.partitionMove.publish({ topic, from, to: host, ms: Date.now() - started });
        return host === to;
      } finally {
        for (const w of warm) w.discard(); // those a failed start did not take
        this.moveRunning = false;
      }
    };
    const p = this.moves.then(run);
    this.moves = p.catch(() => undefined);
    return p;
  }

  /**
   * Start a topic's children (`partitionSpecs(…, host, …)`) and record them. They start at once:
   * threads open their logs in parallel, which is most of a move's hold.
   */
  private async startSpecs(sup: Supervisor<PartitionActorGroup>, topic: string, specs: ChildSpec<PartitionActorGroup>[], host: PartitionHostKind): Promise<PartitionActor[]> {
    const actors: PartitionActor[] = [];
    const ids: string[] = [];
    let failure: unknown = null;
    for (const [i, o] of (await sup.startChildrenSettled(specs)).entries()) {
      if (o.status === 'rejected') failure ??= o.reason;
      else {
        actors.push(...o.value.actors);
        ids.push(specs[i]!.id);
      }
    }
    if (failure !== null) {
      // Undo the part that started: its actors go back to holding for the next attempt.
      for (const a of actors) a.beginMove();
      for (const id of ids) {
        sup.getChild(id)?.handOver();
        await sup.terminateChild(id);
        await sup.deleteChild(id);
      }
      throw failure;
    }
    this.childIds.set(topic, ids);
    this.hosts.set(topic, host);
    return actors;
  }

  /** `actorHost: 'auto'`: sample the gateway thread's utilization and every topic's load, and move. */
  private startPlacement(): void {
    if ((this.opts.actorHost ?? 'auto') !== 'auto') return;
    const policy = new PlacementPolicy({ ...DEFAULT_PLACEMENT, ...this.opts.placement });
    let elu: EventLoopUtilization = performance.eventLoopUtilization();
    let at = Date.now();
    const counted = new Map<string, { records: number; gatewayMs: number }>();
    this.placementTimer = setInterval(() => {
      const now = Date.now();
      const next = performance.eventLoopUtilization();
      const utilization = performance.eventLoopUtilization(next, elu).utilization;
      const seconds = Math.max(0.001, (now - at) / 1000);
      elu = next;
      at = now;
      const loads: TopicLoad[] = [];
      for (const t of this.topics.all()) {
        let records = 0;
        let gatewayMs = 0;
        for (const a of t.actors) {
          records += a.records;
          gatewayMs += a.gatewayMs;
        }
        const before = counted.get(t.name);
        counted.set(t.name, { records, gatewayMs });
        // A topic's first sample, or one whose actors were replaced (a crash): no rate yet.
        if (before !== undefined && records >= before.records && gatewayMs >= before.gatewayMs) {
          loads.push({ topic: t.name, host: this.hostOf(t.name), recordsPerSec: (records - before.records) / seconds, gatewayMsPerSec: (gatewayMs - before.gatewayMs) / seconds });
        }
      }
      if (this.moveRunning) return; // its loads are not what the next placement will see
      const move = policy.decide(utilization, loads);
      if (move !== null) {
        this.moveTopic(move.topic, move.to).catch((err: unknown) => {
          process.emitWarning(`weir: moving topic ${move.topic} to ${move.to} failed: ${err instanceof Error ? err.message : String(err)}`);
        });
      }
    }, policy.opts.sampleMs);
    this.placementTimer.unref();
  }

  private actorConfig(topic: string, partition: number): PartitionActorConfig {
    const o = this.opts;
    const log: PartitionSlotData['log'] = {
      // 1 GiB, Kafka's default. Sealed segments are fdatasync'ed in the background (src/log), so a
      // roll no longer stalls the thread's partitions as it did when 64 MiB was measured against it
      // (bench/results/2026-11-21-max-8p-segment-*.md). The price of large segments: after an unclean
      // stop, recovery CRC-checks up to 1 GiB of the last segment.
      segmentBytes: o.segmentBytes ?? 1024 * 1024 * 1024,
      indexIntervalBytes: 4096,
      fsync: this.fsync,
    };
    // Exempt from broker-wide retention: the half messages of unfinished transactions (their apply
    // reads them back) and schedule topics (retention would silently delete messages not yet due;
    // docs/time.md, "Retention"; docs/transactions.md).
    const exempt = topic === HALF_TOPIC || topic.startsWith(SCHEDULE_TOPIC_PREFIX);
    if (o.retentionBytes !== undefined && !exempt) log.retentionBytes = o.retentionBytes;
    if (o.retentionMs !== undefined && !exempt) log.retentionMs = o.retentionMs;
    if (o.pageCacheBytes !== undefined) log.pageCacheBytes = o.pageCacheBytes;
    return {
      topic,
      partition,
      dir: this.topics.partitionDir(topic, partition),
      ringBytes: o.ringBytes ?? 4 * 1024 * 1024,
      log,
      maxQueuedBytes: 64 * 1024 * 1024,
    };
  }

  /**
   * One child per thread: `topic/first` or `topic/first-last` for the partitions it hosts. On the
   * gateway's thread, one child per partition (a crash then restarts that partition only).
   * `moving`: the topic's actors during a move, taken over by the children's first start. `warm`
   * (a move to threads): each child's thread is spawned now, for its first start, and added to it.
   */
  private partitionSpecs(topic: string, partitions: number, host: PartitionHostKind, moving?: PartitionActor[], warm?: WarmWorker[]): ChildSpec<PartitionActorGroup>[] {
    const setting = this.opts.actorsPerThread ?? 'auto';
    const onGateway = host === 'gateway';
    const per = onGateway ? 1 : setting === 'auto' ? Math.ceil(partitions / os.availableParallelism()) : Math.max(1, setting);
    const testHooks = this.opts.testHooks ?? false;
    const specs: ChildSpec<PartitionActorGroup>[] = [];
    for (let first = 0; first < partitions; first += per) {
      const last = Math.min(partitions, first + per) - 1;
      const configs = Array.from({ length: last - first + 1 }, (_, i) => this.actorConfig(topic, first + i));
      const id = first === last ? `${topic}/${first}` : `${topic}/${first}-${last}`;
      // Only the first start takes the moving actors over (a restart after a crash makes new ones).
      // A moving actor still alive had its old host close cleanly, handing its log over: the new
      // host opens it as after a clean shutdown (fsync 'never' leaves no marker for that).
      let handOver = moving?.slice(first, last + 1);
      const threadConfig = { testHooks, readyTimeoutMs: 120_000 };
      let thread = !onGateway && warm ? PartitionThread.warm(configs, threadConfig) : undefined;
      if (thread) warm!.push(thread);
      const startWith = <G>(open: (configs: PartitionActorConfig[], moving: PartitionActor[] | undefined, thread?: WarmWorker) => Promise<G>) => (): Promise<G> => {
        const m = handOver;
        const t = thread;
        handOver = thread = undefined;
        if (m === undefined) return open(configs, undefined, t);
        return open(configs.map((c, i) => (m[i]?.isMoving && m[i].available ? { ...c, log: { ...c.log, handedOver: true } } : c)), m, t);
      };
      specs.push({
        id,
        start: onGateway
          ? startWith((cs, m) => GatewayHostedPartitions.start(cs, { name: id, testHooks }, m))
          : startWith((cs, m, t) => PartitionThread.start(cs, threadConfig, m, t)),
        restart: 'permanent',
        shutdown: 30_000,
      });
    }
    return specs;
  }

  private async startPartitionSupervisor(): Promise<ChildHandle> {
    const o = this.opts;
    const stored = this.topics.stored();
    const byTopic = stored.map((t) => ({ topic: t.topic, specs: this.partitionSpecs(t.topic, t.partitions, this.hostOf(t.topic)) }));
    const specs = byTopic.flatMap((t) => t.specs);
    const sup = new Supervisor<PartitionActorGroup>(
      'partitions',
      {
        strategy: 'one_for_one',
        intensity: o.restartIntensity ?? 20,
        period: o.restartPeriodMs ?? 60_000,
        backoff: o.restartBackoff ?? { initialMs: 10, maxMs: 2_000, factor: 2, jitter: 0.2 },
      },
      specs,
    );
    sup.on('restart', (_id, thread) => {
      for (const actor of thread.actors) {
        this.topics.replace(actor.topic, actor.partition, actor);
        if (channels.partitionRestart.hasSubscribers) channels.partitionRestart.publish({ topic: actor.topic, partition: actor.partition });
      }
    });
    await sup.start();
    this.partitions = sup;
    for (const { topic, specs } of byTopic) {
      this.childIds.set(topic, specs.map((spec) => spec.id));
      this.hosts.set(topic, this.hostOf(topic));
      this.topics.adopt(topic, specs.flatMap((spec) => sup.getChild(spec.id)!.actors));
    }
    return sup;
  }

  private readonly host: PartitionHost = {
    startPartitions: async (topic, count) => {
      const sup = this.partitions;
      if (!sup) throw new WeirError('SHUTTING_DOWN', 'partition supervisor is not running', { retryable: true });
      const host = this.hostOf(topic);
      return this.startSpecs(sup, topic, this.partitionSpecs(topic, count, host), host);
    },
  };

  private async startGateway(): Promise<ChildHandle> {
    const o = this.opts;
    const config: GatewayConfig = {
      ...defaultGatewayConfig,
      ...o.gateway,
      ...listenAddress(o),
      fsyncLabel: fsyncLabel(this.fsync),
    };
    const gateway = new Gateway(config, {
      topics: this.topics,
      host: this.host,
      groups: this.groups,
      offsets: this.offsets,
      brokerName: 'weir/0.1.0',
      defaultPartitions: o.defaultPartitions ?? 8,
    });
    const features = await installFeatures({ gateway, dataDir: this.opts.dataDir, fsync: this.fsync });
    try {
      await gateway.listen();
    } catch (err) {
      await closeFeatures(features);
      throw err;
    }
    this.gateway = gateway;
    const listeners: Array<(e: ChildExit) => void> = [];
    return {
      close: async () => {
        await gateway.close();
        await closeFeatures(features);
        for (const l of listeners) l({ normal: true, reason: null });
      },
      destroy: () => {
        void gateway.close(0).then(() => closeFeatures(features));
        for (const l of listeners) l({ normal: false, reason: null });
      },
      onExit: (l) => listeners.push(l),
    };
  }
}

/** Where the gateway listens: `host`/`port`, else the gateway config's, else the defaults. */
function listenAddress(o: BrokerOptions): { host: string; port: number } {
  return { host: o.host ?? o.gateway?.host ?? defaultGatewayConfig.host, port: o.port ?? o.gateway?.port ?? defaultGatewayConfig.port };
}

export const startBroker = Broker.start;
