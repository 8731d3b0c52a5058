/**
 * The transport-free broker core: the operations of the broker (topics, produce, fetch, subscribe
 * with cursors and credit, groups and offsets) and the services the messaging features use
 * (FeatureHost), callable by any front door with a Session. It knows nothing of sockets or of how
 * frames are encoded: a front door decodes a client's frames, hands them to `dispatch`, and carries
 * what the core sends through each session's port.
 *
 *   front door ──dispatch(session, frame)──► op table ──► ProducePath / Reads / Subscriptions ──► PartitionRef
 *              ◄──────── SessionPort (send, deliver, answerProduce) ◄─────────────────────────┘
 *
 * Security lives here too, for every front door: `hello` authenticates a session (its principal and
 * grants), and `dispatch` checks, per request and before any handler, the permissions the op's
 * entry declares (FORBIDDEN, counted and audited). Without authentication configured every session
 * is the open principal, allowed everything but the internal topics.
 */
import { WeirError, needId } from '../common/errors.js';
import { ErrorCode, RETRYABLE } from '../protocol/codes.js';
import { INTERNAL_TOPIC_PREFIX, PROTOCOL_VERSION, topicNameProblem, type TopicConfig } from '../protocol/frames.js';
import {
  ACTIONS, ConnectionLimits, Grants, OPEN_PRINCIPAL, forbidden, quotaExceeded, resourceLabel, tooManyConnections,
  type Action, type AuditEvent, type Authenticator, type ByteRateQuotas, type Principal, type Tenants,
} from '../security/index.js';
import { dropExpired } from '../protocol/expiry-filter.js';
import type { RecordIndex } from '../protocol/record.js';
import { FetchMode } from '../partition/protocol.js';
import { topicConfigToWire } from './topics/config.js';
import type { PartitionLauncher, Topic, TopicRegistry } from './topics/registry.js';
import type { GroupCoordinator } from './groups/coordinator.js';
import type { OffsetStore } from './groups/offset-store.js';
import { FlowControl } from './flow-control.js';
import { ProducePath } from './produce.js';
import { Reads, fetchFailure, unavailable } from './reads.js';
import { Subscriptions } from './subscriptions.js';
import { Turn } from './turn.js';
import { Session, type Frame, type ProducePart, type SessionLimits, type SessionPort } from './session.js';
import { badRequest, nonNegInt, partitionOf, subscribeOptionsOf, topicOf, type SubscribeOptions } from './validate.js';
import type { ControlGuard, ControlInterceptor, FeatureHost, ProducerGuard, ReadOptions, ReadResult } from './feature-host.js';
import { OpTable, resourceOf, type Access, type OpSpec, type RequestHandler } from './ops.js';
import { topicNotFound } from './topics/registry.js';

/** The codes a client may be sent (the wire registry). */
const WIRE_CODES: ReadonlySet<string> = new Set<string>(Object.values(ErrorCode));

/** The core's limits (the gateway's config carries them). */
export interface CoreConfig {
  /** Frames above this are refused by the front door (told to clients in hello). */
  maxFrameBytes: number;
  /** Largest single record (header + key + value + headers). */
  maxMessageBytes: number;
  /** Unanswered produce bytes per session. */
  maxInFlightBytes: number;
  maxRecordsPerBatch: number;
  /** A session's bound on unsent bytes: deliveries stop above it, and `fetch` answers THROTTLED. */
  maxBufferedBytes: number;
  /** Close (1008, `SLOW_CONSUMER`) a session that stays over maxBufferedBytes this long. */
  slowConsumerCloseMs: number;
  /** Largest DATA answer a partition returns for one fetch. */
  maxFetchBytes: number;
  /** How long a subscription's fetch waits at the partition for new data. */
  longPollMs: number;
  /** Subscriptions per session (SessionLimits). */
  maxSubscriptionsPerConnection: number;
  /** Requests taken and not yet answered per session (SessionLimits). */
  maxInFlightRequestsPerConnection: number;
  /** Shown in hello: the fsync policy acknowledgements follow. */
  fsyncLabel: string;
}

export interface CoreDeps {
  topics: TopicRegistry;
  /** Starts the actors of a topic being created. */
  launcher: PartitionLauncher;
  groups: GroupCoordinator;
  offsets: OffsetStore;
  brokerName: string;
  /** Partition count for create_topic without one. */
  defaultPartitions: number;
  /** Authentication (hello's credentials → principal); null or absent: off, every session is the open principal. */
  auth?: Authenticator | null;
  /** Where authentication failures and denials are recorded (security/audit.ts AuditLog). */
  audit?: AuditSink;
  /** Produce and consume byte rates per principal; null or absent: none. */
  quotas?: ByteRateQuotas | null;
  /** Tenants' topic counts and storage; null or absent: none. */
  tenants?: Tenants | null;
  /** Live connections of one authenticated principal (default 1000). */
  maxConnectionsPerPrincipal?: number;
}

/** What the core writes audit events to. */
export interface AuditSink {
  write(event: AuditEvent): void;
}

/** The core's security counters (for an operator's metrics). */
export interface SecurityStats {
  /** Requests refused FORBIDDEN. */
  forbidden: number;
  /** hellos whose credentials were refused (wrong, malformed, expired, or rate-limited). */
  authFailures: number;
  /** Connections closed because their token expired. */
  tokenExpiredCloses: number;
}

/** How often buckets of principals back within their rates are forgotten. */
const QUOTA_SWEEP_MS = 10_000;

/** A timer's longest delay (setTimeout fires at once beyond it). */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class BrokerCore implements FeatureHost {
  /** Ends every turn: partition actors written to are flushed, then the front doors send. */
  readonly turn = new Turn();
  private readonly reads: Reads;
  private readonly produces: ProducePath;
  private readonly flow: FlowControl;
  private readonly subscriptions: Subscriptions;
  private readonly sessions = new Set<Session>();
  private readonly sessionLimits: SessionLimits;
  private nextSession = 1;
  private readonly table = new OpTable();
  private readonly closeListeners: Array<(session: Session) => void> = [];
  private patternSubscribe: RequestHandler | null = null;
  private closing = false;
  private readonly auth: Authenticator | null;
  /** Every session's grants while authentication is off (one cache for all). */
  private readonly openGrants = new Grants(OPEN_PRINCIPAL);
  private readonly counters: SecurityStats = { forbidden: 0, authFailures: 0, tokenExpiredCloses: 0 };
  private readonly quotas: ByteRateQuotas | null;
  private lastQuotaSweepMs = 0;
  private readonly tenants: Tenants | null;
  /**
   * A tenant's storage usage is what the shell last measured on disk (`beginTenantMeasurement`)
   * plus what clients appended since the measurement began (`pending`: before the one in progress
   * began, `appended`: after). Bytes appended while the disk is read may count twice until the
   * next measurement: it errs towards refusing.
   */
  private tenantMeasured = new Map<string, number>();
  private tenantPending = new Map<string, number>();
  private tenantAppended = new Map<string, number>();
  private readonly principalConnections: ConnectionLimits;

  constructor(
    private readonly config: CoreConfig,
    private readonly deps: CoreDeps,
  ) {
    this.sessionLimits = { maxSubscriptions: config.maxSubscriptionsPerConnection, maxInFlightRequests: config.maxInFlightRequestsPerConnection };
    this.reads = new Reads(config, this.turn);
    this.flow = new FlowControl(config);
    this.produces = new ProducePath(config, deps.topics, this.turn, (session, id, error) => this.sendError(session, id, error));
    this.subscriptions = new Subscriptions(config, deps.groups, deps.offsets, this.turn, this.reads, this.flow, this.sendError);
    for (const spec of this.builtInOps()) this.table.add(spec);
    this.auth = deps.auth ?? null;
    this.quotas = deps.quotas ?? null;
    this.tenants = deps.tenants ?? null;
    this.principalConnections = new ConnectionLimits(deps.maxConnectionsPerPrincipal === undefined ? {} : { maxPerPrincipal: deps.maxConnectionsPerPrincipal });
    if (this.quotas !== null || this.tenants !== null) this.produces.setAdmission((session, topic, bytes) => this.admitProduce(session, topic.name, bytes));
    if (this.quotas !== null) this.subscriptions.setConsumeQuota((session, bytes) => this.chargeQuota('consume', session, bytes));
  }

  /** A client's batch: refused beyond its tenant's storage, charged to its principal's produce rate (the answer's hold). */
  private admitProduce(session: Session, topic: string, bytes: number): number {
    const tenant = this.tenants?.ofTopic(topic);
    if (tenant?.maxStorageBytes !== undefined) {
      const name = tenant.name;
      const appended = this.tenantAppended.get(name) ?? 0;
      const used = (this.tenantMeasured.get(name) ?? 0) + (this.tenantPending.get(name) ?? 0) + appended;
      const refusal = this.tenants!.checkStorage(topic, used, bytes);
      if (refusal !== null) throw quotaExceeded(refusal);
      this.tenantAppended.set(name, appended + bytes);
    }
    return this.chargeQuota('produce', session, bytes);
  }

  /**
   * The shell starts reading the tenants' topics' sizes on disk: call the answer with what it found
   * (bytes per tenant name). Appends from now on count on top of it; one measurement at a time.
   */
  beginTenantMeasurement(): (measured: ReadonlyMap<string, number>) => void {
    for (const [name, bytes] of this.tenantAppended) this.tenantPending.set(name, (this.tenantPending.get(name) ?? 0) + bytes);
    this.tenantAppended = new Map();
    return (measured) => {
      this.tenantMeasured = new Map(measured);
      this.tenantPending = new Map();
    };
  }

  /** Charges `bytes` to the session's principal; the milliseconds to hold it back. */
  private chargeQuota(direction: 'produce' | 'consume', session: Session, bytes: number): number {
    const quotas = this.quotas;
    if (quotas === null || session.principal === null) return 0;
    const now = Date.now();
    if (now - this.lastQuotaSweepMs >= QUOTA_SWEEP_MS) {
      this.lastQuotaSweepMs = now;
      quotas.sweep(now);
    }
    return quotas.charge(direction, session.principal.name, bytes, now, session.principal.roles);
  }

  /** Whether sessions must authenticate with `hello` (a users file, token keys or a shared token is configured). */
  get authenticationRequired(): boolean {
    return this.auth !== null;
  }

  /** Counters of denials, failed authentications and expired-token closes since the core started. */
  securityStats(): SecurityStats {
    return { ...this.counters };
  }

  // ------------------------------------------------------------------ sessions (front doors)

  /** A client connected to a front door. */
  openSession(port: SessionPort): Session {
    const session = new Session(this.nextSession++, port, this.sessionLimits);
    if (this.auth === null) {
      session.principal = OPEN_PRINCIPAL;
      session.grants = this.openGrants;
    }
    this.sessions.add(session);
    return session;
  }

  /** The client is gone: its subscriptions end, the features forget it. */
  closeSession(session: Session): void {
    if (session.closed) return;
    session.closed = true;
    if (session.expiryTimer !== null) clearTimeout(session.expiryTimer);
    session.expiryTimer = null;
    this.sessions.delete(session);
    if (session.countedPrincipal !== null) this.principalConnections.releasePrincipal(session.countedPrincipal);
    session.countedPrincipal = null;
    this.flow.forget(session);
    this.subscriptions.sessionClosed(session);
    for (const l of this.closeListeners) l(session);
  }

  /** The session's client took what was buffered (a front door's drain): deliveries resume under the bound. */
  drained(session: Session): void {
    if (this.flow.drained(session)) this.subscriptions.resume(session);
  }

  /** Stop taking requests that change data (SHUTTING_DOWN); sessions stay until their front door closes them. */
  stopAccepting(): void {
    this.closing = true;
    this.flow.close();
    this.produces.releaseHeld();
  }

  get stopping(): boolean {
    return this.closing;
  }

  /** Produce bytes in flight over every session (a front door waits for them at close). */
  inFlightProduceBytes(): number {
    let n = 0;
    for (const s of this.sessions) n += s.inFlightBytes;
    return n;
  }

  /**
   * Handle one decoded request of `session`. Throws (or returns a promise that rejects) with the
   * error to answer; the front door answers it with sendError.
   */
  dispatch(session: Session, f: Frame, id: number | undefined): Promise<void> | void {
    const op = f.op as string;
    const spec = this.table.get(op);
    const grants = session.grants;
    if (grants === null && spec?.access !== 'none') {
      throw new WeirError(ErrorCode.UNAUTHORIZED, 'this broker requires authentication: send hello with "token", or "user" and "password", first', { details: { reason: 'missing' } });
    }
    if (spec === undefined) throw new WeirError(ErrorCode.UNKNOWN_OP, `unknown operation ${JSON.stringify(op.slice(0, 40))}; see docs/protocol.md`);
    if (spec.requestId === 'required') {
      const requestId = needId(id, op);
      if (this.closing && spec.whenStopping === 'refuse') throw shuttingDown();
      const audited = this.authorize(session, grants!, spec, f);
      // hello and ping are answered at once: a session at its limit can still say who it is and ping.
      if (op !== 'hello' && op !== 'ping') session.checkInFlightRequests();
      if (audited !== undefined) return countInFlight(session, this.audited(session, audited, () => spec.handler(session, requestId, f)));
      return countInFlight(session, spec.handler(session, requestId, f));
    }
    if (this.closing && spec.whenStopping === 'refuse') throw shuttingDown();
    const audited = this.authorize(session, grants!, spec, f);
    if (audited !== undefined) return this.audited(session, audited, () => spec.handler(session, id, f));
    return spec.handler(session, id, f);
  }

  /** Runs `handle`, then audits `event` with its outcome. */
  private audited(session: Session, event: AdministrativeEvent, handle: () => Promise<void> | void): Promise<void> | void {
    const failed = (err: unknown): never => {
      this.audit(session, { ...event, outcome: 'failed', code: (WeirError.isWeirError(err) ? err.code : ErrorCode.INTERNAL) as ErrorCode });
      throw err;
    };
    let result: Promise<void> | void;
    try {
      result = handle();
    } catch (err) {
      return failed(err);
    }
    if (result === undefined) {
      this.audit(session, { ...event, outcome: 'ok' });
      return result;
    }
    return result.then(() => this.audit(session, { ...event, outcome: 'ok' }), failed);
  }

  /**
   * Every permission the op's access lists, on the resources the request names; throws the first
   * refusal. Returns the audit event of an administrative request when an audit log is configured.
   */
  private authorize(session: Session, grants: Grants, spec: OpSpec, f: Frame): AdministrativeEvent | undefined {
    const access = spec.access;
    if (typeof access !== 'object') return undefined;
    for (const a of access) {
      const name = resourceOf(a, session, f);
      if (name === undefined) {
        if (a.ifAbsent === 'deny' && this.auth !== null) this.deny(session, a.action, '');
        continue;
      }
      if (!grants.allows(a.action, name)) this.deny(session, a.action, name);
    }
    return this.deps.audit === undefined ? undefined : administrativeEvent(access, session, f);
  }

  /**
   * Refuse `action` on `name`: FORBIDDEN, counted and audited. An internal topic is not a permission
   * matter (no principal reaches one): to a client it does not exist, and is not a name it may create.
   */
  private deny(session: Session, action: Action, name: string): never {
    if (ACTIONS[action] === 'topic' && name.startsWith(INTERNAL_TOPIC_PREFIX)) {
      if (action === 'create') throw new WeirError(ErrorCode.INVALID_TOPIC_NAME, `${topicNameProblem(name)}: ${JSON.stringify(name.slice(0, 60))}`);
      throw topicNotFound(name);
    }
    const error = forbidden(action, name); // counted as it is answered (sendError)
    this.audit(session, { action, resource: resourceLabel(ACTIONS[action], name), outcome: 'denied', code: ErrorCode.FORBIDDEN });
    throw error;
  }

  private audit(session: Session, event: Omit<AuditEvent, 'principal' | 'address'>): void {
    if (this.deps.audit === undefined) return;
    this.deps.audit.write({ principal: session.principal?.name ?? null, address: session.port.remoteAddress(), ...event });
  }

  /** The op table, built-in and feature ops alike (tests iterate over it). */
  ops(): OpSpec[] {
    return this.table.list();
  }

  /** Answer a failed request (or a subscription's trouble, `sub`) with an `error` frame of a wire code. */
  readonly sendError = (session: Session, id: number | undefined, err: unknown, sub?: number): void => {
    if (session.closed) return;
    if (WeirError.isWeirError(err) && err.code === ErrorCode.FORBIDDEN) this.counters.forbidden++;
    session.port.send(this.errorFrame(err, id, sub));
  };

  /** The `error` frame of a failure: a code of the wire registry, else INTERNAL (a bug, logged). */
  private errorFrame(err: unknown, id: number | undefined, sub: number | undefined): Frame {
    let e: WeirError;
    if (WeirError.isWeirError(err) && WIRE_CODES.has(err.code)) e = err;
    else if (WeirError.isWeirError(err)) {
      // A module's own code (a supervisor's, a log's…) that nothing mapped to a wire code: a bug.
      console.error('weir: unmapped error code', err);
      e = new WeirError(ErrorCode.INTERNAL, `internal error: ${err.code}: ${err.message}`);
    } else {
      // A bug, not the client's fault: say so, keep serving.
      console.error('weir: internal error', err);
      e = new WeirError(ErrorCode.INTERNAL, `internal error: ${(err as Error)?.message ?? String(err)}`);
    }
    const frame: Frame = { op: 'error', code: e.code, message: e.message, retryable: e.retryable || RETRYABLE.has(e.code) };
    if (id !== undefined) frame.id = id;
    if (sub !== undefined) frame.sub = sub;
    if (e.details !== undefined) frame.details = e.details;
    return frame;
  }

  /** Every partition's availability, and why each that is down is down (an HTTP front door's /healthz). */
  health(): { ok: boolean; status: 'ok' | 'stopping' | 'degraded'; partitions: { up: number; total: number }; unavailable: ReturnType<TopicRegistry['unavailable']> } {
    let up = 0;
    let total = 0;
    for (const t of this.deps.topics.all()) {
      for (const a of t.actors) {
        total++;
        if (a.available) up++;
      }
    }
    const ok = up === total && !this.closing;
    return { ok, status: ok ? 'ok' : this.closing ? 'stopping' : 'degraded', partitions: { up, total }, unavailable: up === total ? [] : this.deps.topics.unavailable() };
  }

  // ------------------------------------------------------------------ FeatureHost

  get topics(): TopicRegistry {
    return this.deps.topics;
  }
  get groups(): GroupCoordinator {
    return this.deps.groups;
  }
  get offsets(): OffsetStore {
    return this.deps.offsets;
  }

  registerOp(spec: OpSpec): void {
    this.table.add(spec);
  }

  may(session: Session, action: Action, name: string): boolean {
    return session.grants !== null && session.grants.allows(action, name);
  }

  check(session: Session, action: Action, name: string): void {
    if (!this.may(session, action, name)) this.deny(session, action, name);
  }

  setPatternSubscribeHandler(handler: RequestHandler): void {
    // One feature owns wildcard subscriptions: a second handler would silently steal them.
    if (this.patternSubscribe) throw new Error('a pattern subscribe handler is already set');
    this.patternSubscribe = handler;
  }

  setProducerGuard(guard: ProducerGuard): void {
    this.produces.setProducerGuard(guard);
  }

  addControlInterceptor(interceptor: ControlInterceptor): void {
    this.produces.addControlInterceptor(interceptor);
  }

  addControlGuard(guard: ControlGuard): void {
    this.produces.addControlGuard(guard);
  }

  onConnectionClosed(listener: (session: Session) => void): void {
    this.closeListeners.push(listener);
  }

  onUnsubscribed(listener: (session: Session, subId: number) => void): void {
    this.subscriptions.onUnsubscribed(listener);
  }

  scanBatch(records: Uint8Array, index: RecordIndex, maxRecords?: number): void {
    this.produces.scanBatch(records, index, maxRecords);
  }

  append(topic: Topic | string, records: Uint8Array, partition?: number): Promise<{ parts: ProducePart[]; route?: Uint8Array }> {
    return this.produces.append(topic, records, partition);
  }

  read(topic: Topic, partition: number, offset: number, options?: ReadOptions): Promise<ReadResult> {
    return this.reads.read(topic, partition, offset, options);
  }

  readView(topic: Topic, partition: number, offset: number, options: ReadOptions, use: (records: Uint8Array, count: number, next: number, end: number) => void): Promise<void> {
    return this.reads.readView(topic, partition, offset, options, use);
  }

  async ensureTopic(name: string, partitions: number, config?: TopicConfig, internal = false): Promise<Topic> {
    const existing = this.deps.topics.get(name);
    if (existing) return existing;
    return (await this.deps.topics.create(name, partitions, this.deps.launcher, config, { internal })).topic;
  }

  resolveOffset(topic: Topic, partition: number, mode: FetchMode, position?: number, abandon?: () => boolean): Promise<number> {
    return this.reads.resolveOffset(topic, partition, mode, position, abandon);
  }

  subscribeTopic(session: Session, topic: Topic, options: SubscribeOptions): number {
    return this.subscriptions.subscribeTopic(session, topic, options);
  }

  unsubscribeById(session: Session, subId: number): boolean {
    return this.subscriptions.unsubscribeById(session, subId);
  }

  send(session: Session, frame: Frame): void {
    if (!session.closed) session.port.send(frame);
  }

  sendNow(session: Session, frame: Frame): void {
    if (!session.closed) session.port.sendNow(frame);
  }

  // ------------------------------------------------------------------ built-in ops

  /** The core's own ops (docs/protocol.md, "Requests"); the features add theirs with registerOp. */
  private builtInOps(): OpSpec[] {
    const subs = this.subscriptions;
    const topics = this.deps.topics;
    return [
      { op: 'hello', requestId: 'required', whenStopping: 'serve', access: 'none', handler: (s, id, f) => this.hello(s, id, f) },
      { op: 'ping', requestId: 'required', whenStopping: 'serve', access: 'session', handler: (s, id) => s.port.send({ op: 'result', id }) },
      { op: 'produce', requestId: 'required', whenStopping: 'refuse', access: [{ action: 'produce', from: 'topic' }], handler: (s, id, f) => this.produces.produce(s, id, f) },
      { op: 'fetch', requestId: 'required', whenStopping: 'serve', access: [{ action: 'consume', from: 'topic' }], handler: (s, id, f) => this.fetch(s, id, f) },
      // A pattern subscription names no topic: the routing feature matches only topics the session may consume.
      { op: 'subscribe', requestId: 'required', whenStopping: 'serve', access: [{ action: 'consume', from: 'topic' }, { action: 'join', from: 'group' }], handler: (s, id, f) => this.subscribe(s, id, f) },
      { op: 'credit', requestId: 'optional', whenStopping: 'serve', access: 'session', handler: (s, _id, f) => subs.credit(s, f) },
      { op: 'commit', requestId: 'required', whenStopping: 'serve', access: [{ action: 'commit', from: (s, f) => subs.groupOf(s, f.sub) }], handler: (s, id, f) => subs.commit(s, id, f) },
      { op: 'revoked', requestId: 'optional', whenStopping: 'serve', access: 'session', handler: (s, _id, f) => subs.revoked(s, f) },
      { op: 'unsubscribe', requestId: 'required', whenStopping: 'serve', access: 'session', handler: (s, id, f) => subs.unsubscribe(s, id, f) },
      { op: 'create_topic', requestId: 'required', whenStopping: 'refuse', access: [{ action: 'create', from: 'topic' }], handler: (s, id, f) => this.createTopic(s, id, f) },
      { op: 'alter_topic', requestId: 'required', whenStopping: 'refuse', access: [{ action: 'alter', from: 'topic' }], handler: (s, id, f) => this.alterTopic(s, id, f) },
      // Lists only the topics the session may describe.
      { op: 'list_topics', requestId: 'required', whenStopping: 'serve', access: 'session', handler: (s, id) => s.port.send({ op: 'result', id, topics: topics.list().filter((t) => this.may(s, 'describe', t.topic)) }) },
      { op: 'describe_topic', requestId: 'required', whenStopping: 'serve', access: [{ action: 'describe', from: 'topic' }], handler: (s, id, f) => this.describeTopic(s, id, f) },
    ];
  }

  private async hello(session: Session, id: number, f: Frame): Promise<void> {
    const version = f.version;
    if (version !== PROTOCOL_VERSION) {
      throw new WeirError(ErrorCode.UNSUPPORTED_VERSION, `protocol version ${String(version)} is not supported; this broker speaks ${PROTOCOL_VERSION}`, { details: { supported: [PROTOCOL_VERSION] } });
    }
    if (this.auth !== null && (session.principal === null || f.token !== undefined || f.user !== undefined)) {
      await this.authenticate(this.auth, session, id, f);
      if (session.closed || session.principal === null) return;
    }
    session.helloDone = true;
    const c = this.config;
    session.port.send({
      op: 'result', id, version: PROTOCOL_VERSION, broker: this.deps.brokerName,
      maxFrameBytes: c.maxFrameBytes, maxMessageBytes: c.maxMessageBytes, maxInFlightBytes: c.maxInFlightBytes, fsync: c.fsyncLabel,
    });
  }

  /** hello's credentials → the session's principal and grants, and its close when the credential expires. */
  private async authenticate(auth: Authenticator, session: Session, id: number, f: Frame): Promise<void> {
    // One principal per connection: its subscriptions and inboxes were opened under it.
    if (session.principal !== null) throw badRequest('token', `this connection is authenticated as ${JSON.stringify(session.principal.name)}: open a new connection to authenticate again`);
    if (session.authenticating) throw badRequest('token', 'another hello of this connection is authenticating');
    session.authenticating = true;
    let principal: Principal;
    try {
      principal = await auth.authenticate({ token: f.token, user: f.user, password: f.password }, session.port.remoteAddress());
    } catch (err) {
      if (WeirError.isWeirError(err)) {
        const reason = (err.details as { reason?: unknown } | undefined)?.reason;
        if (reason !== 'missing') this.counters.authFailures++;
        this.audit(session, { action: 'authenticate', outcome: 'failed', code: err.code as ErrorCode, details: { reason: typeof reason === 'string' ? reason : err.code } });
      }
      throw err;
    } finally {
      session.authenticating = false;
    }
    if (session.closed) return;
    const refusal = this.principalConnections.admitPrincipal(principal.name);
    if (refusal !== null) {
      // Said as hello's answer, then the connection closes: it is not one of the principal's.
      this.audit(session, { action: 'authenticate', outcome: 'failed', code: ErrorCode.TOO_MANY_CONNECTIONS, details: { reason: 'too-many-connections' } });
      session.port.sendNow(this.errorFrame(tooManyConnections(refusal), id, undefined));
      session.port.close(1008, `${ErrorCode.TOO_MANY_CONNECTIONS}: at most ${refusal.limit} connections per principal`);
      return;
    }
    session.countedPrincipal = principal.name;
    session.principal = principal;
    session.grants = auth.grantsOf(principal);
    this.audit(session, { action: 'authenticate', outcome: 'ok', details: { source: principal.source } });
    const closesAt = auth.closesAt(principal);
    if (closesAt !== undefined) this.closeAtExpiry(session, closesAt);
  }

  /** At `at` (ms since the epoch), tell the client its token expired (TOKEN_EXPIRED) and close its connection. */
  private closeAtExpiry(session: Session, at: number): void {
    const ms = at - Date.now();
    session.expiryTimer = setTimeout(() => {
      session.expiryTimer = null;
      if (session.closed) return;
      if (Date.now() < at) {
        this.closeAtExpiry(session, at); // longer than one timer can wait
        return;
      }
      this.counters.tokenExpiredCloses++;
      const expired = new WeirError(ErrorCode.TOKEN_EXPIRED, 'the token expired: connect again with a fresh token', { details: { reason: 'expired' } });
      session.port.sendNow(this.errorFrame(expired, undefined, undefined));
      session.port.close(1008, `${ErrorCode.TOKEN_EXPIRED}: the token expired`);
    }, Math.min(Math.max(ms, 0), MAX_TIMER_MS));
    session.expiryTimer.unref();
  }

  private async createTopic(session: Session, id: number, f: Frame): Promise<void> {
    const name = f.topic;
    if (typeof name !== 'string') throw new WeirError(ErrorCode.INVALID_TOPIC_NAME, 'topic name must be a string');
    const partitions = f.partitions === undefined ? this.deps.defaultPartitions : f.partitions;
    const refusal = this.tenants?.checkCreateTopic(name, [...this.deps.topics.all()].map((t) => t.name)) ?? null;
    if (refusal !== null) throw quotaExceeded(refusal);
    const { topic, created } = await this.deps.topics.create(name, partitions as number, this.deps.launcher, f.config);
    this.send(session, { op: 'result', id, topic: topic.name, partitions: topic.partitions, config: topicConfigToWire(topic.config), created });
  }

  private async alterTopic(session: Session, id: number, f: Frame): Promise<void> {
    const topic = topicOf(this.deps.topics, f);
    if (f.config === undefined) throw badRequest('config', '"config" must be a map of the settings to change');
    const altered = await this.deps.topics.alter(topic.name, f.config);
    this.send(session, { op: 'result', id, topic: altered.name, partitions: altered.partitions, config: topicConfigToWire(altered.config) });
  }

  private async describeTopic(session: Session, id: number, f: Frame): Promise<void> {
    const topic = topicOf(this.deps.topics, f);
    const offsets = await Promise.all(
      topic.actors.map(async (a, partition) => ({ partition, ...(await a.describe()), host: a.host })),
    );
    this.send(session, { op: 'result', id, topic: topic.name, partitions: topic.partitions, config: topicConfigToWire(topic.config), offsets });
  }

  private subscribe(session: Session, id: number, f: Frame): Promise<void> | void {
    if (f.pattern !== undefined || f.topic === undefined) {
      // Wildcard subscriptions belong to the routing feature (src/features/routing/).
      if (f.topic !== undefined || f.pattern === undefined) throw badRequest(f.topic === undefined ? 'topic' : 'pattern', 'subscribe needs exactly one of "topic" and "pattern"');
      if (!this.patternSubscribe) throw badRequest('pattern', 'this broker has no pattern subscriptions');
      return this.patternSubscribe(session, id, f);
    }
    const topic = topicOf(this.deps.topics, f);
    this.subscriptions.subscribe(session, id, topic, subscribeOptionsOf(f));
  }

  private fetch(session: Session, id: number, f: Frame): void {
    const topic = topicOf(this.deps.topics, f);
    const partition = partitionOf(topic, f.partition);
    const offset = nonNegInt(f.offset, 'offset');
    const maxBytes = Math.min(f.maxBytes === undefined ? 1 << 20 : nonNegInt(f.maxBytes, 'maxBytes'), this.config.maxFetchBytes);
    const maxRecords = f.maxRecords === undefined ? 10_000 : nonNegInt(f.maxRecords, 'maxRecords');
    const maxWaitMs = Math.min(f.maxWaitMs === undefined ? 0 : nonNegInt(f.maxWaitMs, 'maxWaitMs'), 30_000);
    // Answers count against the session's bound from the moment they are asked for (a client can
    // pipeline many fetches in one read, before any answer exists): one more is allowed while the
    // unsent bytes and the answers pending stay within it, so it holds at most one answer past it.
    const buffered = session.port.unsentBytes();
    const bound = this.config.maxBufferedBytes;
    if (buffered + session.fetchBytes > bound) {
      if (buffered > bound) this.flow.noteOverBound(session);
      throw new WeirError(ErrorCode.THROTTLED, `connection has ${buffered} bytes unsent and ${session.fetchBytes} bytes of fetch answers pending (limit ${bound}); read the answers, then retry`, { retryable: true });
    }
    const actor = topic.actors[partition]!;
    const fetchId = actor.fetch(FetchMode.OFFSET, offset, maxBytes, maxRecords, maxWaitMs, {
      data: (records, count, next, end) => {
        session.fetchBytes -= maxBytes;
        session.inFlightRequests--;
        // time: never hand out expired records (only topics with a ttlMs or weir- records can have any)
        if (count > 0 && (topic.config.ttlMs !== null || topic.hasControlRecords)) {
          const live = dropExpired(records, count, topic.config.ttlMs, Date.now());
          if (live !== null) {
            records = live.records;
            count = live.count;
          }
        }
        this.send(session, { op: 'result', id, topic: topic.name, partition, records, count, next, end });
      },
      failed: (code, message, start, end) => {
        session.fetchBytes -= maxBytes;
        session.inFlightRequests--;
        this.sendError(session, id, fetchFailure(topic, partition, code, message, start, end));
      },
    });
    if (fetchId === 0) throw unavailable(topic.name, partition, actor);
    session.fetchBytes += maxBytes; // answered no earlier than the next turn's end
    session.inFlightRequests++;
    this.turn.markActor(actor);
  }
}

/** A request answered later (its handler's promise) is in flight until that promise settles. */
function countInFlight(session: Session, answer: Promise<void> | void): Promise<void> | void {
  if (answer === undefined) return undefined;
  session.inFlightRequests++;
  const done = (): void => void session.inFlightRequests--;
  answer.then(done, done);
  return answer;
}

/** Actions whose every use is audited: they change what other clients read or where they are. */
const ADMINISTRATIVE: ReadonlySet<Action> = new Set<Action>(['create', 'alter', 'delete', 'reset', 'redrive', 'admin']);

type AdministrativeEvent = Omit<AuditEvent, 'principal' | 'address' | 'outcome'>;

/** The audit event of an administrative request (a topic created or altered, offsets reset, a redrive, a transaction decided by an admin); undefined for others. */
function administrativeEvent(access: readonly Access[], session: Session, f: Frame): AdministrativeEvent | undefined {
  const byAdmin = f.by === 'admin' && (f.op === 'txn_commit' || f.op === 'txn_rollback');
  const a = access.find((x) => ADMINISTRATIVE.has(x.action)) ?? (byAdmin ? access.find((x) => x.action === 'txn') : undefined);
  if (a === undefined) return undefined;
  const resource = resourceLabel(ACTIONS[a.action], resourceOf(a, session, f) ?? '');
  if (!byAdmin) return { action: a.action, resource };
  return { action: a.action, resource, details: { txn: String(f.txn), decision: f.op === 'txn_commit' ? 'commit' : 'rollback' } };
}

function shuttingDown(): WeirError {
  return new WeirError(ErrorCode.SHUTTING_DOWN, 'broker is stopping; retry against it once it is back', { retryable: true });
}
