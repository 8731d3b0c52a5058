/**
 * The produce path: validate a batch, apply the record-format rules (idempotent producers' headers,
 * the control interceptors of `weir-` records), route its records by key into the partitions'
 * input rings without building an object per message, and settle the request once every chunk is
 * acknowledged. Used by the `produce` op of every front door and by the features (append).
 */
import { WeirError, badRequest } from '../common/errors.js';
import { ErrorCode, RETRYABLE } from '../protocol/codes.js';
import { BatchFormatError, RecordIndex, scanBatch } from '../protocol/record.js';
import { IDEMPOTENT_PRODUCE_HEADER_BYTES, PRODUCE_HEADER_BYTES } from '../partition/protocol.js';
import type { ByteSink, ProduceWaiter, ProducerSequence } from '../partition/ref.js';
import { idempotentFields, markIdempotent, refuseScheduled, withProducerHeaders } from './producer-batch.js';
import { Router } from './router.js';
import { unavailable } from './reads.js';
import { partitionOf, topicOf } from './validate.js';
import type { ControlGuard, ControlInterceptor, ControlInterceptorRequest, ProduceOutcome, ProducerGuard } from './feature-host.js';
import type { Frame, ProducePart, Session } from './session.js';
import { topicNotFound, type Topic, type TopicRegistry } from './topics/registry.js';
import type { Turn } from './turn.js';

export interface ProduceConfig {
  /** Largest single record (header + key + value + headers). */
  maxMessageBytes: number;
  maxRecordsPerBatch: number;
  /** Unanswered produce bytes per session. */
  maxInFlightBytes: number;
}

/** How a failed client request is answered (BrokerCore.sendError). */
export type FailRequest = (session: Session, id: number, error: WeirError) => void;

/**
 * Admits a client's batch of `bytes` for `topic` (quotas): throws to refuse it, or returns how long
 * to hold its answer back (0: answer at once).
 */
export type ProduceAdmission = (session: Session, topic: Topic, bytes: number) => number;

export class ProducePath {
  private readonly index = new RecordIndex();
  private readonly router = new Router();
  private readonly chunkRuns = new ChunkRuns();
  private readonly controlInterceptors: ControlInterceptor[] = [];
  private readonly controlGuards: ControlGuard[] = [];
  private controlChain: ((request: ControlInterceptorRequest) => void) | null = null;
  private admission: ProduceAdmission | null = null;
  /** Answers held back for a byte-rate quota: each releases (answers) itself. */
  private readonly held = new Set<() => void>();
  private producerGuard: ProducerGuard = (_session, producerId) => {
    throw badRequest('producerId', `producer id ${producerId} was not handed out by init_producer on this broker`);
  };

  constructor(
    private readonly config: ProduceConfig,
    private readonly topics: TopicRegistry,
    private readonly turn: Turn,
    private readonly failRequest: FailRequest,
  ) {}

  /** The `produce` op: answered through the session's port (answerProduce) or failRequest. */
  produce(session: Session, id: number, f: Frame): void {
    const topic = topicOf(this.topics, f);
    const raw = f.records;
    if (!(raw instanceof Uint8Array)) throw badRequest('records', '"records" must be a byte string holding a record batch');
    let records = raw;
    let forced: number | undefined;
    if (f.partition !== undefined) {
      forced = partitionOf(topic, f.partition);
    }
    // Exactly-once append (docs/exactly-once.md); undefined for plain produces.
    const idem: ProducerSequence | undefined = idempotentFields(f, session, this.producerGuard);
    if (session.inFlightBytes > 0 && session.inFlightBytes + records.length > this.config.maxInFlightBytes) {
      throw new WeirError(ErrorCode.THROTTLED, `connection has ${session.inFlightBytes} produce bytes in flight (limit ${this.config.maxInFlightBytes}); wait for acknowledgements`, { retryable: true });
    }
    this.scan(records);
    if (this.index.controlCount > 0) for (const guard of this.controlGuards) guard(session, topic, records, this.index);
    if (idem !== undefined) {
      if (this.index.controlCount > 0) refuseScheduled(records, this.index);
      records = withProducerHeaders(records, this.index.count, idem);
      this.scan(records);
      markIdempotent(records);
    }
    // Idempotent batches go straight to their partition (the whole batch is one deduplicated unit).
    const interceptor = idem === undefined && this.index.controlCount > 0 ? this.controlChain : null;
    // Read the size now: `records` may view the front door's message buffer, which is gone once
    // this handler returns (uWS detaches it). Anything that keeps records past it must copy them.
    const bytes = records.length;
    const holdMs = this.admission === null ? 0 : this.admission(session, topic, bytes);
    session.inFlightBytes += bytes;
    session.inFlightRequests++;
    const outcome = new ProduceAnswer(this.failRequest, session, id, bytes, holdMs > 0 ? Date.now() + holdMs : 0, this.held);
    try {
      if (interceptor) interceptor({ topic, records, index: this.index, forced, outcome, session });
      else this.write(topic, records, forced, outcome, idem);
    } catch (err) {
      session.inFlightBytes -= bytes;
      session.inFlightRequests--;
      throw err;
    }
  }

  /**
   * Validate a client's record batch and index it into `index` with the broker's limits
   * (maxMessageBytes per record; at most `maxRecords`, default maxRecordsPerBatch). Throws WeirError
   * MESSAGE_TOO_LARGE for an oversize record, BAD_BATCH for any other defect.
   */
  scanBatch(records: Uint8Array, index: RecordIndex, maxRecords = this.config.maxRecordsPerBatch): void {
    scanProducedBatch(records, index, { maxMessageBytes: this.config.maxMessageBytes, maxRecords: Math.min(maxRecords, this.config.maxRecordsPerBatch) });
  }

  /**
   * Append a batch to a topic from inside the broker (dead letters, due delayed messages, committed
   * transactions): the same validation, routing and acknowledgement as a client's produce, no
   * session budget. Resolves with the parts (and route) of the produce answer. Records are not
   * inspected for `weir-` headers here (the caller produced them).
   */
  append(topic: Topic | string, records: Uint8Array, partition?: number): Promise<{ parts: ProducePart[]; route?: Uint8Array }> {
    return new Promise((resolve, reject) => {
      const t = typeof topic === 'string' ? this.topics.get(topic) : topic;
      if (!t) throw topicNotFound(String(topic));
      if (partition !== undefined) partitionOf(t, partition);
      this.scan(records);
      let error: WeirError | null = null;
      this.write(t, records, partition, {
        failed: (e) => (error = e),
        settled: (failed, parts, route) => (failed ? reject(error) : resolve(route ? { parts, route } : { parts })),
      });
    });
  }

  /** Answer every produce held back for a quota now (the broker is stopping: its data is written). */
  releaseHeld(): void {
    for (const release of [...this.held]) release();
  }

  /** One admission check for every client batch (the core's quotas). */
  setAdmission(admission: ProduceAdmission): void {
    this.admission = admission;
  }

  /**
   * Exactly-once append: asked per idempotent produce, before the batch goes anywhere, whether the
   * session may use the producer id it names (it throws the refusal). Unset: no id is valid.
   */
  setProducerGuard(guard: ProducerGuard): void {
    this.producerGuard = guard;
  }

  /**
   * Check every produce request whose batch has records with `weir-` headers, idempotent ones too,
   * before anything of it is written: a guard throws to refuse the request.
   */
  addControlGuard(guard: ControlGuard): void {
    this.controlGuards.push(guard);
  }

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

  /** Validate and index a producer batch into this.index; throws BAD_BATCH / MESSAGE_TOO_LARGE. */
  private scan(records: Uint8Array): void {
    this.scanBatch(records, this.index);
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
    if (index.controlCount > 0 && !topic.hasControlRecords) this.topics.markControlRecords(topic);
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
      this.turn.markActor(actor);
    }
    pending.release();
  }
}

/**
 * Validate a produced record batch and index it into `index` (pure): at most `maxRecords` records
 * of at most `maxMessageBytes` each. Throws WeirError MESSAGE_TOO_LARGE for an oversize record,
 * BAD_BATCH for any other defect.
 */
export function scanProducedBatch(records: Uint8Array, index: RecordIndex, limits: { maxMessageBytes: number; maxRecords: number }): void {
  try {
    scanBatch(records, index, { maxRecordBytes: limits.maxMessageBytes, maxRecords: limits.maxRecords });
  } catch (err) {
    if (err instanceof BatchFormatError) {
      if (err.defect === 'RECORD_TOO_LARGE') {
        throw new WeirError(ErrorCode.MESSAGE_TOO_LARGE, `record ${err.recordIndex} is larger than maxMessageBytes (${limits.maxMessageBytes})`, { details: { record: err.recordIndex } });
      }
      throw new WeirError(ErrorCode.BAD_BATCH, err.message, { details: { defect: err.defect, record: err.recordIndex, position: err.position } });
    }
    throw err;
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

/** How a client's produce request ends: its answer or error frame, and its bytes out of the session's in-flight count. */
class ProduceAnswer implements ProduceOutcome {
  constructor(
    private readonly failRequest: FailRequest,
    private readonly session: Session,
    private readonly id: number,
    private readonly bytes: number,
    /** Answer no earlier than this (ms since the epoch; 0: at once): a principal over its byte rate. */
    private readonly holdUntilMs: number,
    /** The answers being held now (answered at once when the broker stops). */
    private readonly held: Set<() => void>,
  ) {}

  failed(error: WeirError): void {
    this.failRequest(this.session, this.id, error);
  }

  settled(error: boolean, parts: ProducePart[], route: Uint8Array | undefined): void {
    const waitMs = error || this.holdUntilMs === 0 ? 0 : this.holdUntilMs - Date.now();
    if (waitMs <= 0) {
      this.answer(error, parts, route);
      return;
    }
    // Held, the answer keeps its bytes in the session's in-flight count: a producer keeping within
    // its in-flight window slows to the quota, and one that does not is refused THROTTLED.
    const release = (): void => {
      clearTimeout(timer);
      this.held.delete(release);
      this.answer(error, parts, route);
    };
    const timer = setTimeout(release, waitMs);
    timer.unref();
    this.held.add(release);
  }

  private answer(error: boolean, parts: ProducePart[], route: Uint8Array | undefined): void {
    this.session.inFlightBytes -= this.bytes;
    this.session.inFlightRequests--;
    if (!error && !this.session.closed) this.session.port.answerProduce(this.id, parts, route);
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

  /** Let go of the batch (a view of the front door's message memory). */
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
