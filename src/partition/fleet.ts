/**
 * Every partition actor of the broker: starts them under the partition supervisor, places and
 * moves topics between the gateway's thread and worker threads, and gives up on a partition that
 * keeps failing.
 *
 *   partitions supervisor (one_for_one, backoff, intensity)
 *   ├── a child per worker thread of a topic's partition actors (`topic/first-last`), or
 *   └── a child per partition on the gateway's thread (`topic/partition`)
 *
 * The fleet owns where each topic runs (hostOf) and the children that run it; the actors
 * themselves are registered in the broker's topic list (FleetTopics), which the core reads. With
 * `actorHost: 'auto'` a quiet topic's actors run on the gateway's thread and a busy one's on worker
 * threads (placement.ts decides; moveTopic moves, holding requests meanwhile).
 */
import os from 'node:os';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { Supervisor, type BackoffOptions, type ChildHandle, type ChildSpec, type WarmWorker } from '../supervisor/index.js';
import { PartitionThread, failureOf, type PartitionRef, type PartitionActorConfig, type PartitionActorGroup } from './ref.js';
import { GatewayHostedPartitions } from './gateway-host.js';
import { FailedPartitions } from './failed.js';
import { GiveUpPolicy, defaultGiveUpAfter } from './give-up.js';
import { DEFAULT_PLACEMENT, PlacementPolicy, type ActorHost, type PartitionHostKind, type PlacementOptions, type TopicLoad } from './placement.js';
import type { PartitionSlotData } from './protocol.js';
import { channels } from '../common/diagnostics.js';
import { WeirError } from '../common/errors.js';
import { storageFailure } from '../common/storage-failure.js';
import { openFileCount, openFileLimit, reservedFds } from '../common/fd-limit.js';
import type { FsyncPolicy } from '../common/fsync.js';
import { ErrorCode } from '../protocol/codes.js';

/** A topic as the fleet sees it in the broker's topic list. */
export interface FleetTopic {
  readonly name: string;
  readonly partitions: number;
  /** Current actor per partition (replaced on restart and on a move). */
  readonly actors: readonly PartitionRef[];
}

/** What the fleet needs of the broker's topic list (the core's TopicRegistry keeps it). */
export interface FleetTopics {
  /** The topics stored on disk, started when the partition supervisor starts. */
  stored(): ReadonlyArray<{ readonly topic: string; readonly partitions: number }>;
  get(topic: string): FleetTopic | undefined;
  all(): Iterable<FleetTopic>;
  /** Register a topic's started actors: at boot, and again when the partition supervisor was restarted. */
  adopt(topic: string, actors: PartitionRef[]): void;
  /** Swap a partition's new actor in (its child restarted, or the topic moved). */
  replace(topic: string, partition: number, actor: PartitionRef): void;
  partitionDir(topic: string, partition: number): string;
}

/** The broker's partition settings (BrokerOptions documents each). */
export interface PartitionFleetOptions {
  fsync: FsyncPolicy;
  /** Topics broker-wide retention does not apply to (their records must outlive it). */
  retentionExempt: (topic: string) => boolean;
  segmentBytes?: number;
  retentionBytes?: number;
  retentionMs?: number;
  segmentMs?: number;
  pageCacheBytes?: number;
  ringBytes?: number;
  idleReleaseMs?: number;
  restartIntensity?: number;
  restartPeriodMs?: number;
  restartBackoff?: BackoffOptions;
  partitionGiveUpAfter?: number;
  actorsPerThread?: number | 'auto';
  actorHost?: ActorHost;
  placement?: Partial<PlacementOptions>;
  testHooks?: boolean;
}

/** PartitionFleet.resources(): partitions counted, and what they hold. */
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

export class PartitionFleet {
  private partitions: Supervisor<PartitionActorGroup> | null = null;
  /** Where each topic's partitions run now (`hostOf`), and the supervisor children that run them. */
  private readonly hosts = new Map<string, PartitionHostKind>();
  private readonly childIds = new Map<string, string[]>();
  /** Moves run one at a time. */
  private moves: Promise<unknown> = Promise.resolve();
  private moveRunning = false;
  private placementTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly giveUps: GiveUpPolicy;
  private readonly periodMs: number;

  constructor(
    private readonly topics: FleetTopics,
    private readonly opts: PartitionFleetOptions,
  ) {
    this.periodMs = opts.restartPeriodMs ?? 60_000;
    this.giveUps = new GiveUpPolicy({
      periodMs: this.periodMs,
      after: opts.partitionGiveUpAfter ?? defaultGiveUpAfter(opts.restartIntensity ?? 20),
    });
  }

  /**
   * The partition supervisor, with a child for every stored topic: the broker's supervisor starts
   * it, and again after it escalated. Its restarted children's actors are swapped into the topic list.
   */
  async startSupervisor(): Promise<ChildHandle> {
    const o = this.opts;
    const stored = this.topics.stored();
    const byTopic = stored.map((t) => ({ topic: t.topic, specs: this.partitionSpecs(t.topic, t.partitions, this.hostOf(t.topic), undefined, undefined, true) }));
    const specs = byTopic.flatMap((t) => t.specs);
    const sup = new Supervisor<PartitionActorGroup>(
      'partitions',
      {
        strategy: 'one_for_one',
        intensity: o.restartIntensity ?? 20,
        period: this.periodMs,
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

  /**
   * Start the actors of a new topic's partitions under supervision, where the topic would start;
   * resolves when all serve (the core's PartitionLauncher).
   */
  async startPartitions(topic: string, count: number): Promise<PartitionRef[]> {
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
  }

  /** Stop a topic's actors and forget them (a create that could not be made durable; the core's PartitionLauncher). */
  async stopPartitions(topic: string): Promise<void> {
    const sup = this.partitions;
    if (sup) {
      for (const id of this.childIds.get(topic) ?? []) {
        await sup.terminateChild(id);
        await sup.deleteChild(id);
      }
    }
    this.childIds.delete(topic);
    this.hosts.delete(topic);
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
      if (sup === null || t === undefined || this.stopped || from === to) return false;
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

  /** `actorHost: 'auto'`: sample the gateway thread's utilization and every topic's load, and move. */
  startPlacement(): void {
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

  /** No move starts from now on (the broker is closing); resolves once the running one is done. */
  stopMoving(): Promise<unknown> {
    this.stopped = true;
    if (this.placementTimer !== null) clearInterval(this.placementTimer);
    return this.moves;
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

  /**
   * What the partitions hold now, by the broker's own accounting: how many have rings, buffers and
   * open fds, and how much (an idle partition holds none). Buffers and fds of partitions on worker
   * threads are those threads' own and are not counted (`onThreads`).
   */
  resources(): PartitionResourceTotals {
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

  private actorConfig(topic: string, partition: number): PartitionActorConfig {
    const o = this.opts;
    const log: PartitionSlotData['log'] = {
      // 1 GiB, Kafka's default. Sealed segments are fdatasync'ed in the background (src/log), so a
      // roll does not stall the thread's partitions. The price of large segments: after an unclean
      // stop, recovery CRC-checks up to 1 GiB of the last segment.
      segmentBytes: o.segmentBytes ?? 1024 * 1024 * 1024,
      indexIntervalBytes: 4096,
      fsync: o.fsync,
    };
    const exempt = o.retentionExempt(topic);
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
   * A partition child's start, with the give-up rule (give-up.ts). A child that failed
   * `partitionGiveUpAfter` times within the restart period (once, if the fleet gave up on it within
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
      if (!isFirst && this.giveUps.shouldGiveUp(id)) return this.giveUp(id, configs);
      let group: PartitionActorGroup;
      try {
        group = await start();
      } catch (err) {
        if (isFirst && !boot) throw err;
        this.giveUps.noteFailure(id, err instanceof Error ? err : new Error(String(err)));
        if (isFirst) return this.giveUp(id, configs, true);
        if (this.giveUps.shouldGiveUp(id)) return this.giveUp(id, configs);
        throw err; // the supervisor backs off and starts it again
      }
      group.onExit((e) => {
        if (!e.normal) this.giveUps.noteFailure(id, e.reason ?? new Error(`partitions ${id} exited`));
      });
      return group;
    };
  }

  /** Stand FailedPartitions in for the child, carrying what failed; started again a restart period later. */
  private giveUp(id: string, configs: PartitionActorConfig[], atBoot = false): PartitionActorGroup {
    const given = this.giveUps.giveUp(id);
    const reason = given.reason ?? new Error(`partitions ${id} failed`);
    const failures = given.failures;
    const what = `partition ${id} ${atBoot ? 'failed to start' : `failed ${failures} time${failures === 1 ? '' : 's'} in ${this.periodMs} ms`} and is not served`;
    const error = storageFailure(what, reason, (facts) => new WeirError(ErrorCode.PARTITION_UNAVAILABLE, `${what}: ${facts.message}`, { retryable: true }));
    const failure = { code: error.code, message: error.message };
    const cause = failureOf(reason);
    if (channels.partitionFailed.hasSubscribers) {
      for (const c of configs) channels.partitionFailed.publish({ topic: c.topic, partition: c.partition, code: cause.code, message: cause.message, failures, answer: failure.code });
    }
    return new FailedPartitions(configs, failure, this.periodMs);
  }
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
