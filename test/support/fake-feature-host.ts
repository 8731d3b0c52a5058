/**
 * A FeatureHost (src/core/feature-host.ts) for feature-shell tests: small, but real where a feature
 * can tell. Topics live in a real TopicRegistry (topics.json in the test's directory) whose
 * partitions are MemoryLogs (src/log/memory-log.ts, the in-memory PartitionStore); committed group
 * offsets in a real OffsetStore, consumer groups in a real GroupCoordinator. append() validates with
 * the core's limits (scanProducedBatch) and routes with the core's Router: an explicit partition,
 * else Kafka's murmur2 by key, else the topic's sticky partition, moved on per batch. read() and
 * readView() read the MemoryLog as a partition actor does (range errors, long poll up to
 * maxWaitMs, DATA_LOSS for damage a test put there). Each Topic's PartitionRefs run on a runtime
 * that answers describe() from its MemoryLog; nothing is written to their rings.
 *
 * A test opens sessions (their ports record every frame: send, sendNow, sendError), installs a
 * feature with install() (as src/broker.ts FEATURES are), drives its ops with request()/call() and
 * a client's produce with produce() (through the control interceptors, as the core's produce op).
 *
 * Not here: deliveries to subscriptions (subscribeTopic records them: subscriptionsOf), flow
 * control, idempotent produce (checkProducer asks the producer guard a feature set).
 */
import { onTestFinished } from 'vitest';
import { WeirError } from '../../src/common/errors.js';
import type { FsyncPolicy } from '../../src/common/fsync.js';
import { ErrorCode, RETRYABLE } from '../../src/protocol/codes.js';
import type { TopicConfig } from '../../src/protocol/frames.js';
import { RecordIndex } from '../../src/protocol/record.js';
import { readMessages, type Message } from '../../src/protocol/batch-reader.js';
import { MemoryLog } from '../../src/log/internal.js';
import { FetchMode } from '../../src/partition/protocol.js';
import { slotReady } from '../../src/partition/open-partition.js';
import { PartitionRef, type ActorRuntime, type PartitionActorConfig, type PartitionResources } from '../../src/partition/ref.js';
import { closeFeatures, type ControlGuard, type ControlInterceptor, type ControlInterceptorRequest, type Feature, type FeatureContext, type FeatureHost, type ProducerGuard, type ReadOptions, type ReadResult } from '../../src/core/feature-host.js';
import { OpTable, type OpSpec, type RequestHandler } from '../../src/core/ops.js';
import { needId } from '../../src/common/errors.js';
import { scanProducedBatch } from '../../src/core/produce.js';
import { fetchFailure } from '../../src/core/reads.js';
import { Router } from '../../src/core/router.js';
import { Session, type Frame, type ProducePart } from '../../src/core/session.js';
import { badRequest, partitionOf, type SubscribeOptions } from '../../src/core/validate.js';
import { GroupCoordinator } from '../../src/core/groups/coordinator.js';
import { OffsetStore } from '../../src/core/groups/offset-store.js';
import { TopicRegistry, type PartitionLauncher, type Topic } from '../../src/core/topics/registry.js';
import { defaultGatewayConfig } from '../../src/gateway/config.js';
import { RecordingPort } from './session.js';
import { tmpDir } from './tmp-dir.js';
import { Grants, OPEN_PRINCIPAL, forbidden, type Action, type Principal, type RoleTable } from '../../src/security/index.js';

export interface FakeFeatureHostOptions {
  /** Where topics.json and the group offsets go; features get it as ctx.dataDir. */
  dataDir: string;
  /** The features' fsync policy (ctx.fsync) and the offset store's. Default never. */
  fsync?: FsyncPolicy;
  /** The broker's limits (defaults: the gateway's). */
  maxMessageBytes?: number;
  maxRecordsPerBatch?: number;
  maxFetchBytes?: number;
}

/** A subscription a feature opened with subscribeTopic (nothing is delivered to it here). */
export interface RecordedSubscription {
  sub: number;
  topic: string;
  options: SubscribeOptions;
}

export type Produced = { parts: ProducePart[]; route?: Uint8Array };

const EMPTY = new Uint8Array(0);
const WIRE_CODES: ReadonlySet<string> = new Set<string>(Object.values(ErrorCode));

/** A fake host in a fresh temp dir, closed (features first) and removed when the test finishes. Call inside a test. */
export function fakeFeatureHost(options: Omit<FakeFeatureHostOptions, 'dataDir'> = {}): FakeFeatureHost {
  const tmp = tmpDir('weir-fake-host-');
  const host = new FakeFeatureHost({ ...options, dataDir: tmp.dir });
  onTestFinished(async () => {
    await host.close();
    tmp.cleanup();
  });
  return host;
}

export class FakeFeatureHost implements FeatureHost {
  readonly topics: TopicRegistry;
  readonly groups = new GroupCoordinator();
  readonly offsets: OffsetStore;
  /** What install() gives a feature. */
  readonly context: FeatureContext;

  private readonly limits: { maxMessageBytes: number; maxRecordsPerBatch: number; maxFetchBytes: number };
  private ops = new OpTable();
  private patternSubscribe: RequestHandler | null = null;
  private producerGuard: ProducerGuard | null = null;
  private controlChain: ((request: ControlInterceptorRequest) => void) | null = null;
  private readonly interceptors: ControlInterceptor[] = [];
  private readonly guards: ControlGuard[] = [];
  private readonly closeListeners: Array<(session: Session) => void> = [];
  private readonly unsubscribeListeners: Array<(session: Session, subId: number) => void> = [];
  private readonly ports = new Map<Session, RecordingPort>();
  private readonly subscriptions = new Map<Session, Map<number, RecordedSubscription>>();
  private readonly logs = new Map<string, MemoryLog[]>();
  /** Reads parked at a partition's end (long poll), woken by an append or the close. */
  private readonly parked = new Map<MemoryLog, Set<() => void>>();
  private readonly router = new Router();
  private readonly index = new RecordIndex();
  private readonly features: Feature[] = [];
  private nextSession = 1;
  private closed = false;

  private readonly launcher: PartitionLauncher = {
    startPartitions: (topic, partitions) => {
      const logs = Array.from({ length: partitions }, () => new MemoryLog({ fsync: { mode: 'never' } }));
      this.logs.set(topic, logs);
      return Promise.resolve(logs.map((log, partition) => memoryPartitionRef(topic, partition, log)));
    },
    stopPartitions: (topic) => {
      for (const log of this.logs.get(topic) ?? []) log.destroy();
      this.logs.delete(topic);
      return Promise.resolve();
    },
  };

  constructor(opts: FakeFeatureHostOptions) {
    const fsync = opts.fsync ?? { mode: 'never' };
    this.topics = new TopicRegistry(opts.dataDir);
    this.offsets = new OffsetStore(opts.dataDir, fsync);
    this.context = { host: this, dataDir: opts.dataDir, fsync };
    this.limits = {
      maxMessageBytes: opts.maxMessageBytes ?? defaultGatewayConfig.maxMessageBytes,
      maxRecordsPerBatch: opts.maxRecordsPerBatch ?? defaultGatewayConfig.maxRecordsPerBatch,
      maxFetchBytes: opts.maxFetchBytes ?? defaultGatewayConfig.maxFetchBytes,
    };
  }

  // ------------------------------------------------------------------ the test's side

  /** Install a feature as the composition root does; close() (or closeInstalled()) closes it. */
  async install<F extends Feature>(installer: (ctx: FeatureContext) => F | Promise<F>): Promise<F> {
    const feature = await installer(this.context);
    this.features.push(feature);
    return feature;
  }

  /**
   * Close the installed features in reverse order, as a gateway restart does: the topics, their
   * logs and the offsets stay, and features installed again find them (and their own files).
   * Their ops and hooks are forgotten.
   */
  async closeInstalled(): Promise<void> {
    const features = this.features.splice(0);
    await closeFeatures(features);
    this.ops = new OpTable();
    this.patternSubscribe = null;
    this.producerGuard = null;
    this.interceptors.length = 0;
    this.guards.length = 0;
    this.controlChain = null;
    this.closeListeners.length = 0;
    this.unsubscribeListeners.length = 0;
  }

  /** Close the features, end parked reads, close the offset store and drop the logs. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.closeInstalled();
    this.closed = true;
    for (const waiters of this.parked.values()) for (const wake of [...waiters]) wake();
    this.offsets.close();
    for (const logs of this.logs.values()) for (const log of logs) log.destroy();
  }

  /**
   * A client's session; its port records every frame it is sent. Its principal is the open one of a
   * broker without authentication (allowed everything but internal topics), unless given.
   */
  openSession(principal: Principal = OPEN_PRINCIPAL, roles?: RoleTable): Session {
    const port = new RecordingPort();
    const session = new Session(this.nextSession++, port);
    session.principal = principal;
    session.grants = new Grants(principal, roles);
    this.ports.set(session, port);
    return session;
  }

  /** The client is gone (as BrokerCore.closeSession): its subscriptions end, the features are told. */
  closeSession(session: Session): void {
    if (session.closed) return;
    session.closed = true;
    this.subscriptions.delete(session);
    for (const l of this.closeListeners) l(session);
  }

  /** Every frame sent to `session` so far, in order. */
  framesOf(session: Session): Frame[] {
    return this.portOf(session).sent;
  }

  /**
   * A client's request, dispatched as the core dispatches a feature's op (a `subscribe` with a
   * `pattern` to the pattern handler): what the handler throws or rejects with is answered with an
   * `error` frame. Resolves once the handler settled.
   */
  async request(session: Session, frame: Frame): Promise<void> {
    const id = typeof frame.id === 'number' ? frame.id : undefined;
    const sub = id === undefined && typeof frame.sub === 'number' ? frame.sub : undefined;
    try {
      const op = String(frame.op);
      if (op === 'subscribe' && frame.pattern !== undefined && this.patternSubscribe) {
        await this.patternSubscribe(session, needId(id, op), frame);
        return;
      }
      const spec = this.ops.get(op);
      if (!spec) throw new WeirError(ErrorCode.UNKNOWN_OP, `unknown operation ${JSON.stringify(op)}`);
      if (spec.requestId === 'required') await spec.handler(session, needId(id, op), frame);
      else await spec.handler(session, id, frame);
    } catch (err) {
      this.sendError(session, id, err, sub);
    }
  }

  /** request(), then its answer (the `result` or `error` frame with its id). */
  async call(session: Session, frame: Frame & { id: number }, timeoutMs = 5_000): Promise<Frame> {
    await this.request(session, frame);
    return this.nextFrame(session, (f) => f.id === frame.id && (f.op === 'result' || f.op === 'error'), timeoutMs);
  }

  /** The first frame sent to `session` that `match`es (waiting up to timeoutMs for it). */
  async nextFrame(session: Session, match: (frame: Frame) => boolean, timeoutMs = 5_000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.framesOf(session).find(match);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no matching frame within ${timeoutMs} ms; sent: ${JSON.stringify(this.framesOf(session).map((f) => f.op))}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /**
   * A client's (non-idempotent) produce, as the core's produce op handles it: validated, passed
   * through the control interceptors when a record has `weir-` headers, else appended. Resolves
   * with the produce answer's parts; rejects with the error the client would get.
   */
  produce(session: Session, topicName: string, records: Uint8Array, partition?: number): Promise<Produced> {
    return new Promise((resolve, reject) => {
      const topic = this.topicNamed(topicName);
      const forced = partition === undefined ? undefined : partitionOf(topic, partition);
      this.scanBatch(records, this.index);
      if (this.index.controlCount > 0) for (const guard of this.guards) guard(session, topic, records, this.index);
      if (this.index.controlCount === 0 || this.controlChain === null) {
        resolve(this.write(topic, records, forced));
        return;
      }
      let error: WeirError | null = null;
      this.controlChain({
        topic, records, index: this.index, forced, session,
        outcome: {
          failed: (e) => (error ??= e),
          settled: (failed, parts, route) => (failed ? reject(error ?? new Error('failed')) : resolve(route ? { parts, route } : { parts })),
        },
      });
    });
  }

  /** Ask the producer guard (setProducerGuard) whether `session` may produce as `producerId`; throws its refusal. */
  checkProducer(session: Session, producerId: number, epoch?: number): void {
    if (!this.producerGuard) throw badRequest('producerId', `producer id ${producerId} was not handed out by init_producer on this broker`);
    this.producerGuard(session, producerId, epoch);
  }

  /** The subscriptions features opened for `session` (subscribeTopic), by id. */
  subscriptionsOf(session: Session): RecordedSubscription[] {
    return [...(this.subscriptions.get(session)?.values() ?? [])];
  }

  /** The client's `unsubscribe` op for subscription `subId`: ends it and tells onUnsubscribed listeners. */
  unsubscribe(session: Session, subId: number): boolean {
    if (!this.unsubscribeById(session, subId)) return false;
    for (const l of this.unsubscribeListeners) l(session, subId);
    return true;
  }

  /** Every message stored in a partition now, oldest first. */
  async messages(topic: string, partition: number): Promise<Message[]> {
    const t = this.topicNamed(topic);
    const out: Message[] = [];
    for (let offset = this.logOf(t, partition).logStartOffset; ; ) {
      const r = await this.read(t, partition, offset);
      if (r.count === 0) return out;
      out.push(...readMessages(topic, partition, r.records));
      offset = r.next;
    }
  }

  /** The MemoryLog of a partition (to put records or damage in it directly). */
  logOf(topic: Topic | string, partition: number): MemoryLog {
    const name = typeof topic === 'string' ? topic : topic.name;
    const log = this.logs.get(name)?.[partition];
    if (!log) throw new WeirError(ErrorCode.PARTITION_NOT_FOUND, `topic ${name} has no partition ${partition}`);
    return log;
  }

  // ------------------------------------------------------------------ FeatureHost

  registerOp(spec: OpSpec): void {
    this.ops.add(spec);
  }

  may(session: Session, action: Action, name: string): boolean {
    return session.grants !== null && session.grants.allows(action, name);
  }

  check(session: Session, action: Action, name: string): void {
    if (!this.may(session, action, name)) throw forbidden(action, name);
  }

  setPatternSubscribeHandler(handler: RequestHandler): void {
    if (this.patternSubscribe) throw new Error('a pattern subscribe handler is already set');
    this.patternSubscribe = handler;
  }

  setProducerGuard(guard: ProducerGuard): void {
    this.producerGuard = guard;
  }

  addControlInterceptor(interceptor: ControlInterceptor): void {
    if (this.interceptors.includes(interceptor)) throw new Error('this control interceptor was already added');
    this.interceptors.push(interceptor);
    // The end of the chain writes to the topic; what it throws goes back up the chain, as in the core.
    let chain = (req: ControlInterceptorRequest): void => {
      const { parts, route } = this.write(req.topic, req.records, req.forced);
      req.outcome.settled(false, parts, route);
    };
    for (let i = this.interceptors.length - 1; i >= 0; i--) {
      const link = this.interceptors[i]!;
      const next = chain;
      chain = (req) => link(req, next);
    }
    this.controlChain = chain;
  }

  addControlGuard(guard: ControlGuard): void {
    this.guards.push(guard);
  }

  onConnectionClosed(listener: (session: Session) => void): void {
    this.closeListeners.push(listener);
  }

  onUnsubscribed(listener: (session: Session, subId: number) => void): void {
    this.unsubscribeListeners.push(listener);
  }

  scanBatch(records: Uint8Array, index: RecordIndex, maxRecords = this.limits.maxRecordsPerBatch): void {
    scanProducedBatch(records, index, { maxMessageBytes: this.limits.maxMessageBytes, maxRecords: Math.min(maxRecords, this.limits.maxRecordsPerBatch) });
  }

  append(topic: Topic | string, records: Uint8Array, partition?: number): Promise<Produced> {
    return new Promise((resolve) => {
      const t = typeof topic === 'string' ? this.topicNamed(topic) : topic;
      if (partition !== undefined) partitionOf(t, partition);
      this.scanBatch(records, this.index);
      resolve(this.write(t, records, partition));
    });
  }

  async read(topic: Topic, partition: number, offset: number, options: ReadOptions = {}): Promise<ReadResult> {
    let result!: ReadResult;
    await this.readView(topic, partition, offset, options, (records, count, next, end) => {
      result = { records: records.slice(), count, next, end };
    });
    return result;
  }

  async readView(topic: Topic, partition: number, offset: number, options: ReadOptions, use: (records: Uint8Array, count: number, next: number, end: number) => void): Promise<void> {
    const log = this.logOf(topic, partition);
    const maxBytes = Math.min(options.maxBytes ?? this.limits.maxFetchBytes, this.limits.maxFetchBytes);
    const maxRecords = options.maxRecords ?? 10_000;
    this.checkRange(topic, partition, log, offset);
    if (offset === log.durableOffset && (options.maxWaitMs ?? 0) > 0) {
      await this.arrival(log, options.maxWaitMs!); // long poll: answered when data arrives or at the deadline
      this.checkRange(topic, partition, log, offset);
    }
    const end = log.durableOffset;
    if (offset >= end || maxRecords === 0) {
      use(EMPTY, 0, offset, end);
      return;
    }
    const r = log.read(offset, maxBytes, maxRecords);
    if (r.lost !== null) {
      throw fetchFailure(topic, partition, ErrorCode.DATA_LOSS, `offsets ${r.lost.from} to ${r.lost.to - 1} of this partition are lost to damage`, r.lost.from, r.lost.to);
    }
    use(r.records, r.count, r.nextOffset, end);
  }

  async ensureTopic(name: string, partitions: number, config?: TopicConfig, internal = false): Promise<Topic> {
    return this.topics.get(name) ?? (await this.topics.create(name, partitions, this.launcher, config, { internal })).topic;
  }

  resolveOffset(topic: Topic, partition: number, mode: FetchMode, position = 0): Promise<number> {
    return new Promise((resolve) => {
      const log = this.logOf(topic, partition);
      if (mode === FetchMode.EARLIEST) resolve(log.logStartOffset);
      else if (mode === FetchMode.LATEST) resolve(log.durableOffset);
      else if (mode === FetchMode.TIMESTAMP) resolve(log.offsetForTimestamp(position));
      else resolve(position);
    });
  }

  subscribeTopic(session: Session, topic: Topic, options: SubscribeOptions): number {
    const sub = session.nextSub++;
    let mine = this.subscriptions.get(session);
    if (!mine) this.subscriptions.set(session, (mine = new Map()));
    mine.set(sub, { sub, topic: topic.name, options });
    return sub;
  }

  unsubscribeById(session: Session, subId: number): boolean {
    return this.subscriptions.get(session)?.delete(subId) ?? false;
  }

  send(session: Session, frame: Frame): void {
    if (!session.closed) session.port.send(frame);
  }

  sendNow(session: Session, frame: Frame): void {
    if (!session.closed) session.port.sendNow(frame);
  }

  /** An `error` frame as the core sends it: a code not in the wire registry, or no WeirError, is INTERNAL. */
  sendError(session: Session, id: number | undefined, err: unknown, sub?: number): void {
    if (session.closed) return;
    const e = WeirError.isWeirError(err) && WIRE_CODES.has(err.code) ? err : new WeirError(ErrorCode.INTERNAL, `internal error: ${(err as Error)?.message ?? String(err)}`);
    const frame: Frame = { op: 'error', code: e.code, message: e.message, retryable: e.retryable || RETRYABLE.has(e.code) };
    if (id !== undefined) frame.id = id;
    if (sub !== undefined) frame.sub = sub;
    if (e.details !== undefined) frame.details = e.details;
    session.port.send(frame);
  }

  // ------------------------------------------------------------------ internals

  private portOf(session: Session): RecordingPort {
    const port = this.ports.get(session);
    if (!port) throw new Error(`session ${session.id} was not opened by this host`);
    return port;
  }

  private topicNamed(name: string): Topic {
    const t = this.topics.get(name);
    if (!t) throw new WeirError(ErrorCode.TOPIC_NOT_FOUND, `topic ${name} does not exist`);
    return t;
  }

  /** Append the batch indexed in this.index to the partitions its records route to (as ProducePath.write). */
  private write(topic: Topic, records: Uint8Array, forced: number | undefined): Produced {
    const index = this.index;
    if (index.controlCount > 0 && !topic.hasControlRecords) this.topics.markControlRecords(topic);
    const sticky = topic.nextSticky;
    const route = this.router.routeBatch(records, index, topic.partitions, sticky, forced);
    if (forced === undefined && route.counts[sticky]! > 0) topic.nextSticky = (sticky + 1) % topic.partitions;
    const parts: ProducePart[] = [];
    for (let t = 0; t < route.touchedCount; t++) {
      const p = route.touched[t]!;
      const run = new Uint8Array(route.bytes[p]!);
      let at = 0;
      for (let i = route.head[p]!; i >= 0; i = route.nextSame[i]!) {
        run.set(records.subarray(index.start[i]!, index.start[i]! + index.size[i]!), at);
        at += index.size[i]!;
      }
      const log = this.logOf(topic, p);
      const { baseOffset } = log.append(run, 0, at, route.counts[p]!);
      log.flush();
      parts.push([p, baseOffset, route.counts[p]!]);
      for (const wake of [...(this.parked.get(log) ?? [])]) wake();
    }
    if (route.touchedCount < 2) return { parts };
    const n = index.count;
    return { parts, route: new Uint8Array(route.partitionOf.slice(0, n).buffer, 0, n * 2) };
  }

  /** OFFSET_OUT_OF_RANGE (with the log's [start, end]) outside [logStartOffset, durableOffset]. */
  private checkRange(topic: Topic, partition: number, log: MemoryLog, offset: number): void {
    const start = log.logStartOffset;
    const end = log.durableOffset;
    if (offset < start || offset > end) {
      throw fetchFailure(topic, partition, ErrorCode.OFFSET_OUT_OF_RANGE, `offset ${offset} is outside the log [${start}, ${end}]`, start, end);
    }
  }

  /** Resolves at the next append to `log`, after `ms`, or at close. */
  private arrival(log: MemoryLog, ms: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    let waiters = this.parked.get(log);
    if (!waiters) this.parked.set(log, (waiters = new Set()));
    const parked = waiters;
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        parked.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      parked.add(wake);
    });
  }
}

/** A real PartitionRef whose actor is a MemoryLog (describe() answers from it; it has no rings). */
function memoryPartitionRef(topic: string, partition: number, log: MemoryLog): PartitionRef {
  const config: PartitionActorConfig = {
    topic, partition, dir: '', ringBytes: 1 << 16, maxQueuedBytes: 0,
    log: { segmentBytes: 1 << 30, indexIntervalBytes: 4096, fsync: { mode: 'never' } },
  };
  return new PartitionRef(config, new MemoryLogRuntime(log), 0, null, slotReady(log));
}

/** The ActorRuntime of a MemoryLog partition: the fake host appends to and reads the log itself. */
class MemoryLogRuntime implements ActorRuntime {
  readonly worker = null;
  readonly deliversOutput = true;
  constructor(private readonly log: MemoryLog) {}
  inputPublished(): void {}
  describe(): Promise<{ start: number; end: number }> {
    return Promise.resolve({ start: this.log.logStartOffset, end: this.log.durableOffset });
  }
  crash(): void {
    throw new Error('a fake host partition has no actor to crash');
  }
  onExit(): void {}
  attachRings(): void {
    throw new Error('a fake host partition has no rings: append and read through the FakeFeatureHost');
  }
  resources(): PartitionResources {
    const held = this.log.heldResources();
    return { host: 'gateway', ringBytes: 0, bufferBytes: held.bytes, fds: held.fds };
  }
}
