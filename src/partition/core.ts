/**
 * The partition actor's behaviour, run inside its worker thread: drain the input ring, append every
 * PRODUCE chunk to the log, commit the group with one write (and one fdatasync under `always`), then
 * acknowledge every chunk and answer fetches from the output ring. It is the only writer of its log.
 *
 * Threading is not this class's business: it is driven by `step()` (see partition-worker/main.ts),
 * and only touches the log and the two rings, so it can be driven from a test thread as well.
 */
import { readU32 } from '../protocol/record.js';
import { ErrorCode } from '../protocol/codes.js';
import {
  ACK_BYTES,
  DATA_HEADER_BYTES,
  DataFlag,
  FAIL_HEADER_BYTES,
  FetchFlag,
  FailKind,
  FetchMode,
  IDEMPOTENT_PRODUCE_HEADER_BYTES,
  In,
  Out,
  PRODUCE_HEADER_BYTES,
  errorIndex,
} from './protocol.js';
import type { PartitionStore, ReadResult } from '../log/index.js';
import type { RingReader, RingWriter } from '../ring/index.js';
import { ProducerStateTable } from './producer-state.js';

const TWO_32 = 0x1_0000_0000;
const encoder = new TextEncoder();

/** Ring ends the core talks through; the doorbell side is injected so tests can drive it. */
export interface PartitionPorts {
  input: RingReader;
  output: RingWriter;
  /** After releasing input space: wake a gateway waiting for space. */
  inputReleased(): void;
  /** After publishing output: wake the gateway if it waits. */
  outputPublished(): void;
  /** Block until the output ring has room for `bytes` (bounded wait; returns false on timeout). */
  waitForOutputSpace(bytes: number, timeoutMs: number): boolean;
}

interface Fetch {
  id: number;
  offset: number;
  /** What the fetch may still be answered with (for a standing fetch: over all its answers). */
  maxBytes: number;
  maxRecords: number;
  deadline: number;
  /** Stays open after answering with records (FetchFlag.STANDING): see sendData. */
  standing: boolean;
}

/** A chunk appended but not yet flushed: acknowledged once the group commit succeeds. */
interface PendingAck {
  chunkId: number;
  base: number;
  count: number;
}

export interface PartitionCoreOptions {
  /** Stop draining input into one group commit past this many bytes (bounds ack latency). */
  maxGroupBytes: number;
  /** Cap on the bytes of one DATA answer (must fit the output ring comfortably). */
  maxFetchBytes: number;
  retentionCheckMs: number;
  /**
   * After this long without input or answers, free the read buffer and release the log's buffers
   * and fds (PartitionStore.releaseIdle); the next request allocates and reopens them. Default
   * DEFAULT_IDLE_RELEASE_MS.
   */
  idleReleaseMs?: number;
}

/** How long a partition stays quiet before it gives its buffers and fds back (idleReleaseMs). */
export const DEFAULT_IDLE_RELEASE_MS = 10_000;

/** Exactly-once append: where the producer state is snapshotted (producer-state-store.ts). */
export interface ProducerSnapshots {
  maybeSnapshot(table: ProducerStateTable, durableOffset: number, now: number): void;
  write(table: ProducerStateTable, offset: number): void;
  /** Before the partition's first idempotent append (at `offset`): durably start snapshotting; throws if it cannot. */
  beginTracking(table: ProducerStateTable, offset: number): void;
}

export class PartitionCore {
  private pending: PendingAck[] = [];
  private pendingCount = 0;
  private parked: Fetch[] = [];
  private nextRetentionCheck = 0;
  /**
   * Fetches read into this and are copied straight on into the output ring: no allocation per
   * fetch. Allocated by the first read, dropped when idle (releaseIdle).
   */
  private readBuffer: Uint8Array | null = null;
  private readonly idleReleaseMs: number;
  /**
   * When the core last appended to, read from or synced its log: answers without records (a long
   * poll's deadline) do not count, so a partition whose subscribers poll it but get nothing is idle.
   */
  private lastActive = -Infinity;
  /** The log was appended to, read or synced in this step. */
  private usedLog = false;
  /** releaseIdle() ran and the log was not used since. */
  private released = false;
  /** Set when a FAIL was written during input draining (it needs publishing). */
  private failedInStep = false;

  constructor(
    private readonly log: PartitionStore,
    private readonly ports: PartitionPorts,
    private readonly opts: PartitionCoreOptions,
    /** Idempotent producers' batches held by this partition (rebuilt from the log at open). */
    readonly producers: ProducerStateTable = new ProducerStateTable(),
    private readonly snapshots: ProducerSnapshots | null = null,
  ) {
    this.idleReleaseMs = opts.idleReleaseMs ?? DEFAULT_IDLE_RELEASE_MS;
  }

  /**
   * Free the read buffer and the log's buffers and fds now (the host calls it right after opening
   * the partition, which is then idle until its first request); step() calls it once the log was
   * not used for idleReleaseMs. Everything is allocated and reopened again on demand.
   */
  releaseIdle(): void {
    this.readBuffer = null;
    if (this.pendingCount === 0) this.pending = [];
    this.log.releaseIdle();
    this.released = true;
  }

  /** Bytes of buffers (the read buffer, the log's) and fds this partition holds now. */
  heldResources(): { bytes: number; fds: number } {
    const log = this.log.heldResources();
    return { bytes: (this.readBuffer?.byteLength ?? 0) + log.bytes, fds: log.fds };
  }

  /**
   * The earliest time at which `step` has timed work to do (parked fetch deadlines, an interval
   * fsync), and at most a second away (retention, producer-state snapshots, the idle release); once
   * released, no more often than retention is checked: thousands of idle partitions on one thread
   * must not each be stepped every second.
   */
  nextDeadline(now: number): number {
    let d = Math.min(this.released ? Math.max(now + 1000, this.nextRetentionCheck) : now + 1000, this.log.syncDueAt());
    for (const f of this.parked) if (f.deadline < d) d = f.deadline;
    return d;
  }

  /** One turn of the actor. Returns true when it consumed input or answered anything. */
  step(now: number): boolean {
    const { input } = this.ports;
    let consumed = 0;
    let groupBytes = 0;
    let entry: Uint8Array | null;
    const fetches: Fetch[] = [];
    let cancels: number[] | null = null;
    while (groupBytes < this.opts.maxGroupBytes && (entry = input.next()) !== null) {
      consumed++;
      const type = readU32(entry, 0);
      if (type === In.PRODUCE) {
        const chunkId = readU32(entry, 4);
        const count = readU32(entry, 8);
        // append() copies the records out of the ring into the log's group-commit buffer.
        const { baseOffset } = this.log.append(entry, PRODUCE_HEADER_BYTES, entry.length, count);
        this.pendingPush(chunkId, baseOffset, count);
        groupBytes += entry.length;
      } else if (type === In.FETCH) {
        fetches.push(this.parseFetch(entry, now));
      } else if (type === In.CANCEL) {
        (cancels ??= []).push(readU32(entry, 4));
      } else if (type === In.PRODUCE_IDEMPOTENT) {
        this.produceIdempotent(entry);
        groupBytes += entry.length;
      } else {
        throw new Error(`partition: unknown input entry type ${type}`);
      }
    }
    if (consumed > 0) {
      input.release();
      this.ports.inputReleased();
    }
    if (groupBytes > 0) this.usedLog = true;
    let answered = this.commitGroup() || this.failedInStep;
    this.failedInStep = false;
    for (const f of fetches) answered = this.serveFetch(f, now) || answered;
    if (this.parked.length > 0) answered = this.serveParked(now) || answered;
    if (cancels !== null) answered = this.cancelParked(cancels, now) || answered;
    if (this.log.maybeSync(now)) this.usedLog = true;
    this.snapshots?.maybeSnapshot(this.producers, this.log.durableOffset, now);
    if (now >= this.nextRetentionCheck) {
      this.nextRetentionCheck = now + this.opts.retentionCheckMs;
      this.log.applyRetention(now);
    }
    if (answered) this.publish();
    if (this.usedLog) {
      this.usedLog = false;
      this.lastActive = now;
      this.released = false;
    } else if (!this.released && now - this.lastActive >= this.idleReleaseMs) this.releaseIdle();
    return consumed > 0 || answered;
  }

  /**
   * Flush and fsync everything; used at shutdown after the input ring is drained. `handOver`: the
   * log is reopened at once by another host of this process (PartitionStore.close).
   */
  close(handOver = false): void {
    const acked = this.commitGroup();
    const now = Date.now();
    for (const f of this.parked) this.sendData(f, now, true); // final (empty) answers
    // Only when something was written now (each step publishes what it wrote): a partition without
    // rings (gateway-hosted, idle) is not given them just to publish nothing.
    if (acked || this.parked.length > 0) this.publish();
    this.parked = [];
    // Everything is flushed: a snapshot as of the log end makes the next open replay nothing.
    this.snapshots?.write(this.producers, this.log.durableOffset);
    this.log.close({ handOver });
  }

  /**
   * Exactly-once append: append the batch unless this producer's sequence says it is a retry of one
   * already written (then acknowledge the original offsets, after this group's flush like any other
   * chunk) or out of order (then fail it; nothing is written).
   */
  private produceIdempotent(e: Uint8Array): void {
    const chunkId = readU32(e, 4);
    const count = readU32(e, 8);
    const producerId = readU32(e, 16) * TWO_32 + readU32(e, 12);
    const sequence = readU32(e, 20);
    const check = this.producers.check(producerId, sequence, count);
    switch (check.kind) {
      case 'append': {
        if (this.snapshots !== null) {
          try {
            this.snapshots.beginTracking(this.producers, this.log.nextOffset);
          } catch (err) {
            // Without that snapshot a restart would not look for this batch: do not append it.
            this.sendFail(FailKind.PRODUCE, chunkId, storageCode(err),
              `producer ${producerId}: cannot record the partition's producer state: ${err instanceof Error ? err.message : String(err)}; nothing was written`, 0, 0);
            this.failedInStep = true;
            return;
          }
        }
        const torn = this.producers.torn;
        if (torn !== null) {
          this.producers.torn = null; // one chance: the next append (of any kind) would break contiguity
          if (torn.producerId === producerId && torn.firstSeq === sequence && torn.count === count && this.log.nextOffset === torn.baseOffset + torn.survived) {
            // The resend of the batch a power loss cut: its first records are the log's last ones.
            // Append only the rest, so every record is stored once at its original offset.
            let at = IDEMPOTENT_PRODUCE_HEADER_BYTES;
            for (let i = 0; i < torn.survived; i++) at += 4 + readU32(e, at);
            this.log.append(e, at, e.length, count - torn.survived);
            this.producers.record(producerId, sequence, count, torn.baseOffset);
            this.pendingPush(chunkId, torn.baseOffset, count);
            return;
          }
        }
        const { baseOffset } = this.log.append(e, IDEMPOTENT_PRODUCE_HEADER_BYTES, e.length, count);
        this.producers.record(producerId, sequence, count, baseOffset);
        this.pendingPush(chunkId, baseOffset, count);
        return;
      }
      case 'duplicate':
        this.pendingPush(chunkId, check.baseOffset, check.count);
        return;
      case 'out_of_order':
        this.sendFail(FailKind.PRODUCE, chunkId, ErrorCode.OUT_OF_ORDER_SEQUENCE,
          `producer ${producerId}: sequence ${sequence} is out of order on this partition (expected ${check.expected}); nothing was written`, 0, 0);
        this.failedInStep = true;
        return;
      case 'too_old':
        this.sendFail(FailKind.PRODUCE, chunkId, ErrorCode.DUPLICATE_SEQUENCE,
          `producer ${producerId}: sequence ${sequence} is older than the batches this partition remembers (from ${check.oldest}); it was already written`, 0, 0);
        this.failedInStep = true;
        return;
    }
  }

  private pendingPush(chunkId: number, base: number, count: number): void {
    const p = this.pending[this.pendingCount];
    if (p) {
      p.chunkId = chunkId;
      p.base = base;
      p.count = count;
    } else this.pending.push({ chunkId, base, count });
    this.pendingCount++;
  }

  /** One write (and fsync per policy) for every chunk appended this turn, then their ACKs. */
  private commitGroup(): boolean {
    if (this.pendingCount === 0) return false;
    const n = this.pendingCount;
    this.pendingCount = 0;
    let end: number;
    try {
      end = this.log.flush();
    } catch (err) {
      const code = storageCode(err);
      const message = err instanceof Error ? err.message : String(err);
      this.producers.rollback(); // the log dropped the unflushed batches: so does the producer state
      for (let i = 0; i < n; i++) this.sendFail(FailKind.PRODUCE, this.pending[i]!.chunkId, code, message, 0, 0);
      if (code === ErrorCode.STORAGE_ERROR) {
        // Unknown I/O state: crash, the supervisor replays the WAL. Publish the failures first, so
        // these requests get STORAGE_ERROR (what failed), not the crash's PARTITION_UNAVAILABLE.
        this.publish();
        throw err;
      }
      return true;
    }
    this.producers.commit();
    for (let i = 0; i < n; i++) {
      const p = this.pending[i]!;
      const w = this.beginOut(ACK_BYTES);
      w.appendU32(Out.ACK);
      w.appendU32(p.chunkId);
      appendU53(w, p.base);
      w.appendU32(p.count);
      appendU53(w, end);
      w.commit();
    }
    return true;
  }

  private parseFetch(e: Uint8Array, now: number): Fetch {
    const mode = readU32(e, 8) as FetchMode;
    const pos = readU32(e, 16) * TWO_32 + readU32(e, 12);
    let offset: number;
    if (mode === FetchMode.EARLIEST) offset = this.log.logStartOffset;
    else if (mode === FetchMode.LATEST) offset = this.log.durableOffset;
    else if (mode === FetchMode.TIMESTAMP) {
      this.usedLog = true;
      offset = this.log.offsetForTimestamp(pos);
    }
    else offset = pos;
    return {
      id: readU32(e, 4),
      offset,
      maxBytes: Math.min(readU32(e, 20), this.opts.maxFetchBytes),
      maxRecords: readU32(e, 24),
      deadline: now + readU32(e, 28),
      standing: (readU32(e, 32) & FetchFlag.STANDING) !== 0,
    };
  }

  private serveFetch(f: Fetch, now: number): boolean {
    const end = this.log.durableOffset;
    if (f.offset < this.log.logStartOffset || f.offset > end) {
      this.sendFail(FailKind.FETCH, f.id, ErrorCode.OFFSET_OUT_OF_RANGE,
        `offset ${f.offset} is outside the log [${this.log.logStartOffset}, ${end}]`, this.log.logStartOffset, end);
      return true;
    }
    if (f.offset === end && f.deadline > now) {
      this.parked.push(f); // long poll: answered when data arrives or at the deadline
      return false;
    }
    if (this.sendData(f, now, false)) this.parked.push(f);
    return true;
  }

  private serveParked(now: number): boolean {
    const end = this.log.durableOffset;
    let answered = false;
    let keep = 0;
    for (const f of this.parked) {
      if (f.offset < end || f.deadline <= now) {
        answered = true;
        if (f.offset < this.log.logStartOffset) {
          this.sendFail(FailKind.FETCH, f.id, ErrorCode.OFFSET_OUT_OF_RANGE, `offset ${f.offset} was deleted by retention`, this.log.logStartOffset, end);
        } else if (this.sendData(f, now, false)) this.parked[keep++] = f;
      } else this.parked[keep++] = f;
    }
    this.parked.length = keep;
    return answered;
  }

  /** End the parked fetches named in `ids` with a final empty answer (ids no longer parked: ignored). */
  private cancelParked(ids: number[], now: number): boolean {
    let answered = false;
    let keep = 0;
    for (const f of this.parked) {
      if (ids.includes(f.id)) {
        this.sendData(f, now, true);
        answered = true;
      } else this.parked[keep++] = f;
    }
    this.parked.length = keep;
    return answered;
  }

  /**
   * Answer `f` with what the log holds from its offset. Returns true when the fetch stays open: a
   * standing fetch answered with records, budget left and its deadline not reached. It then waits
   * at its next offset like a parked fetch, so a caught-up subscriber gets each commit without a
   * fetch (one more thread wake-up) per delivery.
   */
  private sendData(f: Fetch, now: number, empty: boolean): boolean {
    const end = this.log.durableOffset;
    // maxRecords 0 only resolves a position (earliest/latest/timestamp) into an offset.
    const r = empty || f.offset >= end || f.maxRecords === 0
      ? { records: EMPTY, count: 0, nextOffset: f.offset, lost: null }
      : this.read(f);
    if (r === null) return false; // answered with a FAIL
    if (r.lost !== null) {
      // Damaged offsets: the fetch ends with DATA_LOSS naming them; its reader continues at `to`.
      this.sendFail(FailKind.FETCH, f.id, ErrorCode.DATA_LOSS,
        `offsets ${r.lost.from} to ${r.lost.to - 1} of this partition are lost to damage on disk (see the broker's log)`, r.lost.from, r.lost.to);
      return false;
    }
    f.offset = r.nextOffset;
    f.maxBytes -= r.records.length;
    f.maxRecords -= r.count;
    const more = f.standing && r.count > 0 && f.maxBytes > 0 && f.maxRecords > 0 && f.deadline > now;
    const w = this.beginOut(DATA_HEADER_BYTES + r.records.length);
    w.appendU32(Out.DATA);
    w.appendU32(f.id);
    w.appendU32(r.count);
    appendU53(w, r.nextOffset);
    appendU53(w, end);
    w.appendU32(more ? DataFlag.MORE : 0);
    if (r.records.length > 0) w.append(r.records);
    w.commit();
    return more;
  }

  /**
   * Read for `f`; null when the segment could not be (re)opened for lack of fds: then the fetch is
   * answered RESOURCE_LIMIT (retryable) and ends, instead of the error crashing the partition.
   */
  private read(f: Fetch): ReadResult | null {
    this.usedLog = true;
    try {
      return this.log.read(f.offset, f.maxBytes, f.maxRecords, (this.readBuffer ??= new Uint8Array(this.opts.maxFetchBytes)));
    } catch (err) {
      if (storageCode(err) !== ErrorCode.RESOURCE_LIMIT) throw err;
      this.sendFail(FailKind.FETCH, f.id, ErrorCode.RESOURCE_LIMIT, `offset ${f.offset}: ${err instanceof Error ? err.message : String(err)}`, this.log.logStartOffset, this.log.durableOffset);
      return null;
    }
  }

  private sendFail(kind: number, id: number, code: ErrorCode, message: string, start: number, end: number): void {
    const text = encoder.encode(message.slice(0, 512));
    const w = this.beginOut(FAIL_HEADER_BYTES + text.length);
    w.appendU32(Out.FAIL);
    w.appendU32(id);
    w.appendU32(kind);
    w.appendU32(errorIndex(code));
    appendU53(w, start);
    appendU53(w, end);
    w.append(text);
    w.commit();
  }

  /** Reserve an output record, publishing and waiting for the gateway to drain when full. */
  private beginOut(bytes: number): RingWriter {
    const out = this.ports.output;
    for (let waited = 0; !out.begin(bytes); waited++) {
      this.publish();
      if (!this.ports.waitForOutputSpace(bytes, 100) && waited > 600) {
        throw new Error('partition: output ring stayed full for 60 s; is the gateway alive?');
      }
    }
    return out;
  }

  private publish(): void {
    if (this.ports.output.publish()) this.ports.outputPublished();
  }
}

const EMPTY = new Uint8Array(0);

function appendU53(w: RingWriter, v: number): void {
  w.appendU32(v >>> 0);
  w.appendU32(Math.floor(v / TWO_32));
}

function storageCode(err: unknown): ErrorCode {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === ErrorCode.STORAGE_FULL || code === 'ENOSPC' || code === 'EDQUOT') return ErrorCode.STORAGE_FULL;
  // Out of fds reopening a released segment (or creating one at a roll): nothing was written, and
  // the partition can serve again once fds are free, so it is the producer's retry, not a crash.
  const errno = (err as { details?: { errno?: unknown } } | null)?.details?.errno;
  if (errno === 'EMFILE' || errno === 'ENFILE') return ErrorCode.RESOURCE_LIMIT;
  return ErrorCode.STORAGE_ERROR;
}
