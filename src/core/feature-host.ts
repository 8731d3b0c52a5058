/**
 * The broker's services as the messaging features (src/features/) see them: the interface they are
 * written against, never a front door or the core's class. The composition root (src/broker.ts)
 * installs the features with a host that implements it.
 */
import type { WeirError } from '../common/errors.js';
import type { FsyncPolicy } from '../common/fsync.js';
import type { TopicConfig } from '../protocol/frames.js';
import type { RecordIndex } from '../protocol/record.js';
import type { FetchMode } from '../partition/protocol.js';
import type { Topic, TopicRegistry } from './topics/registry.js';
import type { GroupCoordinator } from './groups/coordinator.js';
import type { OffsetStore } from './groups/offset-store.js';
import type { Frame, ProducePart, Session } from './session.js';
import type { SubscribeOptions } from './validate.js';
import type { OpSpec, RequestHandler } from './ops.js';
import type { Action } from '../security/permissions.js';

export type { Frame, ProducePart, Session } from './session.js';
export type { SubscribeOptions } from './validate.js';
export type { Access, OpAccess, OpHandler, OpSpec, RequestHandler } from './ops.js';
export type { Action } from '../security/permissions.js';

/** How a produce ends: one error (at most, possibly before every chunk settled), then `settled` once. */
export interface ProduceOutcome {
  /** The first failure; called at most once, as soon as it happens. */
  failed(error: WeirError): void;
  /** Every chunk settled. `error` is true when `failed` was called; else the parts are complete. */
  settled(error: boolean, parts: ProducePart[], route: Uint8Array | undefined): void;
}

/** What a control interceptor gets: a scanned batch (`index`) bound for `topic`. */
export interface ControlInterceptorRequest {
  topic: Topic;
  records: Uint8Array;
  index: RecordIndex;
  forced: number | undefined;
  outcome: ProduceOutcome;
  session: Session;
}
/**
 * A link of the control-interceptor chain (FeatureHost.addControlInterceptor): handle the request
 * (answer it through request.outcome) or pass it, possibly rewritten, to `next` (the next link, or
 * the write to the topic at the end of the chain). Call `next` at most once.
 */
export type ControlInterceptor = (request: ControlInterceptorRequest, next: (request: ControlInterceptorRequest) => void) => void;

/**
 * May `session` produce this batch to `topic` (its records with `weir-` headers, as `index` scanned
 * them)? Throws the refusal. Asked of idempotent batches too, which no interceptor sees.
 */
export type ControlGuard = (session: Session, topic: Topic, records: Uint8Array, index: RecordIndex) => void;

/** Exactly-once append: may `session` send a batch under `producerId` (at `epoch`, if named)? Throws if not. */
export type ProducerGuard = (session: Session, producerId: number, epoch: number | undefined) => void;

/** Limits of a read from a partition (read / readView); the broker's defaults when absent. */
export interface ReadOptions {
  maxBytes?: number;
  maxRecords?: number;
  maxWaitMs?: number;
}

/** A batch read from a partition. */
export interface ReadResult {
  records: Uint8Array;
  count: number;
  next: number;
  end: number;
}

export interface FeatureHost {
  readonly topics: TopicRegistry;
  /** Consumer groups and their committed offsets (replay resets them). */
  readonly groups: GroupCoordinator;
  readonly offsets: OffsetStore;

  /** Add an op to the core's op table (a feature's protocol). Built-in ops cannot be replaced. */
  registerOp(spec: OpSpec): void;
  /**
   * May `session` do `action` on the resource `name` (security/permissions.ts)? For what a feature
   * decides beyond its ops' declared access: which topics a pattern subscription covers, which
   * entries a listing shows. Per request or per subscription, never per message.
   */
  may(session: Session, action: Action, name: string): boolean;
  /** `may`, or throws FORBIDDEN (counted and audited as the core's own refusals). */
  check(session: Session, action: Action, name: string): void;
  /** Handler of `subscribe` frames that carry `pattern` instead of `topic` (one feature owns them). */
  setPatternSubscribeHandler(handler: RequestHandler): void;
  /** Exactly-once append: who may use a producer id (refuses a foreign use by throwing). */
  setProducerGuard(guard: ProducerGuard): void;
  /** Take part in produce requests whose batch has records with `weir-` headers (a chain, in the order added). */
  addControlInterceptor(interceptor: ControlInterceptor): void;
  /** Check every produce request whose batch has records with `weir-` headers, before any interceptor and before anything is written. */
  addControlGuard(guard: ControlGuard): void;
  /** Called once per session when it closes (after its subscriptions were dropped). */
  onConnectionClosed(listener: (session: Session) => void): void;
  /** The client ended subscription `subId` with the `unsubscribe` op. */
  onUnsubscribed(listener: (session: Session, subId: number) => void): void;

  /** Validate and index a client's record batch with the broker's limits (MESSAGE_TOO_LARGE, BAD_BATCH). */
  scanBatch(records: Uint8Array, index: RecordIndex, maxRecords?: number): void;
  /** Append a batch to a topic from inside the broker: the same validation, routing and acknowledgement as a client's produce. */
  append(topic: Topic | string, records: Uint8Array, partition?: number): Promise<{ parts: ProducePart[]; route?: Uint8Array }>;
  /** Read stored records of one partition from `offset`; `records` is a copy the caller owns. */
  read(topic: Topic, partition: number, offset: number, options?: ReadOptions): Promise<ReadResult>;
  /** read() without the copy: `use` gets a view valid only during the call. */
  readView(topic: Topic, partition: number, offset: number, options: ReadOptions, use: (records: Uint8Array, count: number, next: number, end: number) => void): Promise<void>;
  /** Create (or find) a topic from inside the broker; `internal` allows the reserved `__` prefix. */
  ensureTopic(name: string, partitions: number, config?: TopicConfig, internal?: boolean): Promise<Topic>;
  /** The offset a partition resolves `mode` to (EARLIEST, LATEST, or TIMESTAMP with `position` in ms). */
  resolveOffset(topic: Topic, partition: number, mode: FetchMode, position?: number, abandon?: () => boolean): Promise<number>;

  /** Subscribe `session` to `topic` as the `subscribe` op does, without answering; returns the subscription's id. */
  subscribeTopic(session: Session, topic: Topic, options: SubscribeOptions): number;
  /** End subscription `subId` of `session` (false when it does not exist). */
  unsubscribeById(session: Session, subId: number): boolean;

  /** Send a frame to a session with the rest of this turn's frames. */
  send(session: Session, frame: Frame): void;
  /** Send at once (after what the session already has queued): for frames a client waits on to make progress. */
  sendNow(session: Session, frame: Frame): void;
  /** Send an `error` frame (for request `id`, or subscription `sub`). */
  sendError(session: Session, id: number | undefined, err: unknown, sub?: number): void;
}

/** What a feature is installed with. */
export interface FeatureContext {
  host: FeatureHost;
  /** The broker's data directory; a feature keeps its files under `<dataDir>/<feature>/`. */
  dataDir: string;
  fsync: FsyncPolicy;
}

export interface Feature {
  readonly name: string;
  /** Stop timers, flush and close files. The front doors have stopped serving by then. */
  close(): Promise<void> | void;
}

export type FeatureInstaller = (ctx: FeatureContext) => Feature | Promise<Feature>;

/** Install `installers` in order; if one fails, the ones installed are closed again and the error thrown. */
export async function installFeatures(installers: readonly FeatureInstaller[], ctx: FeatureContext): Promise<Feature[]> {
  const features: Feature[] = [];
  try {
    for (const install of installers) features.push(await install(ctx));
  } catch (err) {
    await closeFeatures(features).catch(() => undefined);
    throw err;
  }
  return features;
}

/** Close in reverse install order. */
export async function closeFeatures(features: readonly Feature[]): Promise<void> {
  for (const f of [...features].reverse()) await f.close();
}
