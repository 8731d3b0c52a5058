/**
 * The gateway: a uWebSockets.js server speaking the CBOR protocol of docs/protocol.md. It decodes
 * the envelope, routes produce batches by key into the partitions' rings without building an
 * object per message, answers once the partitions acknowledge, and pushes subscriptions' records
 * under credit. Everything here runs on the main thread's event loop and never blocks it.
 */
import { Buffer } from 'node:buffer';
import type { HttpResponse, WebSocket, us_listen_socket } from 'uWebSockets.js';
import { WeirError, badRequest, needId } from '../common/errors.js';
import { channels } from '../common/diagnostics.js';
import { decodeFrame, encodeFrame } from '../protocol/cbor.js';
import { encodeDeliverFrame } from './deliver-frame.js';
import { encodeProduceResult } from './result-frame.js';
import { FrameArena } from './frame-arena.js';
import { Outbox } from './outbox.js';
import { TurnSet } from '../common/turn-set.js';
import { ErrorCode, RETRYABLE } from '../protocol/codes.js';
import { PROTOCOL_VERSION, MAX_CREDITS, type StartPosition, type TopicConfig } from '../protocol/frames.js';
import { topicConfigToWire } from '../core/topics/config.js';
import { BatchFormatError, RecordIndex, scanBatch } from '../protocol/record.js';
import { FetchMode, IDEMPOTENT_PRODUCE_HEADER_BYTES, PRODUCE_HEADER_BYTES } from '../partition/protocol.js';
import type { ByteSink, PartitionRef, ProduceWaiter, ProducerSequence } from '../partition/ref.js';
import { idempotentFields, markIdempotent, refuseScheduled, withProducerHeaders } from '../core/producer-batch.js';
import type { Topic, TopicRegistry, PartitionHost } from '../core/topics/registry.js';
import type { GroupCoordinator, GroupMember } from '../core/groups/coordinator.js';
import type { OffsetStore } from '../core/groups/offset-store.js';
import { listenExclusive, listenFailed, loadNativeUws } from './native.js';
import { dropExpired } from '../protocol/expiry-filter.js';
import { Router } from './router.js';
import type { GatewayConfig } from './config.js';
import type { ControlInterceptor, ControlInterceptorRequest, FeatureHost, Frame, OpHandler, ProduceOutcome, ProducePart, ProducerGuard, ReadOptions, ReadResult, Session } from '../core/feature-host.js';
import { nonNegInt, subscribeOptionsOf, type SubscribeOptions } from '../core/validate.js';

/** The codes a client may be sent (the wire registry). */
const WIRE_CODES: ReadonlySet<string> = new Set<string>(Object.values(ErrorCode));
/** Deliver frames of one turn share this much reused memory; beyond it they get their own buffers. */
const FRAME_ARENA_BYTES = 8 << 20;
/** Flushes of actors re-marked by their own answers within one turn (gateway-hosted actors). */
const MAX_FLUSH_ROUNDS = 16;
/** A connection's bits in the gateway's TurnSets. */
const DELIVERIES = 1;
const ANSWERS = 2;
const flushActor = (actor: PartitionRef): void => actor.flush();


interface ConnData {
  conn?: Connection;
}

/** One WebSocket client. */
class Connection implements Session {
  closed = false;
  helloDone = false;
  inFlightBytes = 0;
  /** Bytes one-shot `fetch` answers not yet sent may take (their maxBytes): counted against maxBufferedBytes. */
  fetchBytes = 0;
  /** A cursor stopped because the socket was over its bound: pump them all once it is not. */
  deliveryPaused = false;
  /** When the connection was first seen over its bound (0: not over): the slow-consumer clock. */
  overSince = 0;
  /** Encoded frames waiting for the end of this tick, sent corked together. */
  readonly outbox = new Outbox();
  /** The gateway's TurnSets this connection is in (DELIVERIES, ANSWERS). */
  turnMarks = 0;
  readonly subs = new Map<number, Subscription>();
  nextSub = 1;
  constructor(
    readonly id: number,
    readonly ws: WebSocket<ConnData>,
  ) {}
}

class Cursor {
  credits = 0;
  /** The log end the partition last reported: commits up to it need no question to the partition. */
  end = 0;
  /** The partition's id of the fetch in flight (0: none): one at a time, cancelled when the cursor stops. */
  fetchId = 0;
  active = true;
  retry: ReturnType<typeof setTimeout> | null = null;
  constructor(
    readonly partition: number,
    public next: number,
  ) {}
}

class Subscription implements GroupMember {
  readonly cursors = new Map<number, Cursor>();
  generation = 0;
  /** The last commit that had to ask a partition for its log end: later commits wait for it (in order). */
  checkingCommit: Promise<void> | null = null;
  constructor(
    readonly id: number,
    readonly conn: Connection,
    readonly topic: Topic,
    readonly group: string | undefined,
    readonly from: StartPosition,
    readonly credits: number,
    private readonly gateway: Gateway,
  ) {}
  get memberId(): string {
    return `${this.conn.id}.${this.id}`;
  }
  revoke(generation: number): void {
    this.generation = generation;
    this.stopCursors();
    this.gateway.send(this.conn, { op: 'revoke', sub: this.id, generation });
  }
  assign(generation: number, partitions: number[]): void {
    this.generation = generation;
    this.stopCursors();
    void this.gateway.startDelivery(this, generation, partitions);
  }
  stopCursors(): void {
    for (const c of this.cursors.values()) this.gateway.stopCursor(this, c);
    this.cursors.clear();
  }
}

/** One produce request on its way through the partitions. */
class PendingProduce {
  /** Chunks not yet answered, plus one hold while the request is still being written. */
  private remaining = 1;
  failed = false;
  readonly parts: ProducePart[];
  constructor(
    private readonly outcome: ProduceOutcome,
    readonly route: Uint8Array | undefined,
    partitions: number,
  ) {
    this.parts = new Array<ProducePart>(partitions);
  }

  waiter(partitionIndex: number): ProduceWaiter {
    this.remaining++;
    return new ChunkWaiter(this, partitionIndex);
  }

  acked(partitionIndex: number, base: number, count: number): void {
    const part = this.parts[partitionIndex]!;
    if (part[2] === 0 || base < part[1]) part[1] = base;
    part[2] += count;
    this.settled();
  }

  chunkFailed(code: ErrorCode, message: string): void {
    this.fail(code, message);
    this.settled();
  }

  /** A waiter whose chunk was never handed to a partition. */
  unwait(): void {
    this.remaining--;
  }

  /** Drop the writer's hold: answers the request if every chunk already settled. */
  release(): void {
    this.settled();
  }

  fail(code: ErrorCode, message: string): void {
    if (this.failed) return;
    this.failed = true;
    this.outcome.failed(new WeirError(code, message, { retryable: RETRYABLE.has(code) }));
  }

  private settled(): void {
    if (--this.remaining > 0) return;
    this.outcome.settled(this.failed, this.parts, this.route);
  }
}

interface ProduceAnswers {
  answered(conn: Connection, id: number, parts: ProducePart[], route: Uint8Array | undefined): void;
  failed(conn: Connection, id: number, error: WeirError): void;
}

/** How a plain produce request ends: its answer or error frame, and its bytes out of the connection's in-flight count. */
class ProduceAnswer implements ProduceOutcome {
  constructor(
    private readonly answers: ProduceAnswers,
    private readonly conn: Connection,
    private readonly id: number,
    private readonly bytes: number,
  ) {}

  failed(error: WeirError): void {
    this.answers.failed(this.conn, this.id, error);
  }

  settled(error: boolean, parts: ProducePart[], route: Uint8Array | undefined): void {
    this.conn.inFlightBytes -= this.bytes;
    if (!error) this.answers.answered(this.conn, this.id, parts, route);
  }
}

/** The answer to one chunk of a PendingProduce (one object, where a literal with two closures was three). */
class ChunkWaiter implements ProduceWaiter {
  constructor(
    private readonly pending: PendingProduce,
    private readonly partitionIndex: number,
  ) {}

  acked(base: number, count: number): void {
    this.pending.acked(this.partitionIndex, base, count);
  }

  failed(code: ErrorCode, message: string): void {
    this.pending.chunkFailed(code, message);
  }
}

export interface GatewayDeps {
  topics: TopicRegistry;
  host: PartitionHost;
  groups: GroupCoordinator;
  offsets: OffsetStore;
  brokerName: string;
  /** Partition count for create_topic without one. */
  defaultPartitions: number;
}

export class Gateway implements FeatureHost {
  private readonly uws = loadNativeUws();
  private listenSocket: us_listen_socket | null = null;
  private readonly conns = new Set<Connection>();
  private nextConn = 1;
  private closing = false;
  private readonly index = new RecordIndex();
  private readonly router = new Router();
  private readonly chunkRuns = new ChunkRuns();
  /** How ProduceAnswer reaches the client: one object for every request, not two closures each. */
  private readonly produceAnswers: ProduceAnswers = {
    answered: (conn, id, parts, route) => this.sendBytes(conn, encodeProduceResult(id, parts, route, this.frameMemory)),
    failed: (conn, id, error) => this.sendError(conn, id, error),
  };
  private readonly dirty = new TurnSet<Connection>(ANSWERS);
  /**
   * Connections given a deliver frame this turn: flushed before the rest (acks, answers). A
   * consumer's socket write and wake-up then start before the producer's ack: ≈ 10 µs off the
   * end-to-end median at 5,000 msg/s, nothing measurable on the ack's (docs/performance.md item 26).
   */
  private readonly dirtyDeliveries = new TurnSet<Connection>(DELIVERIES);
  private readonly dirtyActors = new TurnSet<PartitionRef>(1);
  private flushScheduled = false;
  /** The connection sendCorked() sends from, and how many of its frames. */
  private corking: Connection | null = null;
  private corkCount = 0;
  /** Memory for this turn's deliver frames (up to maxFetchBytes of records each) and produce answers; reset once they are sent. */
  private readonly frameArena = new FrameArena(FRAME_ARENA_BYTES);
  private readonly frameMemory = (bytes: number): Uint8Array => this.frameArena.take(bytes) ?? Buffer.allocUnsafe(bytes);
  private readonly ops = new Map<string, OpHandler>();
  private readonly closeListeners: Array<(conn: Session) => void> = [];
  private readonly unsubscribeListeners: Array<(conn: Session, subId: number) => void> = [];
  port = 0;

  constructor(
    private readonly config: GatewayConfig,
    private readonly deps: GatewayDeps,
  ) {}

  listen(): Promise<number> {
    const cfg = this.config;
    const app = this.uws.App();
    app.ws<ConnData>('/*', {
      // uWS cuts larger frames with 1006 and no reason; leave headroom so our own check answers 1009.
      maxPayloadLength: cfg.maxFrameBytes * 2 + 1024 * 1024,
      // A backstop only: the gateway keeps each connection within maxBufferedBytes (+ one frame)
      // for deliveries and fetch answers; a send beyond this closes the socket (1006).
      maxBackpressure: cfg.maxBackpressureBytes ?? 4 * cfg.maxBufferedBytes,
      closeOnBackpressureLimit: 1,
      idleTimeout: cfg.idleTimeoutSec,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => {
        res.upgrade<ConnData>(
          {},
          req.getHeader('sec-websocket-key'),
          req.getHeader('sec-websocket-protocol'),
          req.getHeader('sec-websocket-extensions'),
          context,
        );
      },
      open: (ws) => {
        const conn = new Connection(this.nextConn++, ws);
        ws.getUserData().conn = conn;
        this.conns.add(conn);
      },
      message: (ws, message, isBinary) => {
        const conn = ws.getUserData().conn!;
        this.onMessage(conn, message, isBinary);
      },
      drain: (ws) => {
        const conn = ws.getUserData().conn!;
        if (this.bufferedBytes(conn) > this.config.maxBufferedBytes) return;
        conn.overSince = 0;
        if (conn.deliveryPaused) this.resumeDelivery(conn);
      },
      close: (ws) => {
        const conn = ws.getUserData().conn!;
        this.onClose(conn);
      },
    });
    app.get('/healthz', (res) => this.health(res));
    app.any('/*', (res) => {
      res.cork(() => res.writeStatus('404 Not Found').end('not found; the WebSocket endpoint is /\n'));
    });
    return listenExclusive(app, cfg.host, cfg.port).then((socket) => {
      if (!socket) throw listenFailed(cfg.host, cfg.port);
      this.listenSocket = socket;
      this.port = this.uws.us_socket_local_port(socket);
      return this.port;
    });
  }

  /** Stop accepting, let in-flight produce requests finish (bounded), then close every connection. */
  async close(graceMs = 5_000): Promise<void> {
    this.closing = true;
    if (this.slowTimer) clearInterval(this.slowTimer);
    this.slowTimer = null;
    if (this.listenSocket) this.uws.us_listen_socket_close(this.listenSocket);
    this.listenSocket = null;
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && [...this.conns].some((c) => c.inFlightBytes > 0)) {
      await new Promise((r) => setTimeout(r, 10));
    }
    this.flushOutboxes();
    for (const conn of [...this.conns]) {
      if (!conn.closed) conn.ws.end(1001, 'SHUTTING_DOWN: broker is stopping');
    }
    this.conns.clear();
  }

  /** Memory the gateway holds for its clients right now (tests and /healthz use it). */
  stats(): { connections: number; bufferedBytes: number; maxConnectionBufferedBytes: number; inFlightProduceBytes: number } {
    let bufferedBytes = 0;
    let max = 0;
    let inFlight = 0;
    for (const c of this.conns) {
      if (c.closed) continue;
      const b = this.bufferedBytes(c);
      bufferedBytes += b;
      if (b > max) max = b;
      inFlight += c.inFlightBytes;
    }
    return { connections: this.conns.size, bufferedBytes, maxConnectionBufferedBytes: max, inFlightProduceBytes: inFlight };
  }

  // ------------------------------------------------------------------ frames

  private onMessage(conn: Connection, message: ArrayBuffer, isBinary: boolean): void {
    if (message.byteLength > this.config.maxFrameBytes) {
      const reason = `${ErrorCode.FRAME_TOO_LARGE}: frame of ${message.byteLength} bytes exceeds the limit of ${this.config.maxFrameBytes}`;
      conn.ws.end(1009, reason);
      return;
    }
    if (!isBinary) {
      this.sendError(conn, undefined, new WeirError(ErrorCode.BAD_FRAME, 'text frames are not supported: send one CBOR map per binary frame'));
      return;
    }
    let frame: unknown;
    try {
      frame = decodeFrame(new Uint8Array(message));
    } catch (err) {
      this.sendError(conn, undefined, new WeirError(ErrorCode.BAD_FRAME, `frame is not valid CBOR: ${(err as Error).message}`));
      return;
    }
    if (typeof frame !== 'object' || frame === null || Array.isArray(frame) || frame instanceof Uint8Array) {
      this.sendError(conn, undefined, new WeirError(ErrorCode.BAD_FRAME, 'frame must be a CBOR map'));
      return;
    }
    const f = frame as Frame;
    const id = typeof f.id === 'number' && Number.isInteger(f.id) && f.id >= 0 ? f.id : undefined;
    if (typeof f.op !== 'string') {
      this.sendError(conn, id, new WeirError(ErrorCode.BAD_FRAME, 'frame has no string "op"'));
      return;
    }
    // Frames without an id (credit, revoked) are answered, if they fail, with their subscription.
    const sub = id === undefined && typeof f.sub === 'number' ? f.sub : undefined;
    try {
      const maybe = this.dispatch(conn, f, id);
      if (maybe) maybe.catch((err: unknown) => this.sendError(conn, id, err, sub));
    } catch (err) {
      this.sendError(conn, id, err, sub);
    }
  }

  private dispatch(conn: Connection, f: Frame, id: number | undefined): Promise<void> | void {
    const op = f.op as string;
    if (this.config.token !== undefined && !conn.helloDone && op !== 'hello') {
      throw new WeirError(ErrorCode.UNAUTHORIZED, 'this broker requires a token: send hello with "token" first');
    }
    switch (op) {
      case 'hello':
        return this.hello(conn, needId(id, op), f);
      case 'produce':
        return this.produce(conn, needId(id, op), f);
      case 'create_topic':
        return this.createTopic(conn, needId(id, op), f);
      case 'list_topics':
        this.send(conn, { op: 'result', id: needId(id, op), topics: this.deps.topics.list() });
        return;
      case 'describe_topic':
        return this.describeTopic(conn, needId(id, op), f);
      case 'fetch':
        return this.fetch(conn, needId(id, op), f);
      case 'subscribe':
        return this.subscribe(conn, needId(id, op), f);
      case 'credit':
        return this.credit(conn, f);
      case 'commit':
        return this.commit(conn, needId(id, op), f);
      case 'revoked':
        return this.revoked(conn, f);
      case 'unsubscribe':
        return this.unsubscribe(conn, needId(id, op), f);
      case 'ping':
        this.send(conn, { op: 'result', id: needId(id, op) });
        return;
      case 'alter_topic':
        return this.alterTopic(conn, needId(id, op), f);
      default: {
        const handler = this.ops.get(op);
        if (handler) return handler(conn, id, f);
        throw new WeirError(ErrorCode.UNKNOWN_OP, `unknown operation ${JSON.stringify(op.slice(0, 40))}; see docs/protocol.md`);
      }
    }
  }

  private hello(conn: Connection, id: number, f: Frame): void {
    const version = f.version;
    if (version !== PROTOCOL_VERSION) {
      throw new WeirError(ErrorCode.UNSUPPORTED_VERSION, `protocol version ${String(version)} is not supported; this broker speaks ${PROTOCOL_VERSION}`, { details: { supported: [PROTOCOL_VERSION] } });
    }
    if (this.config.token !== undefined && f.token !== this.config.token) {
      throw new WeirError(ErrorCode.UNAUTHORIZED, 'token is missing or wrong');
    }
    conn.helloDone = true;
    const c = this.config;
    this.send(conn, {
      op: 'result', id, version: PROTOCOL_VERSION, broker: this.deps.brokerName,
      maxFrameBytes: c.maxFrameBytes, maxMessageBytes: c.maxMessageBytes, maxInFlightBytes: c.maxInFlightBytes, fsync: c.fsyncLabel,
    });
  }

  private async createTopic(conn: Connection, id: number, f: Frame): Promise<void> {
    if (this.closing) throw shuttingDown();
    const name = f.topic;
    if (typeof name !== 'string') throw new WeirError(ErrorCode.INVALID_TOPIC_NAME, 'topic name must be a string');
    const partitions = f.partitions === undefined ? this.deps.defaultPartitions : f.partitions;
    const { topic, created } = await this.deps.topics.create(name, partitions as number, this.deps.host, f.config);
    this.send(conn, { op: 'result', id, topic: topic.name, partitions: topic.partitions, config: topicConfigToWire(topic.config), created });
  }

  private async alterTopic(conn: Connection, id: number, f: Frame): Promise<void> {
    if (this.closing) throw shuttingDown();
    const topic = this.topicOf(f);
    if (f.config === undefined) throw badRequest('config', '"config" must be a map of the settings to change');
    const altered = await this.deps.topics.alter(topic.name, f.config);
    this.send(conn, { op: 'result', id, topic: altered.name, partitions: altered.partitions, config: topicConfigToWire(altered.config) });
  }

  private async describeTopic(conn: Connection, id: number, f: Frame): Promise<void> {
    const topic = this.topicOf(f);
    const offsets = await Promise.all(
      topic.actors.map(async (a, partition) => ({ partition, ...(await a.describe()), host: a.host })),
    );
    this.send(conn, { op: 'result', id, topic: topic.name, partitions: topic.partitions, config: topicConfigToWire(topic.config), offsets });
  }

  // ------------------------------------------------------------------ produce

  private produce(conn: Connection, id: number, f: Frame): void {
    if (this.closing) throw shuttingDown();
    const topic = this.topicOf(f);
    const raw = f.records;
    if (!(raw instanceof Uint8Array)) throw badRequest('records', '"records" must be a byte string holding a record batch');
    let records = raw;
    let forced: number | undefined;
    if (f.partition !== undefined) {
      forced = this.partitionOf(topic, f.partition);
    }
    // Exactly-once append (docs/exactly-once.md); undefined for plain produces.
    const idem: ProducerSequence | undefined = idempotentFields(f, conn, this.producerGuard);
    if (conn.inFlightBytes > 0 && conn.inFlightBytes + records.length > this.config.maxInFlightBytes) {
      throw new WeirError(ErrorCode.THROTTLED, `connection has ${conn.inFlightBytes} produce bytes in flight (limit ${this.config.maxInFlightBytes}); wait for acknowledgements`, { retryable: true });
    }
    this.scan(records);
    if (idem !== undefined) {
      if (this.index.controlCount > 0) refuseScheduled(records, this.index);
      records = withProducerHeaders(records, this.index.count, idem);
      this.scan(records);
      markIdempotent(records);
    }
    // Idempotent batches go straight to their partition (the whole batch is one deduplicated unit).
    const interceptor = idem === undefined && this.index.controlCount > 0 ? this.controlChain : null;
    // Read the size now: `records` views uWS's message buffer, which is detached (length 0) once
    // this handler returns. Anything that keeps records past it must copy them.
    const bytes = records.length;
    conn.inFlightBytes += bytes;
    const outcome = new ProduceAnswer(this.produceAnswers, conn, id, bytes);
    try {
      if (interceptor) interceptor({ topic, records, index: this.index, forced, outcome, session: conn });
      else this.write(topic, records, forced, outcome, idem);
    } catch (err) {
      conn.inFlightBytes -= bytes;
      throw err;
    }
  }

  /** Validate and index a producer batch into this.index; throws BAD_BATCH / MESSAGE_TOO_LARGE. */
  private scan(records: Uint8Array): void {
    this.scanBatch(records, this.index);
  }

  /**
   * For feature modules: validate a client's record batch and index it into `index` with the
   * broker's limits (maxMessageBytes per record; at most `maxRecords`, default maxRecordsPerBatch).
   * Throws WeirError MESSAGE_TOO_LARGE for an oversize record, BAD_BATCH for any other defect.
   */
  scanBatch(records: Uint8Array, index: RecordIndex, maxRecords = this.config.maxRecordsPerBatch): void {
    try {
      scanBatch(records, index, { maxRecordBytes: this.config.maxMessageBytes, maxRecords: Math.min(maxRecords, this.config.maxRecordsPerBatch) });
    } catch (err) {
      if (err instanceof BatchFormatError) {
        if (err.defect === 'RECORD_TOO_LARGE') {
          throw new WeirError(ErrorCode.MESSAGE_TOO_LARGE, `record ${err.recordIndex} is larger than maxMessageBytes (${this.config.maxMessageBytes})`, { details: { record: err.recordIndex } });
        }
        throw new WeirError(ErrorCode.BAD_BATCH, err.message, { details: { defect: err.defect, record: err.recordIndex, position: err.position } });
      }
      throw err;
    }
  }

  /**
   * Route the batch indexed in this.index (records by key, or all to `forced`) into the partitions'
   * rings. Throws PARTITION_UNAVAILABLE before writing anything if a target partition is down;
   * afterwards every outcome goes through `outcome`.
   */
  private write(topic: Topic, records: Uint8Array, forced: number | undefined, outcome: ProduceOutcome, idem?: ProducerSequence): void {
    const index = this.index;
    const n = index.count;
    if (idem !== undefined) {
      // One idempotent batch = one ring entry, so the partition checks and appends it whole.
      const max = topic.actors[forced!]!.maxEntryBytes - (IDEMPOTENT_PRODUCE_HEADER_BYTES - PRODUCE_HEADER_BYTES);
      if (records.length > max) {
        throw new WeirError(ErrorCode.BAD_REQUEST, `an idempotent batch may hold at most ${max} record bytes on this broker, this one has ${records.length}: send smaller batches`, { details: { field: 'records', maxBytes: max } });
      }
    }
    // time: deliveries of this topic look for expired records from now on (once per topic, durable).
    if (index.controlCount > 0 && !topic.hasControlRecords) this.deps.topics.markControlRecords(topic);
    const sticky = topic.nextSticky;
    const route = this.router.routeBatch(records, index, topic.partitions, sticky, forced);
    if (forced === undefined && route.counts[sticky]! > 0) topic.nextSticky = (sticky + 1) % topic.partitions;
    const touched = route.touchedCount;
    for (let t = 0; t < touched; t++) {
      const p = route.touched[t]!;
      if (!topic.actors[p]!.available) throw unavailable(topic.name, p, topic.actors[p]!);
    }
    let routeBytes: Uint8Array | undefined;
    if (touched > 1) {
      const copy = route.partitionOf.slice(0, n);
      routeBytes = new Uint8Array(copy.buffer, 0, n * 2); // little-endian hosts only (x86, arm64)
    }
    const pending = new PendingProduce(outcome, routeBytes, touched);
    const runs = this.chunkRuns;
    for (let t = 0; t < touched && !pending.failed; t++) {
      const p = route.touched[t]!;
      pending.parts[t] = [p, 0, 0];
      const actor = topic.actors[p]!;
      const maxEntry = actor.maxEntryBytes;
      // A partition's records go in entries of at most maxEntry bytes, consecutively in its ring,
      // so their offsets are consecutive and one [partition, base, count] describes them.
      let i = route.head[p]!;
      while (i >= 0) {
        const first = i;
        let bytes = 0;
        let count = 0;
        while (i >= 0 && (count === 0 || bytes + index.size[i]! <= maxEntry)) {
          bytes += index.size[i]!;
          count++;
          i = route.nextSame[i]!;
        }
        runs.set(records, index, route.nextSame, first, i);
        const ok = actor.produce(count, bytes, runs.fill, pending.waiter(t), idem);
        runs.clear();
        if (!ok) {
          pending.unwait();
          if (actor.available) pending.fail(ErrorCode.THROTTLED, `partition ${topic.name}/${p} is behind; retry`);
          else {
            const e = unavailable(topic.name, p, actor);
            pending.fail(e.code as ErrorCode, e.message);
          }
          break;
        }
      }
      this.markActor(actor);
    }
    pending.release();
  }

  // ------------------------------------------------------------------ services for feature modules

  /** Handle requests with this `op` (a feature module's protocol). Built-in ops cannot be replaced. */
  registerOp(op: string, handler: OpHandler): void {
    if (this.ops.has(op)) throw new Error(`op ${op} registered twice`);
    this.ops.set(op, handler);
  }

  /** Called once per connection when it closes (after its subscriptions were dropped). */
  onConnectionClosed(listener: (conn: Session) => void): void {
    this.closeListeners.push(listener);
  }

  /** For feature modules: the client ended subscription `subId` with the `unsubscribe` op. */
  onUnsubscribed(listener: (conn: Session, subId: number) => void): void {
    this.unsubscribeListeners.push(listener);
  }

  /**
   * Exactly-once append: asked per idempotent produce, before the batch goes anywhere, whether the
   * connection may use the producer id it names (it throws the refusal). Unset: no id is valid.
   */
  setProducerGuard(guard: ProducerGuard): void {
    this.producerGuard = guard;
  }
  private producerGuard: ProducerGuard = (_conn, producerId) => {
    throw badRequest('producerId', `producer id ${producerId} was not handed out by init_producer on this broker`);
  };

  /**
   * Take part in produce requests whose batch has records with `weir-` headers (index.controlCount
   * > 0): interceptors form a chain in the order they were added; each rewrites, diverts or answers
   * a request, or passes it on with `next` (the last `next` writes to the topic). Adding the same
   * function twice is a programming error (it would see every request twice): it throws.
   */
  addControlInterceptor(interceptor: ControlInterceptor): void {
    if (typeof interceptor !== 'function') throw new TypeError('addControlInterceptor needs a function (request, next)');
    if (this.controlInterceptors.includes(interceptor)) throw new Error('this control interceptor was already added');
    this.controlInterceptors.push(interceptor);
    // Built once here, not per request: a produce with weir- headers calls straight down the chain.
    let chain = (req: ControlInterceptorRequest): void => this.write(req.topic, req.records, req.forced, req.outcome);
    for (let i = this.controlInterceptors.length - 1; i >= 0; i--) {
      const link = this.controlInterceptors[i]!;
      const next = chain;
      chain = (req) => link(req, next);
    }
    this.controlChain = chain;
  }
  private readonly controlInterceptors: ControlInterceptor[] = [];
  private controlChain: ((request: ControlInterceptorRequest) => void) | null = null;

  /**
   * Append a batch to a topic from inside the broker (dead letters, due delayed messages, committed
   * transactions): the same validation, routing and acknowledgement as a client's produce, no
   * connection budget. Resolves with the parts (and route) of the produce answer. Records are not
   * inspected for `weir-` headers here (the caller produced them).
   */
  append(topic: Topic | string, records: Uint8Array, partition?: number): Promise<{ parts: ProducePart[]; route?: Uint8Array }> {
    return new Promise((resolve, reject) => {
      const t = typeof topic === 'string' ? this.deps.topics.get(topic) : topic;
      if (!t) throw new WeirError(ErrorCode.TOPIC_NOT_FOUND, `topic ${String(topic)} does not exist`);
      if (partition !== undefined) this.partitionOf(t, partition);
      this.scan(records);
      let error: WeirError | null = null;
      this.write(t, records, partition, {
        failed: (e) => (error = e),
        settled: (failed, parts, route) => (failed ? reject(error) : resolve(route ? { parts, route } : { parts })),
      });
    });
  }

  /**
   * Read stored records of one partition from `offset` (waiting up to maxWaitMs for some to
   * arrive). `records` is a copy the caller owns.
   */
  async read(topic: Topic, partition: number, offset: number, options: ReadOptions = {}): Promise<ReadResult> {
    let result!: ReadResult;
    await this.readView(topic, partition, offset, options, (records, count, next, end) => {
      result = { records: records.slice(), count, next, end };
    });
    return result;
  }

  /**
   * read() without the copy: `use` gets the records as a view of the partition's output ring, valid
   * only during the call, for callers that copy them into memory of their own (queue windows keep
   * read-ahead records in a reused buffer instead of a fresh allocation per read). Resolves after
   * `use` returned; rejects with the partition's error (then `use` is not called).
   */
  readView(topic: Topic, partition: number, offset: number, options: ReadOptions, use: (records: Uint8Array, count: number, next: number, end: number) => void): Promise<void> {
    return new Promise((resolve, reject) => {
      const actor = topic.actors[partition];
      if (!actor) throw new WeirError(ErrorCode.PARTITION_NOT_FOUND, `topic ${topic.name} has no partition ${partition}`);
      const fetchId = actor.fetch(FetchMode.OFFSET, offset, options.maxBytes ?? this.config.maxFetchBytes, options.maxRecords ?? 10_000, options.maxWaitMs ?? 0, {
        data: (records, count, next, end) => {
          try {
            use(records, count, next, end);
            resolve();
          } catch (err) {
            reject(err as Error);
          }
        },
        failed: (code, message, start, end) => reject(fetchFailure(topic, partition, code, message, start, end)),
      });
      if (fetchId === 0) throw unavailable(topic.name, partition, actor);
      this.markActor(actor);
    });
  }

  /** Create (or find) a topic from inside the broker; `internal` allows the reserved `__` prefix. */
  async ensureTopic(name: string, partitions: number, config?: TopicConfig, internal = false): Promise<Topic> {
    const existing = this.deps.topics.get(name);
    if (existing) return existing;
    return (await this.deps.topics.create(name, partitions, this.deps.host, config, { internal })).topic;
  }

  get topics(): TopicRegistry {
    return this.deps.topics;
  }

  /** Consumer groups and their committed offsets (replay resets them). */
  get groups(): GroupCoordinator {
    return this.deps.groups;
  }
  get offsets(): OffsetStore {
    return this.deps.offsets;
  }

  // ------------------------------------------------------------------ fetch

  private fetch(conn: Connection, id: number, f: Frame): void {
    const topic = this.topicOf(f);
    const partition = this.partitionOf(topic, f.partition);
    const offset = nonNegInt(f.offset, 'offset');
    const maxBytes = Math.min(f.maxBytes === undefined ? 1 << 20 : nonNegInt(f.maxBytes, 'maxBytes'), this.config.maxFetchBytes);
    const maxRecords = f.maxRecords === undefined ? 10_000 : nonNegInt(f.maxRecords, 'maxRecords');
    const maxWaitMs = Math.min(f.maxWaitMs === undefined ? 0 : nonNegInt(f.maxWaitMs, 'maxWaitMs'), 30_000);
    // Answers count against the connection's bound from the moment they are asked for (a client can
    // pipeline many fetches in one read, before any answer exists): one more is allowed while the
    // unsent bytes and the answers pending stay within it, so it holds at most one answer past it.
    const buffered = this.bufferedBytes(conn);
    const bound = this.config.maxBufferedBytes;
    if (buffered + conn.fetchBytes > bound) {
      if (buffered > bound) this.noteOverBound(conn);
      throw new WeirError(ErrorCode.THROTTLED, `connection has ${buffered} bytes unsent and ${conn.fetchBytes} bytes of fetch answers pending (limit ${bound}); read the answers, then retry`, { retryable: true });
    }
    const actor = topic.actors[partition]!;
    const fetchId = actor.fetch(FetchMode.OFFSET, offset, maxBytes, maxRecords, maxWaitMs, {
      data: (records, count, next, end) => {
        conn.fetchBytes -= maxBytes;
        // time: never hand out expired records (only topics with a ttlMs or weir- records can have any)
        if (count > 0 && (topic.config.ttlMs !== null || topic.hasControlRecords)) {
          const live = dropExpired(records, count, topic.config.ttlMs, Date.now());
          if (live !== null) {
            records = live.records;
            count = live.count;
          }
        }
        this.send(conn, { op: 'result', id, topic: topic.name, partition, records, count, next, end });
      },
      failed: (code, message, start, end) => {
        conn.fetchBytes -= maxBytes;
        this.sendError(conn, id, fetchFailure(topic, partition, code, message, start, end));
      },
    });
    if (fetchId === 0) throw unavailable(topic.name, partition, actor);
    conn.fetchBytes += maxBytes; // answered no earlier than the next flush
    this.markActor(actor);
  }

  // ------------------------------------------------------------------ subscriptions

  private subscribe(conn: Connection, id: number, f: Frame): Promise<void> | void {
    if (f.pattern !== undefined || f.topic === undefined) {
      // Wildcard subscriptions belong to the routing feature (src/features/routing/).
      if (f.topic !== undefined || f.pattern === undefined) throw badRequest(f.topic === undefined ? 'topic' : 'pattern', 'subscribe needs exactly one of "topic" and "pattern"');
      if (!this.patternSubscribe) throw badRequest('pattern', 'this broker has no pattern subscriptions');
      return this.patternSubscribe(conn, id, f);
    }
    const topic = this.topicOf(f);
    const options = subscribeOptionsOf(f);
    const subId = conn.nextSub++;
    this.send(conn, { op: 'result', id, sub: subId });
    this.startSubscription(conn, subId, topic, options);
  }

  /** Handler of `subscribe` frames that carry `pattern` instead of `topic` (the routing feature). */
  setPatternSubscribeHandler(handler: OpHandler): void {
    // One feature owns wildcard subscriptions: a second handler would silently steal them.
    if (this.patternSubscribe) throw new Error('a pattern subscribe handler is already set');
    this.patternSubscribe = handler;
  }
  private patternSubscribe: OpHandler | null = null;

  /**
   * For feature modules: subscribe `conn` to `topic` as the `subscribe` op does, without answering;
   * returns the new subscription's id (its frames carry it). Call `unsubscribeById` to end it.
   */
  subscribeTopic(gconn: Session, topic: Topic, options: SubscribeOptions): number {
    const conn = gconn as Connection;
    const subId = conn.nextSub++;
    this.startSubscription(conn, subId, topic, options);
    return subId;
  }

  /** For feature modules: end subscription `subId` of `conn` (false when it does not exist). */
  unsubscribeById(gconn: Session, subId: number): boolean {
    const sub = (gconn as Connection).subs.get(subId);
    if (!sub) return false;
    this.dropSub(sub);
    return true;
  }

  private startSubscription(conn: Connection, subId: number, topic: Topic, { group, from, credits }: SubscribeOptions): void {
    const sub = new Subscription(subId, conn, topic, group, from, credits, this);
    conn.subs.set(sub.id, sub);
    if (group !== undefined) this.deps.groups.join(group, topic.name, topic.partitions, sub);
    else sub.assign(0, topic.actors.map((_, p) => p));
  }

  /** Resolve where each partition starts, tell the client, and start pushing. */
  async startDelivery(sub: Subscription, generation: number, partitions: number[]): Promise<void> {
    const starts = await Promise.all(partitions.map((p) => this.startOffset(sub, p)));
    if (sub.conn.closed || sub.generation !== generation || !sub.conn.subs.has(sub.id)) return;
    const assigned: Array<[number, number]> = partitions.map((p, i) => [p, starts[i]!]);
    this.send(sub.conn, { op: 'assign', sub: sub.id, generation, partitions: assigned });
    for (const [p, offset] of assigned) {
      const c = new Cursor(p, offset);
      c.credits = sub.credits;
      sub.cursors.set(p, c);
      this.pump(sub, c);
    }
  }

  private async startOffset(sub: Subscription, partition: number): Promise<number> {
    if (sub.group !== undefined) {
      const committed = this.deps.offsets.get(sub.group, sub.topic.name, partition);
      if (committed !== undefined) return committed;
    }
    const from = sub.from;
    let mode: FetchMode = FetchMode.LATEST;
    let position = 0;
    if (from === 'earliest') mode = FetchMode.EARLIEST;
    else if (typeof from === 'object' && 'offset' in from) return from.offset;
    else if (typeof from === 'object' && 'offsets' in from) {
      const o = from.offsets[String(partition)];
      if (o !== undefined) return o;
    } else if (typeof from === 'object' && 'timestamp' in from) {
      mode = FetchMode.TIMESTAMP;
      position = from.timestamp;
    }
    return this.resolveOffset(sub.topic, partition, mode, position, () => sub.conn.closed);
  }

  /**
   * The offset a partition resolves `mode` to (EARLIEST, LATEST, or TIMESTAMP with `position` in
   * ms: the first record appended at or after it, else the log end). Retries while the partition
   * restarts, for about 30 s or until `abandon()` says so.
   */
  async resolveOffset(topic: Topic, partition: number, mode: FetchMode, position = 0, abandon: () => boolean = () => false): Promise<number> {
    // Ask the partition to resolve it (a fetch of zero records answers with its start offset).
    for (let attempt = 0; ; attempt++) {
      const actor = topic.actors[partition]!;
      const r = await new Promise<number | null>((resolve) => {
        const fetchId = actor.fetch(mode, position, 0, 0, 0, {
          data: (_records, _count, next) => resolve(next),
          failed: () => resolve(null),
        });
        if (fetchId === 0) resolve(null);
        else this.markActor(actor);
      });
      if (r !== null) return r;
      if (abandon() || attempt > 300) throw new WeirError(ErrorCode.PARTITION_UNAVAILABLE, `partition ${topic.name}/${partition} is unavailable`, { retryable: true });
      await new Promise((res) => setTimeout(res, 100));
    }
  }

  /** A cursor is done (unsubscribed, revoked, reassigned, connection gone): no more fetches, and its standing one ends. */
  stopCursor(sub: Subscription, c: Cursor): void {
    c.active = false;
    if (c.retry) clearTimeout(c.retry);
    this.cancelFetch(sub, c);
  }

  /** End the cursor's fetch in flight, if any (answers still on their way are dropped by the handle). */
  private cancelFetch(sub: Subscription, c: Cursor): void {
    if (c.fetchId === 0) return;
    const actor = sub.topic.actors[c.partition]!;
    actor.cancelFetch(c.fetchId);
    c.fetchId = 0;
    this.markActor(actor);
  }

  /** A cursor stops because its socket is over the bound: resumed (every cursor of the connection) once it is not. */
  private pauseDelivery(sub: Subscription, c: Cursor): void {
    sub.conn.deliveryPaused = true;
    if (channels.gatewayBackpressure.hasSubscribers) channels.gatewayBackpressure.publish({ conn: sub.conn.id, sub: sub.id, partition: c.partition });
  }

  private resumeDelivery(conn: Connection): void {
    conn.deliveryPaused = false;
    for (const sub of conn.subs.values()) for (const c of sub.cursors.values()) this.pump(sub, c);
  }

  /** Issue the next fetch for a cursor if it has credit, no fetch in flight, and the socket keeps up. */
  pump(sub: Subscription, c: Cursor): void {
    if (!c.active || c.fetchId !== 0 || c.credits <= 0 || sub.conn.closed) return;
    if (this.overBound(sub.conn)) {
      this.pauseDelivery(sub, c);
      return; // resumed by the drain handler, or after the flush if uWS took everything
    }
    const actor = sub.topic.actors[c.partition]!;
    // Standing: while this cursor keeps up, the partition pushes each commit to it until the
    // credit (or maxFetchBytes, or longPollMs) given here is spent; then the next pump asks again,
    // with the credit and the socket's back-pressure as they are by then.
    const fetchId = actor.fetch(FetchMode.OFFSET, c.next, this.config.maxFetchBytes, c.credits, this.config.longPollMs, {
      data: (records, count, next, end, more) => {
        if (!more) c.fetchId = 0;
        if (!c.active) return;
        c.end = end;
        if (count > 0) {
          // Checked before every push, not only when a fetch is issued: a standing fetch answers on
          // its own, and many answers can land in one turn, before the outbox reaches the socket.
          // Over the bound, this answer is dropped (c.next stays: it is read again on resume) and
          // the standing fetch ends, so the connection holds at most one frame past the bound.
          if (this.overBound(sub.conn)) {
            this.cancelFetch(sub, c);
            this.pauseDelivery(sub, c);
            return;
          }
          // time: expired records are skipped; only topics with a ttlMs or weir- records can have any.
          // A deliver is sent even when all of them expired (count 0): `next` lets the client
          // commit past them, or a group would re-read them forever. Credit counts delivered ones.
          const topic = sub.topic;
          if (topic.config.ttlMs !== null || topic.hasControlRecords) {
            const live = dropExpired(records, count, topic.config.ttlMs, Date.now());
            if (live !== null) {
              records = live.records;
              count = live.count;
            }
          }
          this.sendBytes(sub.conn, encodeDeliverFrame({ sub: sub.id, topic: topic.name, partition: c.partition, count, next }, records, this.frameMemory), true);
          c.next = next;
          c.credits -= count;
        }
        if (!more) this.pump(sub, c);
      },
      failed: (code, message, start, end) => {
        c.fetchId = 0;
        if (!c.active) return;
        if (code === ErrorCode.DATA_LOSS && end > c.next) {
          // Damaged on disk: tell the subscriber which offsets it will never get, in order with its
          // deliveries, and go on after them (the SDK reports it, and skips or stops as configured).
          this.sendError(sub.conn, undefined, fetchFailure(sub.topic, c.partition, code, message, start, end), sub.id);
          c.next = end;
          this.pump(sub, c);
          return;
        }
        if (code === ErrorCode.OFFSET_OUT_OF_RANGE && c.next < start) c.next = start; // retention deleted it: skip ahead
        else if (code === ErrorCode.OFFSET_OUT_OF_RANGE && c.next > end) {
          // A start (from, or a group's commit) past the log end: said once, then read from the end
          // (Kafka's auto.offset.reset=latest) rather than asking again forever.
          const details = { partition: c.partition, offset: c.next, start, end };
          this.sendError(sub.conn, undefined, new WeirError(ErrorCode.OFFSET_OUT_OF_RANGE, `offset ${c.next} of ${sub.topic.name}/${c.partition} is past the log end ${end}; delivery starts at the end`, { details }), sub.id);
          c.next = end;
          c.end = end;
          this.pump(sub, c);
          return;
        }
        this.retryLater(sub, c);
      },
    }, true);
    if (fetchId === 0) {
      this.retryLater(sub, c);
      return;
    }
    c.fetchId = fetchId;
    this.markActor(actor);
  }

  private retryLater(sub: Subscription, c: Cursor): void {
    if (c.retry) return;
    c.retry = setTimeout(() => {
      c.retry = null;
      this.pump(sub, c);
    }, 100);
  }

  private credit(conn: Connection, f: Frame): void {
    const sub = this.subOf(conn, f);
    const partition = nonNegInt(f.partition, 'partition');
    const credits = nonNegInt(f.credits, 'credits');
    const c = sub.cursors.get(partition);
    if (!c) return; // not (or no longer) assigned here: the credit lapses with the assignment
    c.credits = Math.min(c.credits + credits, MAX_CREDITS); // clamped: see docs/protocol.md, Flow control
    this.pump(sub, c);
  }

  private commit(conn: Connection, id: number, f: Frame): Promise<void> | void {
    const sub = this.subOf(conn, f);
    const group = sub.group;
    if (group === undefined) throw badRequest('sub', 'commit needs a subscription with a group');
    if (!Array.isArray(f.offsets)) throw badRequest('offsets', '"offsets" must be an array of [partition, nextOffset]');
    const entries: Array<[number, number]> = [];
    for (const e of f.offsets as unknown[]) {
      if (!Array.isArray(e) || e.length !== 2) throw badRequest('offsets', 'each entry must be [partition, nextOffset]');
      const p = this.partitionOf(sub.topic, e[0]);
      entries.push([p, nonNegInt(e[1], 'offsets')]);
    }
    this.checkOwned(sub, group, entries);
    // Offsets up to the log end the partition last reported to this subscription are known to be
    // valid (the usual commit: what was delivered); anything past it is checked with the partition.
    let known = true;
    for (const [p, o] of entries) if (o > (sub.cursors.get(p)?.end ?? 0)) known = false;
    if (known && sub.checkingCommit === null) {
      this.deps.offsets.commit(group, sub.topic.name, entries);
      this.send(conn, { op: 'result', id });
      return;
    }
    const checked = (sub.checkingCommit ?? Promise.resolve()).catch(() => undefined).then(async () => {
      for (const [p, o] of entries) {
        if (o <= (sub.cursors.get(p)?.end ?? 0)) continue;
        const { start, end } = await this.logRange(sub.topic, p);
        if (o > end) {
          throw new WeirError(ErrorCode.OFFSET_OUT_OF_RANGE, `cannot commit offset ${o} of ${sub.topic.name}/${p}: the log ends at ${end}`, { details: { partition: p, offset: o, start, end } });
        }
      }
      if (!conn.subs.has(sub.id)) throw new WeirError(ErrorCode.UNKNOWN_SUBSCRIPTION, `no subscription ${sub.id} on this connection`, { details: { sub: sub.id } });
      this.checkOwned(sub, group, entries); // the group may have rebalanced meanwhile
      this.deps.offsets.commit(group, sub.topic.name, entries);
      this.send(conn, { op: 'result', id });
    });
    sub.checkingCommit = checked;
    const done = (): void => {
      if (sub.checkingCommit === checked) sub.checkingCommit = null;
    };
    checked.then(done, done);
    return checked;
  }

  private checkOwned(sub: Subscription, group: string, entries: Array<[number, number]>): void {
    for (const [p] of entries) {
      if (!this.deps.groups.owns(group, sub.topic.name, sub.memberId, p)) {
        throw new WeirError(ErrorCode.NOT_ASSIGNED, `partition ${sub.topic.name}/${p} is not assigned to this member (rebalanced)`, { details: { partition: p } });
      }
    }
  }

  /** A partition's log start and end now (one question to its actor; PARTITION_UNAVAILABLE while it restarts). */
  private logRange(topic: Topic, partition: number): Promise<{ start: number; end: number }> {
    return new Promise((resolve, reject) => {
      const actor = topic.actors[partition]!;
      // A fetch of zero records from the earliest position answers with the log start and end.
      const fetchId = actor.fetch(FetchMode.EARLIEST, 0, 0, 0, 0, {
        data: (_records, _count, next, end) => resolve({ start: next, end }),
        failed: (code, message) => reject(new WeirError(code, message, { retryable: RETRYABLE.has(code) })),
      });
      if (fetchId === 0) reject(new WeirError(ErrorCode.PARTITION_UNAVAILABLE, `partition ${topic.name}/${partition} is restarting; retry`, { retryable: true }));
      else this.markActor(actor);
    });
  }

  private revoked(conn: Connection, f: Frame): void {
    const sub = this.subOf(conn, f);
    if (sub.group === undefined) return;
    const generation = nonNegInt(f.generation, 'generation');
    this.deps.groups.revoked(sub.group, sub.topic.name, sub.memberId, generation);
  }

  private unsubscribe(conn: Connection, id: number, f: Frame): void {
    const sub = this.subOf(conn, f);
    this.dropSub(sub);
    for (const l of this.unsubscribeListeners) l(conn, sub.id);
    this.send(conn, { op: 'result', id });
  }

  private dropSub(sub: Subscription): void {
    sub.stopCursors();
    sub.conn.subs.delete(sub.id);
    if (sub.group !== undefined) this.deps.groups.leave(sub.group, sub.topic.name, sub.memberId);
  }

  private onClose(conn: Connection): void {
    conn.closed = true;
    conn.outbox.clear();
    this.conns.delete(conn);
    this.overConns.delete(conn);
    for (const sub of [...conn.subs.values()]) this.dropSub(sub);
    for (const l of this.closeListeners) l(conn);
  }

  // ------------------------------------------------------------------ output

  /** Encode now (copying any shared-memory view), send corked with the rest of this tick's frames. */
  send(gconn: Session, frame: Frame): void {
    if ((gconn as Connection).closed) return;
    this.sendBytes(gconn, encodeFrame(frame));
  }

  /** send() of a frame already encoded (and not a view of memory that changes before the flush). */
  private sendBytes(gconn: Session, bytes: Uint8Array, delivery = false): void {
    const conn = gconn as Connection;
    if (conn.closed) return;
    conn.outbox.push(bytes);
    (delivery ? this.dirtyDeliveries : this.dirty).add(conn);
    this.scheduleFlush();
  }

  /**
   * Send at once (after what this connection already has queued), not at the end of the turn: for
   * frames a client is waiting on to make progress, e.g. queue deliveries, whose consumers hold at
   * most `prefetch` messages, so every ack → redeliver cycle is latency they cannot hide.
   */
  sendNow(gconn: Session, frame: Frame): void {
    const conn = gconn as Connection;
    if (conn.closed) return;
    conn.outbox.push(encodeFrame(frame));
    this.sendOutbox(conn);
  }

  sendError(conn: Session, id: number | undefined, err: unknown, sub?: number): void {
    let e: WeirError;
    if (WeirError.isWeirError(err) && WIRE_CODES.has(err.code)) e = err;
    else if (WeirError.isWeirError(err)) {
      // A module's own code (a supervisor's, a log's…) that nothing mapped to a wire code: a bug.
      console.error('weir gateway: unmapped error code', err);
      e = new WeirError(ErrorCode.INTERNAL, `internal error: ${err.code}: ${err.message}`);
    } else {
      // A bug, not the client's fault: say so, keep serving.
      console.error('weir gateway: internal error', err);
      e = new WeirError(ErrorCode.INTERNAL, `internal error: ${(err as Error)?.message ?? String(err)}`);
    }
    const frame: Frame = { op: 'error', code: e.code, message: e.message, retryable: e.retryable || RETRYABLE.has(e.code) };
    if (id !== undefined) frame.id = id;
    if (sub !== undefined) frame.sub = sub;
    if (e.details !== undefined) frame.details = e.details;
    this.send(conn, frame);
  }

  private markActor(actor: PartitionRef): void {
    this.dirtyActors.add(actor);
    this.scheduleFlush();
  }

  /**
   * Publish every touched ring and send every queued frame once per event-loop turn: requests that
   * arrive together share one publish and at most one wake-up per partition thread (an
   * Atomics.notify costs tens of microseconds here), and their answers share one corked write.
   */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flushTurn);
  }

  private readonly flushTurn = (): void => {
    // An actor hosted on this thread answers inside flush(), and an answer may write to an actor
    // again (a subscription's next fetch), even to one already flushed: flush again, then send
    // every answer in this same turn. Bounded: answers that keep asking (fetches that return at
    // once) go on next turn, after the sockets have been read.
    for (let round = 0; round < MAX_FLUSH_ROUNDS && this.dirtyActors.size > 0; round++) this.dirtyActors.drain(flushActor);
    this.flushScheduled = false;
    this.flushOutboxes();
    if (this.dirtyActors.size > 0) this.scheduleFlush();
  };

  private flushOutboxes(): void {
    const framesTaken = this.frameArena.used;
    // A connection in both sets is sent once, with its frames in the order they were queued.
    this.dirtyDeliveries.drain(this.sendOutboxOf);
    this.dirty.drain(this.sendOutboxOf);
    // Every queued frame is sent (copied by uWS) or dropped with its connection: reuse their memory,
    // unless a frame was taken while sending (then it waits in an outbox for the next flush).
    if (this.frameArena.used === framesTaken) this.frameArena.reset();
  }

  private readonly sendOutboxOf = (conn: Connection): void => this.sendOutbox(conn);

  /** Send every frame queued for `conn`, corked together. */
  private sendOutbox(conn: Connection): void {
    const n = conn.outbox.length;
    if (conn.closed || n === 0) return;
    // uWS corks a lone send itself: no call back into JavaScript for one frame.
    if (n === 1) conn.ws.send(conn.outbox.at(0), true);
    else {
      this.corking = conn;
      this.corkCount = n;
      conn.ws.cork(this.sendCorked);
      this.corking = null;
    }
    // A send over the backpressure limit closes the socket at once (onClose emptied the outbox).
    if (conn.closed) return;
    conn.outbox.dropFirst(n);
    // Cursors paused while this turn's frames were still queued here: the socket may have taken
    // them all, and then no drain event would come to resume them.
    if (conn.deliveryPaused && conn.ws.getBufferedAmount() <= this.config.maxBufferedBytes) this.resumeDelivery(conn);
  }

  private readonly sendCorked = (): void => {
    const conn = this.corking!;
    for (let i = 0; i < this.corkCount && !conn.closed; i++) conn.ws.send(conn.outbox.at(i), true);
  };

  // ------------------------------------------------------------------ helpers

  private topicOf(f: Frame): Topic {
    const name = f.topic;
    if (typeof name !== 'string') throw badRequest('topic', '"topic" must be a string');
    const topic = this.deps.topics.get(name);
    if (!topic) throw new WeirError(ErrorCode.TOPIC_NOT_FOUND, `topic ${JSON.stringify(name.slice(0, 60))} does not exist`);
    return topic;
  }

  private partitionOf(topic: Topic, v: unknown): number {
    if (typeof v !== 'number' || !Number.isInteger(v)) throw badRequest('partition', '"partition" must be an integer');
    if (v < 0 || v >= topic.partitions) {
      throw new WeirError(ErrorCode.PARTITION_NOT_FOUND, `topic ${topic.name} has partitions 0..${topic.partitions - 1}, not ${v}`);
    }
    return v;
  }

  private subOf(conn: Connection, f: Frame): Subscription {
    const id = nonNegInt(f.sub, 'sub');
    const sub = conn.subs.get(id);
    if (!sub) throw new WeirError(ErrorCode.UNKNOWN_SUBSCRIPTION, `no subscription ${id} on this connection`, { details: { sub: id } });
    return sub;
  }

  /** Bytes this connection holds in the broker: uWS's unsent buffer plus frames queued this turn. */
  private bufferedBytes(conn: Connection): number {
    return conn.ws.getBufferedAmount() + conn.outbox.bytes();
  }

  /** Whether the connection is over maxBufferedBytes (then its slow-consumer clock runs). */
  private overBound(conn: Connection): boolean {
    if (this.bufferedBytes(conn) <= this.config.maxBufferedBytes) return false;
    this.noteOverBound(conn);
    return true;
  }

  private noteOverBound(conn: Connection): void {
    if (conn.overSince !== 0 || conn.closed) return;
    conn.overSince = Date.now();
    this.overConns.add(conn);
    if (this.slowTimer === null) {
      const every = Math.max(10, Math.min(1000, Math.floor(this.config.slowConsumerCloseMs / 4)));
      this.slowTimer = setInterval(this.checkSlowConsumers, every);
      this.slowTimer.unref();
    }
  }

  /**
   * Connections seen over their bound: forget those back under it, close those over it for
   * slowConsumerCloseMs. Only a socket that (nearly) stopped reading gets there: one that reads
   * even slowly drops under the bound with each frame it takes, and the drain handler resets it.
   */
  private readonly checkSlowConsumers = (): void => {
    const now = Date.now();
    const bound = this.config.maxBufferedBytes;
    for (const conn of this.overConns) {
      const bytes = conn.closed ? 0 : this.bufferedBytes(conn);
      if (bytes <= bound) {
        conn.overSince = 0;
        this.overConns.delete(conn);
        continue;
      }
      const overMs = now - conn.overSince;
      if (overMs < this.config.slowConsumerCloseMs) continue;
      if (channels.gatewaySlowConsumer.hasSubscribers) channels.gatewaySlowConsumer.publish({ conn: conn.id, bufferedBytes: bytes, overMs });
      // The close frame goes after what is buffered; uWS calls onClose at once (which forgets the
      // connection and its subscriptions) and drops the socket if the client never reads it.
      conn.ws.end(1008, `${ErrorCode.SLOW_CONSUMER}: ${bytes} bytes unsent for ${overMs} ms (limit ${bound})`);
    }
    if (this.overConns.size === 0 && this.slowTimer !== null) {
      clearInterval(this.slowTimer);
      this.slowTimer = null;
    }
  };
  /** Connections over their bound, for checkSlowConsumers. */
  private readonly overConns = new Set<Connection>();
  private slowTimer: ReturnType<typeof setInterval> | null = null;

  private health(res: HttpResponse): void {
    let up = 0;
    let total = 0;
    for (const t of this.deps.topics.all()) {
      for (const a of t.actors) {
        total++;
        if (a.available) up++;
      }
    }
    // Why each partition that is not up is not: given up (failed) or restarting, with its last error.
    const down = up === total ? [] : this.deps.topics.unavailable();
    const ok = up === total && !this.closing;
    const health: Record<string, unknown> = { status: ok ? 'ok' : this.closing ? 'stopping' : 'degraded', partitions: { up, total } };
    if (down.length > 0) health.unavailable = down;
    const body = JSON.stringify(health);
    res.cork(() => {
      res.writeStatus(ok ? '200 OK' : '503 Service Unavailable').writeHeader('content-type', 'application/json').end(body);
    });
  }
}

/**
 * The error for a request to a partition whose actor is down: what failed, if the broker gave up on
 * the partition (its actor kept failing: FailedPartitions), else "restarting; retry".
 */
function unavailable(topic: string, partition: number, actor: PartitionRef): WeirError {
  const f = actor.failure;
  if (f !== null) return new WeirError(f.code, f.message, { retryable: RETRYABLE.has(f.code), details: { topic, partition } });
  return new WeirError(ErrorCode.PARTITION_UNAVAILABLE, `partition ${topic}/${partition} is restarting; retry`, { retryable: true });
}

/**
 * One chunk's records for actor.produce(), which calls `fill` before it returns: one object reused
 * for every chunk, where a closure per chunk was an allocation.
 */
class ChunkRuns {
  private records: Uint8Array = NO_RECORDS;
  private index: RecordIndex | null = null;
  private nextSame: Int32Array = NO_CHAIN;
  private first = 0;
  private stop = 0;

  set(records: Uint8Array, index: RecordIndex, nextSame: Int32Array, first: number, stop: number): void {
    this.records = records;
    this.index = index;
    this.nextSame = nextSame;
    this.first = first;
    this.stop = stop;
  }

  /** Let go of the batch (a view of uWS's message memory). */
  clear(): void {
    this.records = NO_RECORDS;
    this.index = null;
  }

  readonly fill = (sink: ByteSink): void => appendRuns(sink, this.records, this.index!, this.nextSame, this.first, this.stop);
}
const NO_RECORDS = new Uint8Array(0);
const NO_CHAIN = new Int32Array(0);

/**
 * Append the records of one chain (first → … → stop) with one copy per contiguous run: records
 * bound for the same partition usually sit next to each other (always, for unkeyed batches).
 */
function appendRuns(sink: ByteSink, records: Uint8Array, index: RecordIndex, nextSame: Int32Array, first: number, stop: number): void {
  let runStart = index.start[first]!;
  let runEnd = runStart + index.size[first]!;
  for (let j = nextSame[first]!; j !== stop; j = nextSame[j]!) {
    const at = index.start[j]!;
    if (at !== runEnd) {
      sink.append(records, runStart, runEnd);
      runStart = at;
    }
    runEnd = at + index.size[j]!;
  }
  sink.append(records, runStart, runEnd);
}


/**
 * The error a failed fetch of `topic`/`partition` answers with: OFFSET_OUT_OF_RANGE names the log's
 * [start, end]; DATA_LOSS the lost offsets [from, to) (its reader continues at `to`).
 */
function fetchFailure(topic: Topic, partition: number, code: ErrorCode, message: string, start: number, end: number): WeirError {
  const details = code === ErrorCode.DATA_LOSS ? { topic: topic.name, partition, from: start, to: end } : { start, end };
  return new WeirError(code, message, { retryable: RETRYABLE.has(code), details });
}

function shuttingDown(): WeirError {
  return new WeirError(ErrorCode.SHUTTING_DOWN, 'broker is stopping; retry against it once it is back', { retryable: true });
}

