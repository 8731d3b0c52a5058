/**
 * A whole broker in one process:
 *
 *   root supervisor (one_for_one)
 *   ├── partitions supervisor (one_for_one, backoff, intensity)  ← a child per worker thread of
 *   │                                                              partition actors, or per
 *   │                                                              partition on the gateway's thread
 *   └── gateway (uWebSockets.js on the main thread)
 *
 * The composition root: the partition actors are the fleet's (src/partition/fleet.ts: supervision,
 * placement, moves, giving up), the topics, groups and offsets the core's, the features are
 * installed here. Started in that order and stopped in reverse: the gateway stops accepting and
 * lets in-flight requests finish, then every partition drains its ring, flushes, fsyncs and closes
 * its files.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Supervisor, type ChildHandle, type ChildExit, type ChildSpec } from './supervisor/index.js';
import type { PartitionRef } from './partition/ref.js';
import { PartitionFleet, type PartitionResourceTotals } from './partition/fleet.js';
import type { ActorHost, PartitionHostKind, PlacementOptions } from './partition/placement.js';
import { TopicRegistry } from './core/topics/registry.js';
import { closeFeatures, installFeatures, type FeatureInstaller } from './core/feature-host.js';
import { installRouting } from './features/routing/feature.js';
import { installProducers } from './features/producers/feature.js';
import { installTime } from './features/scheduler/feature.js';
import { installTransactions } from './features/transactions/feature.js';
import { installQueues } from './features/queue/feature.js';
import { GroupCoordinator } from './core/groups/coordinator.js';
import { OffsetStore } from './core/groups/offset-store.js';
import { Gateway } from './gateway/server.js';
import { mountHttpRoutes } from './http/routes.js';
import { BrokerCore } from './core/broker-core.js';
import { defaultGatewayConfig, type GatewayConfig } from './gateway/config.js';
import { channels } from './common/diagnostics.js';
import { WeirError } from './common/errors.js';
import { ErrorCode, WeirCode } from './protocol/codes.js';
import { checkDataDirPath, lockDataDir, type DataDirLock } from './common/data-dir.js';
import { checkPortFree } from './gateway/native.js';
import { parseAllowedOrigins } from './gateway/origin.js';
import { checkTlsFiles, type TlsFiles } from './gateway/tls.js';
import type { TlsReloadResult, TlsReloadTrigger } from './gateway/server.js';
import { HALF_TOPIC, SCHEDULE_TOPIC_PREFIX } from './core/topics/names.js';
import {
  AuditLog, authenticationConfigured, loadAuthenticator, loadQuotas, loadTenants, loadUsers, maxConnectionsPerPrincipalOf,
  type Authenticator, type ByteRateQuotas, type SecurityOptions, type Tenants,
} from './security/index.js';

export type { ActorHost } from './partition/placement.js';
export type { PartitionResourceTotals } from './partition/fleet.js';
export { parseFsync, fsyncLabel, type FsyncPolicy } from './common/fsync.js';
import { parseFsync, fsyncLabel, type FsyncPolicy } from './common/fsync.js';

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
  /** The WebSocket gateway's limits; `gateway.token` is the shared token of `security.token` (older name). */
  gateway?: Partial<GatewayConfig>;
  /**
   * Serve `wss://` with these PEM files (`--tls-cert`, `--tls-key`, `--tls-ca`). They are loaded
   * again when they change (`watch`, default true) and on `reloadTls()` (`weir start`: SIGHUP).
   */
  tls?: TlsFiles & { readonly watch?: boolean };
  /** Browser pages allowed to connect (`--allowed-origin`): an upgrade with another `Origin` is refused (403). */
  allowedOrigins?: readonly string[];
  /**
   * Listen on an address other machines reach although no authentication is configured
   * (`--insecure`). Without it such a start fails with BAD_CONFIG.
   */
  insecure?: boolean;
  /**
   * Authentication and permissions (docs/security.md): a users file, roles, JSON Web Token keys, a
   * shared token. Any of the users file, token keys or token turns authentication on: then every
   * client authenticates in `hello` and every operation is checked against its permissions. A file
   * that is missing or wrong refuses the start (BAD_CONFIG). The users file is read again when it
   * changes (`weir users add` on a running broker).
   */
  security?: SecurityOptions & {
    /** Append authentication failures and denials to this JSON-lines file (rotated by size). */
    auditLog?: string;
  };
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
  /** Every partition actor: started under the partition supervisor, placed, moved, given up. */
  private readonly fleet: PartitionFleet;
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
  private readonly audit: AuditLog | null;
  private readonly stopWatchingUsers: () => void;
  /** One for the broker's life, so a gateway restarted by its supervisor keeps the principals' debts. */
  private readonly quotas: ByteRateQuotas | null;
  private readonly tenants: Tenants | null;

  private constructor(
    private readonly opts: Required<Pick<BrokerOptions, 'dataDir'>> & BrokerOptions,
    /** Held from before anything is read or written in the data directory until close(). */
    readonly dataDirLock: DataDirLock,
    /** Authentication; null: off (every client may do everything but reach internal topics). */
    private readonly auth: Authenticator | null,
  ) {
    this.audit = opts.security?.auditLog !== undefined ? new AuditLog({ file: path.resolve(opts.security.auditLog), onError: (e) => console.error(`weir: audit log: ${(e as Error).message}`) }) : null;
    this.quotas = loadQuotas(opts.security?.quotas);
    this.tenants = loadTenants(opts.security?.tenants);
    this.stopWatchingUsers = auth !== null && opts.security?.usersFile !== undefined ? watchUsersFile(opts.security.usersFile, auth) : () => undefined;
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
    this.fleet = new PartitionFleet(this.topics, { ...opts, fsync: this.fsync, retentionExempt });
    const partitionsSpec: ChildSpec = {
      id: 'partitions',
      start: () => this.fleet.startSupervisor(),
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
    checkExposure(host, options);
    if (options.tls !== undefined) checkTlsFiles(options.tls);
    if (options.allowedOrigins !== undefined) parseAllowedOrigins(options.allowedOrigins);
    const perAddress = options.gateway?.maxConnectionsPerAddress;
    if (perAddress !== undefined && !(Number.isSafeInteger(perAddress) && perAddress >= 1)) {
      throw new WeirError(WeirCode.BAD_CONFIG, `BAD_CONFIG: --max-connections-per-ip must be a whole number, at least 1 (got ${JSON.stringify(perAddress)})`);
    }
    // Refused before anything is written: a wrong quota or tenant list.
    loadQuotas(options.security?.quotas);
    loadTenants(options.security?.tenants);
    maxConnectionsPerPrincipalOf(options.security);
    if (port !== 0) await checkPortFree(host, port);
    const token = options.security?.token ?? options.gateway?.token;
    const auth = await loadAuthenticator(token === undefined ? options.security : { ...options.security, token });
    const lock = lockDataDir(dataDir);
    let broker: Broker | undefined;
    try {
      broker = new Broker({ ...options, dataDir }, lock, auth);
      await broker.root.start();
    } catch (err) {
      broker?.groups.close();
      broker?.offsets.close();
      broker?.stopWatchingUsers();
      broker?.audit?.close();
      lock.release();
      if (broker) channels.walDamage.unsubscribe(broker.onDamage);
      // Another process took the port after checkPortFree: say so as plainly as it would have.
      const cause = err instanceof Error ? err.cause : undefined;
      throw WeirError.isWeirError(cause) && cause.code === WeirCode.LISTEN_FAILED ? cause : err;
    }
    broker.fleet.startPlacement();
    return broker;
  }

  get port(): number {
    return this.gateway?.port ?? 0;
  }
  get url(): string {
    return `${this.opts.tls === undefined ? 'ws' : 'wss'}://${listenAddress(this.opts).host}:${this.port}`;
  }

  /**
   * Load the TLS files again (`weir start` does on SIGHUP): new connections get the new
   * certificate, open ones keep theirs; one that does not load is reported and the old one kept.
   */
  async reloadTls(trigger: TlsReloadTrigger = 'call'): Promise<TlsReloadResult> {
    if (!this.gateway) return { ok: false, error: 'the gateway is not running' };
    return this.gateway.reloadTls(trigger);
  }

  /** Whether clients must authenticate (a users file, token keys or a shared token is configured). */
  get authenticationRequired(): boolean {
    return this.auth !== null;
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
  waitHealthy(timeoutMs = 30_000): Promise<void> {
    return this.fleet.waitHealthy(timeoutMs);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fleet.stopMoving();
    await this.root.close();
    this.groups.close();
    this.offsets.close();
    this.stopWatchingUsers();
    this.audit?.close();
    this.dataDirLock.release();
    channels.walDamage.unsubscribe(this.onDamage);
  }

  /** Damaged regions found in each partition's log since the broker started, and the offsets lost with them. */
  dataLoss(): Array<{ topic: string; partition: number; regions: number; offsets: number }> {
    return [...this.damageFound.values()].map((d) => ({ ...d }));
  }

  /** Where a topic's partition actors run now (a topic not started yet: where it would start). */
  hostOf(topic: string): PartitionHostKind {
    return this.fleet.hostOf(topic);
  }

  /** Move a topic's partition actors to the other host without failing a request (PartitionFleet.moveTopic). */
  moveTopic(topic: string, to: PartitionHostKind): Promise<boolean> {
    return this.fleet.moveTopic(topic, to);
  }

  /** What the partitions hold now: rings, buffers and fds (PartitionFleet.resources). */
  partitionResources(): PartitionResourceTotals {
    return this.fleet.resources();
  }

  /** Reads what the topics of tenants with a storage quota hold on disk, for the core's usage. */
  private async measureTenants(core: BrokerCore, tenants: Tenants): Promise<void> {
    const finish = core.beginTenantMeasurement();
    const measured = new Map<string, number>();
    for (const topic of [...this.topics.all()]) {
      const tenant = tenants.ofTopic(topic.name);
      if (tenant?.maxStorageBytes === undefined) continue;
      let bytes = 0;
      for (let p = 0; p < topic.partitions; p++) bytes += await dirBytes(this.topics.partitionDir(topic.name, p));
      measured.set(tenant.name, (measured.get(tenant.name) ?? 0) + bytes);
    }
    finish(measured);
  }

  /** measureTenants every `ms`, one at a time; returns the stop. */
  private measureTenantsEvery(core: BrokerCore, tenants: Tenants, ms: number): () => void {
    let running = false;
    const timer = setInterval(() => {
      if (running) return;
      running = true;
      this.measureTenants(core, tenants)
        .catch((e: unknown) => console.error(`weir: measuring the tenants' storage: ${(e as Error).message}`))
        .finally(() => (running = false));
    }, ms);
    timer.unref();
    return () => clearInterval(timer);
  }

  private async startGateway(): Promise<ChildHandle> {
    const o = this.opts;
    const config: GatewayConfig = {
      ...defaultGatewayConfig,
      ...o.gateway,
      ...listenAddress(o),
      fsyncLabel: fsyncLabel(this.fsync),
      ...(o.tls !== undefined ? { tls: o.tls, watchTls: o.tls.watch !== false } : {}),
      ...(o.allowedOrigins !== undefined ? { allowedOrigins: o.allowedOrigins } : {}),
    };
    // The core and its front door live and restart together, with the features installed on them.
    const core = new BrokerCore(config, {
      topics: this.topics,
      launcher: this.fleet,
      groups: this.groups,
      offsets: this.offsets,
      brokerName: 'weir/0.1.0',
      defaultPartitions: o.defaultPartitions ?? 8,
      auth: this.auth,
      ...(this.audit !== null ? { audit: this.audit } : {}),
      quotas: this.quotas,
      tenants: this.tenants,
      ...(this.opts.security?.maxConnectionsPerPrincipal !== undefined ? { maxConnectionsPerPrincipal: this.opts.security.maxConnectionsPerPrincipal } : {}),
    });
    // The storage quota holds from the first request: what the tenants' topics hold is read first.
    if (this.tenants !== null) await this.measureTenants(core, this.tenants);
    const features = await installFeatures(FEATURES, { host: core, dataDir: this.opts.dataDir, fsync: this.fsync });
    const gateway = new Gateway(config, core, (app) => mountHttpRoutes(app, core));
    try {
      await gateway.listen();
    } catch (err) {
      await closeFeatures(features);
      throw err;
    }
    this.gateway = gateway;
    this.brokerCore = core;
    const stopMeasuring = this.tenants !== null ? this.measureTenantsEvery(core, this.tenants, TENANT_MEASURE_MS) : () => undefined;
    const listeners: Array<(e: ChildExit) => void> = [];
    return {
      close: async () => {
        stopMeasuring();
        await gateway.close();
        await closeFeatures(features);
        for (const l of listeners) l({ normal: true, reason: null });
      },
      destroy: () => {
        stopMeasuring();
        void gateway.close(0).then(() => closeFeatures(features));
        for (const l of listeners) l({ normal: false, reason: null });
      },
      onExit: (l) => listeners.push(l),
    };
  }
}

/** How often the tenants' storage is read from disk again (retention's deletions show then). */
const TENANT_MEASURE_MS = 5_000;

/** Bytes of the files in `dir` (0: it does not exist). */
async function dirBytes(dir: string): Promise<number> {
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch {
    return 0;
  }
  let total = 0;
  for (const name of names) {
    try {
      const st = await fs.promises.stat(path.join(dir, name));
      if (st.isFile()) total += st.size;
    } catch {
      // deleted meanwhile (retention): not stored
    }
  }
  return total;
}

/**
 * Exempt from broker-wide retention: the half messages of unfinished transactions (their apply
 * reads them back) and schedule topics (retention would silently delete messages not yet due;
 * docs/time.md, "Retention"; docs/transactions.md).
 */
function retentionExempt(topic: string): boolean {
  return topic === HALF_TOPIC || topic.startsWith(SCHEDULE_TOPIC_PREFIX);
}

/**
 * Whether clients must authenticate: a users file, JWT keys (BrokerOptions.security) or the shared
 * token (gateway.token).
 */
function authConfigured(o: BrokerOptions): boolean {
  return authenticationConfigured(o.security) || o.gateway?.token !== undefined;
}

/** Loopback addresses: only this machine reaches them. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host) || /^::ffff:127\./i.test(host);
}

/**
 * BAD_CONFIG for a broker other machines could reach without authentication, unless `insecure`
 * says that is meant: by default an unauthenticated broker serves this machine only.
 */
function checkExposure(host: string, o: BrokerOptions): void {
  if (isLoopbackHost(host) || authConfigured(o) || o.insecure === true) return;
  throw new WeirError(
    WeirCode.BAD_CONFIG,
    `BAD_CONFIG: refusing to listen on ${host}, which other machines can reach, without authentication: configure it (a users file, JWT keys or a token), ` +
      `or pass --insecure (BrokerOptions.insecure) to accept connections from anyone who can reach ${host}`,
    { details: { host } },
  );
}

/**
 * Serve logins from the users file as it changes (`weir users add|remove` on a running broker): read
 * again after each change; a file that does not parse is reported and the previous users stay.
 */
function watchUsersFile(file: string, auth: Authenticator): () => void {
  const reload = (current: fs.Stats, previous: fs.Stats): void => {
    if (current.mtimeMs === previous.mtimeMs && current.size === previous.size) return;
    try {
      auth.setUsers(loadUsers(file));
    } catch (err) {
      console.error(`weir: ${(err as Error).message}; the users loaded before stay in force`);
    }
  };
  fs.watchFile(file, { interval: 1000, persistent: false }, reload);
  return () => fs.unwatchFile(file, reload);
}

/** Where the gateway listens: `host`/`port`, else the gateway config's, else the defaults. */
function listenAddress(o: BrokerOptions): { host: string; port: number } {
  return { host: o.host ?? o.gateway?.host ?? defaultGatewayConfig.host, port: o.port ?? o.gateway?.port ?? defaultGatewayConfig.port };
}

export const startBroker = Broker.start;
