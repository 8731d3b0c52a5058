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
import { PartitionThread, failureOf, type PartitionRef, type PartitionActorConfig, type PartitionActorGroup } from './partition/ref.js';
import { GatewayHostedPartitions } from './partition/gateway-host.js';
import { FailedPartitions } from './partition/failed.js';
import { DEFAULT_PLACEMENT, PlacementPolicy, type PartitionHostKind, type PlacementOptions, type TopicLoad } from './partition/placement.js';
import { TopicRegistry, type PartitionLauncher } from './core/topics/registry.js';
import { closeFeatures, installFeatures, type FeatureInstaller } from './core/feature-host.js';
import { installRouting } from './features/routing/feature.js';
import { installProducers } from './features/producers/feature.js';
import { installTime } from './features/scheduler/feature.js';
import { installTransactions } from './features/transactions/feature.js';
import { installQueues } from './features/queue/feature.js';
import { GroupCoordinator } from './core/groups/coordinator.js';
import { OffsetStore } from './core/groups/offset-store.js';
import { Gateway } from './gateway/server.js';
import { BrokerCore } from './core/broker-core.js';
import { defaultGatewayConfig, type GatewayConfig } from './gateway/config.js';
import { channels } from './common/diagnostics.js';
import { WeirError } from './common/errors.js';
import { storageFailure } from './common/storage-failure.js';
import { ErrorCode, WeirCode } from './protocol/codes.js';
import { checkDataDirPath, lockDataDir, type DataDirLock } from './common/data-dir.js';
import { checkPortFree } from './gateway/native.js';
import type { PartitionSlotData } from './partition/protocol.js';
import { openFileCount, openFileLimit, reservedFds } from './common/fd-limit.js';
import { HALF_TOPIC, SCHEDULE_TOPIC_PREFIX } from './core/topics/names.js';

export { parseFsync, fsyncLabel, type FsyncPolicy } from './common/fsync.js';
import { parseFsync, fsyncLabel, type FsyncPolicy } from './common/fsync.js';
export type ActorHost = PartitionHostKind | 'auto';

export function parseActorHost(v: string | undefined): ActorHost {
  if (v === undefined || v === 'auto') return 'auto';
  if (v === 'gateway' || v === 'threads') return v;
  throw new WeirError(WeirCode.BAD_CONFIG, `--actor-host must be auto, threads or gateway (got ${JSON.stringify(v)})`);
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
  /** Roll a partition's active segment once its first record is this old (default: a quarter of retentionMs, at most 7 days). */
  segmentMs?: number;
  /**
   * Page-cache drop-behind, per partition: keep about this many of its newest bytes in the OS page
   * cache and drop older pages once written back (default 32 MiB; 0 = leave it to the kernel).
   * Needs the native helper built by `npm install` (src/common/native-io.ts).
   */
  pageCacheBytes?: number;
  /** Bytes of each of a partition's two shared-memory rings. */
  ringBytes?: number;
  /**
   * A partition quiet this long frees its buffers, closes its files and (on the gateway's thread)
   * lets go of its rings; its next request allocates and reopens them. Default 10 s.
   */
  idleReleaseMs?: number;
  gateway?: Partial<GatewayConfig>;
  /** Partition supervisor: restarts allowed within `period` ms before it escalates. */
  restartIntensity?: number;
  restartPeriodMs?: number;
  restartBackoff?: { initialMs: number; maxMs: number };
  /**
   * Failures (crashes or failed restarts) of one partition child within `restartPeriodMs` after
   * which the broker gives up on its partitions (FailedPartitions: not served, requests answered
   * with what failed, /healthz says why) instead of restarting it again, and starts it again only
   * `restartPeriodMs` later. Default min(5, restartIntensity), at least 2 (one crash is restarted):
   * reached before the partition supervisor's intensity, so one damaged log does not make it
   * escalate (restarting every partition); several failing at once still do.
   */
  partitionGiveUpAfter?: number;
  /** Root supervisor: restarts of the partition supervisor allowed within `restartPeriodMs` before the broker gives up. */
  rootRestartIntensity?: number;
  /**
   * Partition actors per worker thread. A topic's partitions are grouped in order (0..k-1 share a
   * thread, k..2k-1 the next, …). `auto` (the default) spreads a topic over as many threads as the
   * machine has cores, which beat a thread per partition on 2 cores (docs/performance.md). 1 gives
   * each partition its own thread, so a crash takes down one partition only.
   */
  actorsPerThread?: number | 'auto';
  /**
   * Where partition actors run. `auto` (the default): each topic starts on the gateway's own
   * thread and moves to worker threads while it is busy, and back once quiet, by `placement`'s
   * rules (src/partition/placement.ts), under every fsync policy: with `always` a quiet
   * topic's fdatasyncs then run on the thread that serves every socket (as Redis's do: cheaper
   * than a thread wake-up per request; a disk stall then holds every connection, not only the
   * topic's), and a busy topic's move off it. `threads`: always on
   * worker threads, as `actorsPerThread` groups them (a partition's crash or out-of-memory is then
   * a thread's). `gateway`: always on the gateway's thread, one supervised child per partition.
   * The gateway's thread costs less CPU per message at low rates (no thread wake-up per request);
   * worker threads give more at high rates, above all with `always` (docs/performance.md).
   */
  actorHost?: ActorHost;
  /** `actorHost: 'auto'` only: when a topic moves (defaults: DEFAULT_PLACEMENT). */
  placement?: Partial<PlacementOptions>;
  /** Enables the crash hooks tests use. */
  testHooks?: boolean;
}

/** `pageCacheBytes` (`--page-cache-bytes`): a whole number of bytes, 0 or more, or unset (the default). */
export function checkPageCacheBytes(v: number | undefined): void {
  if (v !== undefined && !(Number.isSafeInteger(v) && v >= 0)) {
    throw new WeirError(WeirCode.BAD_CONFIG, `--page-cache-bytes must be a whole number of bytes, 0 or more (got ${JSON.stringify(v)})`);
  }
}

/**
 * The messaging features beyond the partitioned log, in start order (closed in reverse). Each lives
 * in its own folder under src/features/ and is written against FeatureHost (src/core/feature-host.ts);
 * they are installed with every gateway and closed with it: when the supervisor restarts the
 * gateway, they rebuild their state from disk like everything else.
 */
const FEATURES: readonly FeatureInstaller[] = [
  installRouting, // wildcard subscriptions, request-reply, replay
  installProducers, // exactly-once append: init_producer
  (ctx) => installTime(ctx), // delayed messages and TTL
  installTransactions,
  installQueues,
];

export class Broker {
  readonly topics: TopicRegistry;
  readonly groups = new GroupCoordinator();
  readonly offsets: OffsetStore;
  private partitions: Supervisor<PartitionActorGroup> | null = null;
  private gateway: Gateway | null = null;
  private brokerCore: BrokerCore | null = null;
  private readonly root: Supervisor;
  private readonly fsync: FsyncPolicy;
  private closed = false;
  /**
   * Damage found in this broker's partition logs since it started (weir:wal:damage, relayed from
   * partition threads): per `topic/partition`, the damaged regions and the offsets lost with them.
   * A counter for the operators' metrics (see dataLoss()).
   */
  private readonly damageFound = new Map<string, { topic: string; partition: number; regions: number; offsets: number }>();
  private readonly onDamage = (raw: unknown): void => {
    const m = raw as { topic?: unknown; partition?: unknown; dir?: unknown; from: number; to: number };
    if (typeof m.topic !== 'string' || typeof m.partition !== 'number' || typeof m.dir !== 'string') return;
    if (!m.dir.startsWith(this.opts.dataDir + path.sep)) return; // another broker of this process
    const key = `${m.topic}/${m.partition}`;
    let d = this.damageFound.get(key);
    if (!d) this.damageFound.set(key, (d = { topic: m.topic, partition: m.partition, regions: 0, offsets: 0 }));
    d.regions++;
    d.offsets += m.to - m.from;
  };
  private readonly fatalListeners: Array<(err: Error) => void> = [];
  /** Where each topic's partitions run now (`hostOf`), and the supervisor children that run them. */
  private readonly hosts = new Map<string, PartitionHostKind>();
  private readonly childIds = new Map<string, string[]>();
  /** Moves run one at a time. */
  private moves: Promise<unknown> = Promise.resolve();
  private moveRunning = false;
  private placementTimer: NodeJS.Timeout | null = null;
  /** Per partition child id: when it failed (performance.now()) within the restart period, and why last. */
  private readonly failures = new Map<string, { at: number[]; reason: Error }>();
  /** Per partition child id: when the broker last gave up on it. */
  private readonly givenUpAt = new Map<string, number>();

  private constructor(
    private readonly opts: Required<Pick<BrokerOptions, 'dataDir'>> & BrokerOptions,
    /** Held from before anything is read or written in the data directory until close(). */
    readonly dataDirLock: DataDirLock,
  ) {
    // Before anything opens a log: what recovery finds is counted too.
    channels.walDamage.subscribe(this.onDamage);
    this.fsync = parseFsync(opts.fsync);
    checkPageCacheBytes(opts.pageCacheBytes);
    this.topics = new TopicRegistry(opts.dataDir);
    this.offsets = new OffsetStore(path.join(opts.dataDir, 'groups'), this.fsync);
    const skipped = this.offsets.recovery;
    if (skipped.skippedLines > 0 || skipped.truncatedBytes > 0) {
      console.error(`weir: group offsets: skipped ${skipped.skippedLines} damaged entr(ies) and cut a ${skipped.truncatedBytes}-byte torn tail in ${this.offsets.file} (at bytes ${skipped.positions.join(', ')}); every other commit was restored`);
    }
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
      if (broker) channels.walDamage.unsubscribe(broker.onDamage);
      // Another process took the port after checkPortFree: say so as plainly as it would have.
      const cause = err instanceof Error ? err.cause : undefined;
      throw WeirError.isWeirError(cause) && cause.code === WeirCode.LISTEN_FAILED ? cause : err;
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
  partitionActor(topic: string, partition: number): PartitionRef {
    const a = this.topics.get(topic)?.actors[partition];
    if (!a) throw new WeirError(ErrorCode.PARTITION_NOT_FOUND, `no partition ${topic}/${partition}`);
    return a;
  }

  /** The broker core the front doors and features use (tools and tests: e.g. another control interceptor). */
  get core(): BrokerCore {
    if (!this.brokerCore) throw new WeirError(ErrorCode.SHUTTING_DOWN, 'the broker core is not running');
    return this.brokerCore;
  }

  gatewayStats(): ReturnType<Gateway['stats']> {
    if (!this.gateway) throw new WeirError(ErrorCode.SHUTTING_DOWN, 'gateway is not running');
    return this.gateway.stats();
  }

  /** Wait until every partition actor serves (e.g. after a crash, once the supervisor restarted it). */
  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let ok = true;
      for (const t of this.topics.all()) for (const a of t.actors) if (!a.available) ok = false;
      if (ok) return;
      if (Date.now() > deadline) throw new WeirError(ErrorCode.TIMEOUT, 'partitions did not come back in time');
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
    channels.walDamage.unsubscribe(this.onDamage);
  }

  /** Damaged regions found in each partition's log since the broker started, and the offsets lost with them. */
  dataLoss(): Array<{ topic: string; partition: number; regions: number; offsets: number }> {
    return [...this.damageFound.values()].map((d) => ({ ...d }));
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
   * what arrives meanwhile (PartitionRef.beginMove), its old host closes gracefully (answering all
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
      // Not a topic with a partition the broker gave up on: its start on the other host would fail.
      if (t.actors.some((a) => a.failure !== null)) return false;
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
  private async startSpecs(sup: Supervisor<PartitionActorGroup>, topic: string, specs: ChildSpec<PartitionActorGroup>[], host: PartitionHostKind): Promise<PartitionRef[]> {
    const actors: PartitionRef[] = [];
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
      // roll does not stall the thread's partitions. The price of large segments: after an unclean
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
    if (o.segmentMs !== undefined) log.segmentMs = o.segmentMs;
    if (o.pageCacheBytes !== undefined) log.pageCacheBytes = o.pageCacheBytes;
    return {
      topic,
      partition,
      dir: this.topics.partitionDir(topic, partition),
      ringBytes: o.ringBytes ?? 4 * 1024 * 1024,
      log,
      maxQueuedBytes: 64 * 1024 * 1024,
      ...(o.idleReleaseMs !== undefined ? { idleReleaseMs: o.idleReleaseMs } : {}),
    };
  }

  /**
   * One child per thread: `topic/first` or `topic/first-last` for the partitions it hosts. On the
   * gateway's thread, one child per partition (a crash then restarts that partition only).
   * `moving`: the topic's actors during a move, taken over by the children's first start. `warm`
   * (a move to threads): each child's thread is spawned now, for its first start, and added to it.
   */
  private partitionSpecs(topic: string, partitions: number, host: PartitionHostKind, moving?: PartitionRef[], warm?: WarmWorker[], boot = false): ChildSpec<PartitionActorGroup>[] {
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
      const startWith = <G>(open: (configs: PartitionActorConfig[], moving: PartitionRef[] | undefined, thread?: WarmWorker) => Promise<G>) => (): Promise<G> => {
        const m = handOver;
        const t = thread;
        handOver = thread = undefined;
        if (m === undefined) return open(configs, undefined, t);
        return open(configs.map((c, i) => (m[i]?.isMoving && m[i].available ? { ...c, log: { ...c.log, handedOver: true } } : c)), m, t);
      };
      const start: () => Promise<PartitionActorGroup> = onGateway
        ? startWith((cs, m) => GatewayHostedPartitions.start(cs, { name: id, testHooks }, m))
        : startWith((cs, m, t) => PartitionThread.start(cs, threadConfig, m, t));
      specs.push({
        id,
        start: this.guardedStart(id, configs, start, boot),
        restart: 'permanent',
        shutdown: 30_000,
      });
    }
    return specs;
  }

  /**
   * A partition child's start, with the broker's give-up rule. A child that failed
   * `partitionGiveUpAfter` times within the restart period (once, if the broker gave up on it within
   * the last two periods), or whose first start at `boot` failed, is replaced by FailedPartitions:
   * a damaged log then neither exhausts the partition supervisor's intensity (its escalation would
   * restart every partition, and in the end stop the broker) nor stops the broker's start. A first
   * start that is not at boot (create_topic, a move) fails as it is: its caller undoes it.
   */
  private guardedStart(id: string, configs: PartitionActorConfig[], start: () => Promise<PartitionActorGroup>, boot: boolean): () => Promise<PartitionActorGroup> {
    let first = true;
    return async () => {
      const isFirst = first;
      first = false;
      if (!isFirst && this.recentFailures(id) >= this.giveUpLimit(id)) return this.giveUp(id, configs);
      let group: PartitionActorGroup;
      try {
        group = await start();
      } catch (err) {
        if (isFirst && !boot) throw err;
        this.noteFailure(id, err instanceof Error ? err : new Error(String(err)));
        if (isFirst) return this.giveUp(id, configs, true);
        if (this.recentFailures(id) >= this.giveUpLimit(id)) return this.giveUp(id, configs);
        throw err; // the supervisor backs off and starts it again
      }
      group.onExit((e) => {
        if (!e.normal) this.noteFailure(id, e.reason ?? new Error(`partitions ${id} exited`));
      });
      return group;
    };
  }

  private noteFailure(id: string, reason: Error): void {
    const f = this.failures.get(id);
    if (f) {
      f.at.push(performance.now());
      f.reason = reason;
    } else this.failures.set(id, { at: [performance.now()], reason });
  }

  private recentFailures(id: string): number {
    const f = this.failures.get(id);
    if (!f) return 0;
    const since = performance.now() - (this.opts.restartPeriodMs ?? 60_000);
    f.at = f.at.filter((t) => t >= since);
    return f.at.length;
  }

  private giveUpLimit(id: string): number {
    const period = this.opts.restartPeriodMs ?? 60_000;
    // Started again after being given up: it gets one chance, not another round of restarts.
    if (performance.now() - (this.givenUpAt.get(id) ?? -Infinity) <= 2 * period) return 1;
    return this.opts.partitionGiveUpAfter ?? Math.max(2, Math.min(5, this.opts.restartIntensity ?? 20));
  }

  /** Stand FailedPartitions in for the child, carrying what failed; started again a restart period later. */
  private giveUp(id: string, configs: PartitionActorConfig[], atBoot = false): PartitionActorGroup {
    this.givenUpAt.set(id, performance.now());
    const f = this.failures.get(id);
    const reason = f?.reason ?? new Error(`partitions ${id} failed`);
    const failures = f?.at.length ?? 1;
    const what = `partition ${id} ${atBoot ? 'failed to start' : `failed ${failures} time${failures === 1 ? '' : 's'} in ${this.opts.restartPeriodMs ?? 60_000} ms`} and is not served`;
    const error = storageFailure(what, reason, (facts) => new WeirError(ErrorCode.PARTITION_UNAVAILABLE, `${what}: ${facts.message}`, { retryable: true }));
    const failure = { code: error.code, message: error.message };
    const cause = failureOf(reason);
    if (channels.partitionFailed.hasSubscribers) {
      for (const c of configs) channels.partitionFailed.publish({ topic: c.topic, partition: c.partition, code: cause.code, message: cause.message, failures, answer: failure.code });
    }
    return new FailedPartitions(configs, failure, this.opts.restartPeriodMs ?? 60_000);
  }

  private async startPartitionSupervisor(): Promise<ChildHandle> {
    const o = this.opts;
    const stored = this.topics.stored();
    const byTopic = stored.map((t) => ({ topic: t.topic, specs: this.partitionSpecs(t.topic, t.partitions, this.hostOf(t.topic), undefined, undefined, true) }));
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
        const before = this.topics.get(actor.topic)?.actors[actor.partition];
        this.topics.replace(actor.topic, actor.partition, actor);
        // A FailedPartitions stand-in was published as weir:partition:failed.
        if (actor.failure === null && channels.partitionRestart.hasSubscribers) {
          channels.partitionRestart.publish({ topic: actor.topic, partition: actor.partition, reason: before?.failure ?? before?.lastError ?? null });
        }
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

  private readonly launcher: PartitionLauncher = {
    startPartitions: async (topic, count) => {
      const sup = this.partitions;
      if (!sup) throw new WeirError(ErrorCode.SHUTTING_DOWN, 'partition supervisor is not running', { retryable: true });
      const host = this.hostOf(topic);
      const specs = this.partitionSpecs(topic, count, host);
      checkFdsFor(topic, count, host === 'gateway' ? 0 : specs.length);
      try {
        return await this.startSpecs(sup, topic, specs, host);
      } catch (err) {
        // Not the supervisor's CHILD_START_FAILED: what failed, for the client (docs/protocol.md).
        throw storageFailure(`cannot create topic ${topic}`, err, (f) =>
          new WeirError(ErrorCode.PARTITION_UNAVAILABLE, `cannot create topic ${topic}: a partition failed to start: ${f.message}`, { retryable: true, cause: err }),
        );
      }
    },
    stopPartitions: async (topic) => {
      const sup = this.partitions;
      if (sup) {
        for (const id of this.childIds.get(topic) ?? []) {
          await sup.terminateChild(id);
          await sup.deleteChild(id);
        }
      }
      this.childIds.delete(topic);
      this.hosts.delete(topic);
    },
  };

  /**
   * What the partitions hold now, by the broker's own accounting: how many have rings, buffers and
   * open fds, and how much (an idle partition holds none). Buffers and fds of partitions on worker
   * threads are those threads' own and are not counted (`onThreads`).
   */
  partitionResources(): PartitionResourceTotals {
    const t: PartitionResourceTotals = { partitions: 0, onThreads: 0, withRings: 0, ringBytes: 0, withBuffers: 0, bufferBytes: 0, withFds: 0, fds: 0 };
    for (const topic of this.topics.all()) {
      for (const a of topic.actors) {
        if (!a.available) continue;
        const r = a.resources();
        t.partitions++;
        if (r.host === 'threads') t.onThreads++;
        if (r.ringBytes > 0) t.withRings++;
        t.ringBytes += r.ringBytes;
        if (r.bufferBytes !== null && r.bufferBytes > 0) t.withBuffers++;
        t.bufferBytes += r.bufferBytes ?? 0;
        if (r.fds !== null && r.fds > 0) t.withFds++;
        t.fds += r.fds ?? 0;
      }
    }
    return t;
  }

  private async startGateway(): Promise<ChildHandle> {
    const o = this.opts;
    const config: GatewayConfig = {
      ...defaultGatewayConfig,
      ...o.gateway,
      ...listenAddress(o),
      fsyncLabel: fsyncLabel(this.fsync),
    };
    // The core and its front door live and restart together, with the features installed on them.
    const core = new BrokerCore(config, {
      topics: this.topics,
      launcher: this.launcher,
      groups: this.groups,
      offsets: this.offsets,
      brokerName: 'weir/0.1.0',
      defaultPartitions: o.defaultPartitions ?? 8,
    });
    const features = await installFeatures(FEATURES, { host: core, dataDir: this.opts.dataDir, fsync: this.fsync });
    const gateway = new Gateway(config, core);
    try {
      await gateway.listen();
    } catch (err) {
      await closeFeatures(features);
      throw err;
    }
    this.gateway = gateway;
    this.brokerCore = core;
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

/** Broker.partitionResources(): partitions counted, and what they hold. */
export interface PartitionResourceTotals {
  partitions: number;
  /** Partitions on worker threads (their buffers and fds are not counted). */
  onThreads: number;
  withRings: number;
  ringBytes: number;
  withBuffers: number;
  bufferBytes: number;
  withFds: number;
  fds: number;
}

/**
 * Fds a topic takes while it is created: each host child opens its partitions one at a time, each
 * holding a log's two files and a directory or temporary file in passing, and releases them at
 * once (an idle partition holds none); a worker thread holds a few of its own (epoll, eventfds);
 * topics.json is rewritten through a temporary file.
 */
const FDS_OPENING_PARTITION = 4;
const FDS_PER_THREAD = 4;
const FDS_TOPICS_FILE = 2;

/**
 * Refuse a new topic with RESOURCE_LIMIT when creating it would take the process near its
 * open-file limit (reservedFds kept free), instead of failing half-way with EMFILE.
 * `threads`: worker threads the topic starts (0 on the gateway's thread).
 */
function checkFdsFor(topic: string, partitions: number, threads: number): void {
  const limit = openFileLimit();
  const open = limit === null ? null : openFileCount();
  if (limit === null || open === null) return;
  const needed = threads === 0 ? FDS_OPENING_PARTITION + FDS_TOPICS_FILE : threads * (FDS_PER_THREAD + FDS_OPENING_PARTITION) + FDS_TOPICS_FILE;
  const reserved = reservedFds(limit);
  if (open + needed + reserved <= limit) return;
  throw new WeirError(
    ErrorCode.RESOURCE_LIMIT,
    `cannot create topic ${JSON.stringify(topic.slice(0, 60))} (${partitions} partition${partitions === 1 ? '' : 's'}): the broker has ${open} files open of its limit of ${limit} ` +
      `(ulimit -n), creating the topic needs about ${needed} more, and ${reserved} are kept free for connections and active partitions; ` +
      `raise the limit or free some (close connections, let partitions go idle)`,
    { retryable: true, details: { openFiles: open, limit, needed, reserved } },
  );
}
