/**
 * The gateway's side of one partition actor: it owns the actor's two rings, writes PRODUCE and
 * FETCH entries, drains ACK/DATA/FAIL entries and hands them to whoever asked, and turns the
 * actor's death into PARTITION_UNAVAILABLE for everything still in flight (nothing is silently
 * dropped: a request either gets its answer or an error). Where the actor's core runs is its
 * runtime's business: a worker thread (PartitionThread, below, the default) or the gateway's own
 * thread (GatewayHostedPartitions, gateway-hosted.ts). Either is the supervisor's ChildHandle.
 */
import type { Worker } from 'node:worker_threads';
import { readU32 } from '../protocol/record.js';
import { ErrorCode, WeirCode } from '../protocol/codes.js';
import { createRing, createThreadBell, Doorbell, HEADER_BYTES, RingReader, RingWriter, ThreadBell, maxPayloadBytes } from '../ring/index.js';
import { startWorkerChild, WarmWorker, type WorkerChild } from '../supervisor/index.js';
import type { ChildHandle, ChildExit } from '../supervisor/index.js';
import { workerEntry } from '../common/worker-entry.js';
import { channels } from '../common/diagnostics.js';
import { IdTable } from '../common/id-table.js';
import { failureFacts } from '../common/storage-failure.js';
import {
  CANCEL_BYTES,
  DATA_HEADER_BYTES,
  DataFlag,
  FETCH_BYTES,
  FailKind,
  FetchFlag,
  IDEMPOTENT_PRODUCE_HEADER_BYTES,
  In,
  Out,
  PRODUCE_HEADER_BYTES,
  errorCodeAt,
  type ControlReply,
  type FetchMode,
  type PartitionLogSlot,
  type PartitionSlotData,
  type PartitionWorkerData,
  type SlotReady,
} from './protocol.js';

const TWO_32 = 0x1_0000_0000;
const decoder = new TextDecoder();

export interface ProduceWaiter {
  acked(baseOffset: number, count: number, end: number): void;
  failed(code: ErrorCode, message: string): void;
}
export interface FetchWaiter {
  /**
   * `records` is a view into shared memory, valid only during this call: copy or encode it now.
   * `more`: a standing fetch is still open, and this waiter will be called again.
   */
  data(records: Uint8Array, count: number, next: number, end: number, more: boolean): void;
  failed(code: ErrorCode, message: string, start: number, end: number): void;
}

/** Exactly-once append: the producer and first sequence of a batch (one chunk, one partition). */
export interface ProducerSequence {
  producerId: number;
  sequence: number;
}

/** Anything records can be appended to: the input ring, or a holding buffer when the ring is full. */
export interface ByteSink {
  append(src: Uint8Array, start?: number, end?: number): void;
}

/** Why a partition is not served, or why its actor last died: a code and what failed. */
export interface PartitionFailure {
  code: string;
  message: string;
}

export interface PartitionActorConfig {
  topic: string;
  partition: number;
  dir: string;
  ringBytes: number;
  log: PartitionSlotData['log'];
  /** Bytes held for this partition while its input ring is full, before producers are refused. */
  maxQueuedBytes: number;
  /** Quiet this long, the partition releases its buffers and fds (PartitionCoreOptions.idleReleaseMs). */
  idleReleaseMs?: number;
}

export interface PartitionThreadConfig {
  testHooks: boolean;
  readyTimeoutMs: number;
  /** V8 heap limits of the thread (old and young generation), in MB. */
  heapMb?: number;
  youngGenerationMb?: number;
}

type Ready = Extract<ControlReply, { type: 'ready' }>;

/** A partition's two rings (new) and its log settings, for whichever host opens it. */
export function partitionSlot(c: PartitionActorConfig): PartitionSlotData {
  return { topic: c.topic, partition: c.partition, dir: c.dir, input: createRing(c.ringBytes), output: createRing(c.ringBytes), log: c.log, ...idleOption(c) };
}

/** A partition's log settings without rings (a host that allocates them on demand). */
export function partitionLogSlot(c: PartitionActorConfig): PartitionLogSlot {
  return { topic: c.topic, partition: c.partition, dir: c.dir, log: c.log, ...idleOption(c) };
}

function idleOption(c: PartitionActorConfig): { idleReleaseMs?: number } {
  return c.idleReleaseMs === undefined ? {} : { idleReleaseMs: c.idleReleaseMs };
}

/** Bytes of a partition's two rings of `ringBytes` each (headers included). */
export function ringPairBytes(ringBytes: number): number {
  return 2 * (HEADER_BYTES + ringBytes);
}

/**
 * What one partition holds now (PartitionFleet.resources): its rings' bytes, its buffers' bytes
 * (the core's read buffer, the log's group-commit buffer, index entries and scratch) and its open
 * fds. Buffers and fds of a partition on a worker thread are that thread's, not counted here: null.
 */
export interface PartitionResources {
  host: 'threads' | 'gateway';
  ringBytes: number;
  bufferBytes: number | null;
  fds: number | null;
}

/**
 * What a PartitionRef needs from whatever runs its core. Every actor of one runtime shares its
 * fate: the runtime's exit is each of its actors' exit.
 */
export interface ActorRuntime {
  /** The worker thread the core runs on; null when it runs on the gateway's thread. */
  readonly worker: Worker | null;
  /**
   * True when the runtime hands the core's output to the actor itself (`deliverOutput`, right
   * after stepping the core); false when the actor must wait for it on the output ring's doorbell.
   */
  readonly deliversOutput: boolean;
  /** After the actor published to slot's input ring: make the core see it (at most one wake-up). */
  inputPublished(slot: number): void;
  /** The log's start and durable end offsets, fresh from the core. */
  describe(slot: number): Promise<{ start: number; end: number }>;
  /** Test hook (needs testHooks): crash the core from inside. */
  crash(how: 'throw' | 'oom'): void;
  onExit(listener: (e: ChildExit) => void): void;
  /**
   * The actor has no rings and needs them now (a runtime that allocates them on demand, the
   * gateway's): allocate them and hand them to the actor (PartitionRef.attachRings) before
   * returning.
   */
  attachRings(slot: number): void;
  /** What partition `slot` holds now. */
  resources(slot: number): PartitionResources;
}

/** ActorRuntime of a worker thread: wake-ups ring its bell, control messages are postMessage'd. */
class ThreadRuntime implements ActorRuntime {
  readonly deliversOutput = false;
  private nextId = 1;
  private readonly describes = new Map<number, (r: { start: number; end: number }) => void>();

  constructor(
    private readonly child: WorkerChild<Ready>,
    private readonly bell: ThreadBell,
    /** Each slot's ring size. */
    private readonly ringBytes: readonly number[],
  ) {
    child.worker.on('message', (m: ControlReply) => {
      if (m.type === 'log-event') {
        // diagnostics_channel is per thread: the worker's logs' reports are published here again.
        const ch = channels[m.event.channel];
        if (ch.hasSubscribers) ch.publish(m.event.message);
        return;
      }
      if (m.type !== 'described') return;
      this.describes.get(m.id)?.({ start: m.start, end: m.end });
      this.describes.delete(m.id);
    });
  }
  get worker(): Worker {
    return this.child.worker;
  }
  inputPublished(): void {
    this.bell.ring();
  }
  describe(slot: number): Promise<{ start: number; end: number }> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.describes.set(id, resolve);
      this.child.worker.postMessage({ type: 'describe', id, slot });
    });
  }
  crash(how: 'throw' | 'oom'): void {
    this.child.worker.postMessage({ type: 'crash', how });
  }
  attachRings(): void {
    throw new Error('a partition on a worker thread always has its rings');
  }
  resources(slot: number): PartitionResources {
    return { host: 'threads', ringBytes: ringPairBytes(this.ringBytes[slot]!), bufferBytes: null, fds: null };
  }
  onExit(listener: (e: ChildExit) => void): void {
    this.child.onExit((e) => {
      for (const r of this.describes.values()) r({ start: 0, end: 0 });
      this.describes.clear();
      listener(e);
    });
  }
}

/** A supervisor child hosting partition actors: a worker thread, or the gateway's thread. */
export interface PartitionActorGroup extends ChildHandle {
  readonly actors: PartitionRef[];
  /** The next close() hands the logs over to another host of this process (a move): see PartitionLog.close. */
  handOver(): void;
}

/**
 * One worker thread hosting one or more partition actors: the supervisor's child. Its death is
 * every hosted actor's death (each fails what it has in flight), and a restart replaces them all.
 */
export class PartitionThread implements PartitionActorGroup {
  private constructor(
    private readonly child: WorkerChild<Ready>,
    readonly actors: PartitionRef[],
  ) {}

  /**
   * Spawn the thread, wait until every hosted actor has replayed its log, and wire the rings.
   * `moving[i]`, when given, is partition i's actor from its previous host (PartitionRef.beginMove):
   * it is rewired here instead of a new one, so what it holds is served, not failed.
   */
  static async start(configs: PartitionActorConfig[], thread: PartitionThreadConfig, moving?: readonly (PartitionRef | undefined)[], warm?: WarmWorker): Promise<PartitionThread> {
    const bell = createThreadBell();
    const slots = configs.map(partitionSlot);
    const workerData: PartitionWorkerData = { slots, bell, testHooks: thread.testHooks };
    const child = await startWorkerChild<Ready>({ ...PartitionThread.spawnOptions(configs, thread), workerData, readyTimeoutMs: thread.readyTimeoutMs, warm });
    const runtime = new ThreadRuntime(child, new ThreadBell(bell), configs.map((c) => c.ringBytes));
    const actors = configs.map((c, i) => {
      const ready = child.ready.slots[i]!;
      // diagnostics_channel is per thread: the worker's own publication is not seen here, so relay it.
      if (ready.truncatedBytes > 0 && channels.walTruncated.hasSubscribers) {
        channels.walTruncated.publish({ topic: c.topic, partition: c.partition, dir: c.dir, truncatedBytes: ready.truncatedBytes, truncatedAtOffset: ready.truncatedAtOffset });
      }
      if (channels.walDamage.hasSubscribers) {
        for (const d of ready.damage) if (d.kind === 'damaged') channels.walDamage.publish({ topic: c.topic, partition: c.partition, dir: c.dir, ...d });
      }
      return attachActor(c, runtime, i, slots[i]!, ready, moving?.[i]);
    });
    return new PartitionThread(child, actors);
  }

  /**
   * A thread for these partitions, spawned now and given them by a later `start(…, warm)`: a move
   * spawns its threads before it holds the topic's requests (a thread's start takes tens of ms).
   */
  static warm(configs: PartitionActorConfig[], thread: PartitionThreadConfig): WarmWorker {
    return new WarmWorker(PartitionThread.spawnOptions(configs, thread));
  }

  private static spawnOptions(configs: PartitionActorConfig[], thread: PartitionThreadConfig) {
    const first = configs[0]!;
    const last = configs[configs.length - 1]!;
    return {
      entry: workerEntry('../partition-worker/main.ts', import.meta.url),
      name: `partitions ${first.topic}/${first.partition}${configs.length > 1 ? `-${last.partition}` : ''}`,
      // A small young generation keeps each isolate's RSS low: the actors allocate little per
      // message (entries are bytes in the rings, not objects).
      resourceLimits: { maxOldGenerationSizeMb: thread.heapMb ?? 256, maxYoungGenerationSizeMb: thread.youngGenerationMb ?? 4 },
    };
  }

  get worker(): WorkerChild['worker'] {
    return this.child.worker;
  }
  handOver(): void {
    this.child.worker.postMessage({ type: 'hand-over' }); // before close()'s shutdown: postMessage keeps order
  }
  close(): Promise<void> {
    return this.child.close();
  }
  destroy(): void {
    this.child.destroy();
  }
  onExit(listener: (e: ChildExit) => void): void {
    this.child.onExit(listener);
  }
}

/** An entry waiting for input-ring space, with whoever waits for its answer. */
type Held =
  | { kind: 'produce'; id: number; count: number; bytes: Uint8Array; waiter: ProduceWaiter; idem: ProducerSequence | undefined }
  | { kind: 'fetch'; id: number; entry: Uint8Array; waiter: FetchWaiter };

class HoldingBuffer implements ByteSink {
  buf: Uint8Array;
  at = 0;
  constructor(size: number) {
    this.buf = new Uint8Array(size);
  }
  append(src: Uint8Array, start = 0, end = src.length): void {
    this.buf.set(src.subarray(start, end), this.at);
    this.at += end - start;
  }
}

/** A reference to one partition actor (which runs on a PartitionThread or on the gateway's thread): the broker core's side of its rings. */
export class PartitionRef {
  readonly topic: string;
  readonly partition: number;
  /** Log start/end as last reported by the actor (end = durable end offset). */
  start = 0;
  end = 0;
  // Where the core runs and the rings to it: set by wire(), again when the actor moves (rehost).
  // The rings are null while a runtime that allocates them on demand (the gateway's) has none for
  // this partition: attachRings() and detachRings().
  private runtime!: ActorRuntime;
  private slot!: number;
  private writer: RingWriter | null = null;
  private reader: RingReader | null = null;
  private inBell: Doorbell | null = null;
  private outBell: Doorbell | null = null;
  /** Bumped at each (re)wiring to a runtime: listeners and loops of an earlier one stand down. */
  private generation = 0;
  /** Between beginMove() and the new host's rehost(): requests are held, not written. */
  private moving = false;
  /** Records produced plus records delivered, ever (the placement policy's measure of load). */
  records = 0;
  /**
   * Milliseconds the gateway's thread spent running this partition's core, ever (only while it is
   * hosted there): the placement policy's measure of what the partition costs that thread, whatever
   * its rate (a disk whose fdatasyncs stall shows here, not in `records`).
   */
  gatewayMs = 0;
  /** The gateway's per-turn sets (TurnSet) this actor is in. */
  turnMarks = 0;
  /**
   * Set when the broker gave up on this partition (FailedPartitions): requests are answered with
   * this code and message instead of PARTITION_UNAVAILABLE's "retry".
   */
  failure: PartitionFailure | null = null;
  /** Why the actor died (its runtime's exit reason, as an errno or error code and the innermost message). */
  lastError: PartitionFailure | null = null;
  private readonly maxEntry: number;
  private nextId = 1;
  private readonly produces = new IdTable<ProduceWaiter>();
  private readonly fetches = new IdTable<FetchWaiter>();
  private readonly held: Held[] = [];
  private heldBytes = 0;
  private alive = true;
  private spaceWaiting = false;
  private readonly exitListeners: Array<(e: ChildExit) => void> = [];

  constructor(
    private readonly config: PartitionActorConfig,
    runtime: ActorRuntime,
    slot: number,
    rings: PartitionRings | null,
    ready: SlotReady,
  ) {
    this.topic = config.topic;
    this.partition = config.partition;
    this.maxEntry = Math.floor(maxPayloadBytes(config.ringBytes) / 2) - PRODUCE_HEADER_BYTES;
    this.wire(runtime, slot, rings, ready);
  }

  /** Write to `input` and read from `output` from now on (new rings: both empty). */
  attachRings(input: SharedArrayBuffer, output: SharedArrayBuffer): void {
    this.writer = new RingWriter(input);
    this.reader = new RingReader(output);
    this.inBell = new Doorbell(input);
    this.outBell = new Doorbell(output);
  }

  /** Let go of the rings (their runtime frees them; see ringsQuiet). */
  detachRings(): void {
    this.writer = this.reader = null;
    this.inBell = this.outBell = null;
  }

  /**
   * Nothing of this actor is in its rings: everything written was published and taken by the
   * core, everything the core published was handled, and nothing waits for ring space.
   */
  get ringsQuiet(): boolean {
    if (this.held.length > 0 || this.spaceWaiting) return false;
    const w = this.writer;
    const r = this.reader;
    return (w === null || (w.pending() === 0 && !w.isStaging())) && (r === null || (r.available() === 0 && r.unreleased() === 0));
  }

  /** What this partition holds now: rings, buffers, fds. */
  resources(): PartitionResources {
    return this.runtime.resources(this.slot);
  }

  /** The input ring's writer, the rings allocated first if the runtime has none for this partition. */
  private input(): RingWriter {
    if (this.writer === null) this.runtime.attachRings(this.slot);
    return this.writer!;
  }

  private wire(runtime: ActorRuntime, slot: number, rings: PartitionRings | null, ready: SlotReady): void {
    this.runtime = runtime;
    this.slot = slot;
    if (rings === null) this.detachRings();
    else this.attachRings(rings.input, rings.output);
    const generation = ++this.generation;
    this.start = ready.start;
    this.end = ready.end;
    this.runtime.onExit((e) => {
      if (generation === this.generation) this.died(e);
    });
    if (!this.runtime.deliversOutput) void this.drainLoop(generation);
  }

  /** Where the actor's core runs now. */
  get host(): 'threads' | 'gateway' {
    return this.runtime.worker === null ? 'gateway' : 'threads';
  }

  /**
   * A planned move to another host begins: from now on requests are held (as for a full ring)
   * until rehost(). The old host is then closed gracefully, answering everything it was given
   * (parked fetches with their final, empty answer); its normal exit is not this actor's death.
   */
  beginMove(): void {
    if (!this.alive || this.moving) return;
    this.flush();
    this.moving = true;
  }

  /**
   * The new host's side of a move: wire the new runtime and rings, then write what was held
   * meanwhile, in order. Only for an actor that is still alive (a crash during the move failed its
   * requests; its partition then gets a fresh actor).
   */
  rehost(runtime: ActorRuntime, slot: number, rings: PartitionRings | null, ready: SlotReady): void {
    if (!this.alive) throw new Error(`partition ${this.topic}/${this.partition}: rehost() of a dead actor`);
    this.outBell?.close(); // wakes a drain loop of the old host, which then stands down
    this.moving = false;
    this.wire(runtime, slot, rings, ready);
    // Not synchronously: the new host is still being constructed (its actors list not yet set).
    if (this.held.length > 0) queueMicrotask(() => void this.waitForSpace());
  }

  /** A move that cannot complete: fail what is held, as a death would. */
  abandonMove(reason: Error): void {
    if (!this.moving) return;
    this.moving = false;
    this.generation++;
    this.died({ normal: false, reason });
  }

  /** Between beginMove() and rehost(): holding requests for the next host. */
  get isMoving(): boolean {
    return this.moving;
  }

  get available(): boolean {
    return this.alive;
  }
  /** Largest record bytes one PRODUCE entry may carry: half the input ring's largest record. */
  get maxEntryBytes(): number {
    return this.maxEntry;
  }
  /** The worker thread this actor runs on (tests crash it with terminate()). */
  get worker(): Worker {
    const w = this.runtime.worker;
    if (w === null) throw new Error(`partition ${this.topic}/${this.partition} runs on the gateway's thread, not a worker`);
    return w;
  }

  /**
   * Append `count` records (`bytes` long, written by `fill`) as one chunk. Written straight into the
   * ring when it has room and nothing is held before it; otherwise held (in order) until it does.
   * Returns false, touching nothing, if the actor is down or the holding budget is exhausted.
   */
  produce(count: number, bytes: number, fill: (sink: ByteSink) => void, waiter: ProduceWaiter, idem?: ProducerSequence): boolean {
    if (!this.alive) return false;
    const id = this.allocId();
    this.records += count;
    const w = this.moving ? null : this.input();
    if (this.held.length === 0 && w !== null && w.begin(produceHeaderBytes(idem) + bytes)) {
      this.writeProduceHeader(w, id, count, idem);
      fill(w);
      w.commit();
      this.produces.set(id, waiter);
      return true;
    }
    if (this.heldBytes + bytes > this.config.maxQueuedBytes) return false;
    const hold = new HoldingBuffer(bytes);
    fill(hold);
    this.held.push({ kind: 'produce', id, count, bytes: hold.buf, waiter, idem });
    this.heldBytes += bytes;
    void this.waitForSpace();
    return true;
  }

  /**
   * Ask for records from `position`. A long poll (`maxWaitMs` > 0) waits at the log end for data;
   * a `standing` one also stays open after answering with records, spending `maxBytes` and
   * `maxRecords` over several answers until they or `maxWaitMs` run out (FetchFlag.STANDING).
   * Returns the fetch's id (for cancelFetch), or 0, touching nothing, when the actor is down.
   */
  fetch(mode: FetchMode, position: number, maxBytes: number, maxRecords: number, maxWaitMs: number, waiter: FetchWaiter, standing = false): number {
    if (!this.alive) return 0;
    const id = this.allocId();
    const e = new Uint8Array(FETCH_BYTES);
    const v = new DataView(e.buffer);
    v.setUint32(0, In.FETCH, true);
    v.setUint32(4, id, true);
    v.setUint32(8, mode, true);
    v.setUint32(12, position >>> 0, true);
    v.setUint32(16, Math.floor(position / TWO_32), true);
    v.setUint32(20, maxBytes, true);
    v.setUint32(24, maxRecords, true);
    v.setUint32(28, maxWaitMs, true);
    v.setUint32(32, standing ? FetchFlag.STANDING : 0, true);
    if (this.held.length === 0 && !this.moving && this.input().tryWrite(e)) {
      this.fetches.set(id, waiter);
    } else {
      this.held.push({ kind: 'fetch', id, entry: e, waiter });
      void this.waitForSpace();
    }
    return id;
  }

  /**
   * Whoever waits for fetch `id` went away: forget its waiter, and ask the actor to end it if it is
   * parked there (a standing fetch would otherwise go on reading for nobody until its budget or
   * deadline runs out). Best effort: with the input ring full the actor is not told; the fetch then
   * ends by itself. Takes effect at the next flush().
   */
  cancelFetch(id: number): void {
    const h = this.held.findIndex((x) => x.kind === 'fetch' && x.id === id);
    if (h >= 0) {
      this.held.splice(h, 1); // never reached the actor
      return;
    }
    // Moving: the old host answers it at its close (to nobody, now).
    if (!this.fetches.delete(id) || !this.alive || this.moving) return;
    const e = new Uint8Array(CANCEL_BYTES);
    const v = new DataView(e.buffer);
    v.setUint32(0, In.CANCEL, true);
    v.setUint32(4, id, true);
    if (this.held.length === 0) this.input().tryWrite(e);
  }

  /** Make everything written since the last call visible to the actor; at most one wake-up. */
  flush(): void {
    if (this.writer?.publish() === true) this.runtime.inputPublished(this.slot);
  }

  async describe(): Promise<{ start: number; end: number }> {
    if (!this.alive || this.moving) return { start: this.start, end: this.end };
    const r = await this.runtime.describe(this.slot);
    if (this.alive) {
      this.start = r.start;
      this.end = r.end;
    }
    return { start: this.start, end: this.end };
  }

  /** Test hook: crash the actor's runtime from inside (needs testHooks). */
  crash(how: 'throw' | 'oom'): void {
    this.runtime.crash(how);
  }

  /** Called once the actor's thread has exited, after its in-flight work has been failed. */
  onExit(listener: (e: ChildExit) => void): void {
    this.exitListeners.push(listener);
  }

  private writeProduceHeader(w: RingWriter, id: number, count: number, idem: ProducerSequence | undefined): void {
    if (idem === undefined) {
      w.appendU32(In.PRODUCE);
      w.appendU32(id);
      w.appendU32(count);
      return;
    }
    w.appendU32(In.PRODUCE_IDEMPOTENT);
    w.appendU32(id);
    w.appendU32(count);
    w.appendU32(idem.producerId >>> 0);
    w.appendU32(Math.floor(idem.producerId / TWO_32));
    w.appendU32(idem.sequence);
  }

  private allocId(): number {
    const id = this.nextId;
    this.nextId = (this.nextId + 1) >>> 0 || 1;
    return id;
  }

  private async waitForSpace(): Promise<void> {
    if (this.spaceWaiting) return;
    this.spaceWaiting = true;
    try {
      while (this.alive && !this.moving && this.held.length > 0) {
        this.moveHeld();
        if (this.held.length === 0) break;
        const first = this.held[0]!;
        const need = first.kind === 'produce' ? produceHeaderBytes(first.idem) + first.bytes.length : FETCH_BYTES;
        // The doorbell counts published bytes only: while this turn's entries (or a rewind's skipped
        // bytes) are unpublished it reports space begin() cannot use, and awaiting it would spin in
        // microtasks and starve the turn's flush. Let that flush publish them (one publish and
        // wake-up per turn, as for every entry), then look again.
        // moveHeld() attached the rings if there were none.
        if (this.writer!.pending() > 0) await new Promise((resolve) => setImmediate(resolve));
        else await this.inBell!.waitForSpaceAsync(need, 50);
      }
    } finally {
      this.spaceWaiting = false;
    }
  }

  private moveHeld(): void {
    let moved = false;
    const w = this.input();
    while (this.held.length > 0) {
      const h = this.held[0]!;
      if (h.kind === 'produce') {
        if (!w.begin(produceHeaderBytes(h.idem) + h.bytes.length)) break;
        this.writeProduceHeader(w, h.id, h.count, h.idem);
        w.append(h.bytes);
        w.commit();
        this.heldBytes -= h.bytes.length;
        this.produces.set(h.id, h.waiter);
      } else {
        if (!w.tryWrite(h.entry)) break;
        this.fetches.set(h.id, h.waiter);
      }
      this.held.shift();
      moved = true;
    }
    if (moved) this.flush();
  }

  private async drainLoop(generation: number): Promise<void> {
    const bell = this.outBell!; // a runtime whose output the actor waits for always has rings
    while (this.alive && generation === this.generation) {
      this.deliverOutput();
      if (!this.alive || generation !== this.generation) break;
      await bell.waitForDataAsync(1000);
    }
  }

  /** Handle every published output entry; returns how many. Called by the runtime when it `deliversOutput`. */
  deliverOutput(): number {
    const reader = this.reader;
    if (reader === null) return 0;
    let n = 0;
    let e: Uint8Array | null;
    while ((e = reader.next()) !== null) {
      n++;
      const type = readU32(e, 0);
      const id = readU32(e, 4);
      if (type === Out.ACK) {
        const end = u53(e, 20);
        if (end > this.end) this.end = end;
        this.produces.take(id)?.acked(u53(e, 8), readU32(e, 16), end);
      } else if (type === Out.DATA) {
        const end = u53(e, 20);
        if (end > this.end) this.end = end;
        const w = this.fetches.get(id);
        const count = readU32(e, 8);
        this.records += count;
        const more = (readU32(e, 28) & DataFlag.MORE) !== 0;
        if (!more) this.fetches.delete(id);
        w?.data(e.subarray(DATA_HEADER_BYTES), count, u53(e, 12), end, more);
      } else if (type === Out.FAIL) {
        const code = errorCodeAt(readU32(e, 12));
        const message = decoder.decode(e.subarray(32));
        if (readU32(e, 8) === FailKind.PRODUCE) {
          this.produces.take(id)?.failed(code, message);
        } else {
          this.fetches.take(id)?.failed(code, message, u53(e, 16), u53(e, 24));
        }
      }
    }
    if (n > 0) {
      reader.release();
      this.outBell!.notifySpace();
    }
    return n;
  }

  private died(exit: ChildExit): void {
    if (!this.alive) return;
    // Answers the actor published before exiting are real: deliver them first.
    this.deliverOutput();
    if (this.moving && exit.normal) {
      // The old host of a move closed. It drained its input ring, so everything written there was
      // answered just now; hold on to what is held for the new host (rehost).
      this.generation++;
      this.failInFlight('is moving to another thread; retry');
      return;
    }
    this.alive = false;
    this.moving = false;
    if (!exit.normal && exit.reason !== null) this.lastError = failureOf(exit.reason);
    const why = exit.normal ? 'was stopped' : `crashed (${exit.reason?.message ?? 'exited'})`;
    const message = this.failInFlight(`${why}; retry`);
    for (const h of this.held) {
      if (h.kind === 'produce') h.waiter.failed(ErrorCode.PARTITION_UNAVAILABLE, message);
      else h.waiter.failed(ErrorCode.PARTITION_UNAVAILABLE, message, this.start, this.end);
    }
    this.held.length = 0;
    this.heldBytes = 0;
    this.outBell?.close();
    for (const l of this.exitListeners) l(exit);
  }

  /** Fail every request the core was given and did not answer (it never will). Returns the message. */
  private failInFlight(why: string): string {
    const message = `partition ${this.topic}/${this.partition} ${why}`;
    const produces = this.produces.valuesInOrder(this.nextId);
    const fetches = this.fetches.valuesInOrder(this.nextId);
    this.produces.clear();
    this.fetches.clear();
    for (const w of produces) w.failed(ErrorCode.PARTITION_UNAVAILABLE, message);
    for (const w of fetches) w.failed(ErrorCode.PARTITION_UNAVAILABLE, message, this.start, this.end);
    return message;
  }
}

/** A partition's two rings: the gateway writes `input` and reads `output`. */
export interface PartitionRings {
  input: SharedArrayBuffer;
  output: SharedArrayBuffer;
}

/**
 * Partition i's actor on a newly started host: the moving one rewired, or a new one. `rings`: null
 * when the runtime allocates them on demand (ActorRuntime.attachRings).
 */
export function attachActor(c: PartitionActorConfig, runtime: ActorRuntime, i: number, rings: PartitionRings | null, ready: SlotReady, moving: PartitionRef | undefined): PartitionRef {
  if (moving !== undefined && moving.available && moving.isMoving) {
    moving.rehost(runtime, i, rings, ready);
    return moving;
  }
  return new PartitionRef(c, runtime, i, rings, ready);
}

/** The facts of an actor's death: the errno (or the innermost error code) and the innermost message. */
export function failureOf(reason: Error): PartitionFailure {
  const facts = failureFacts(reason);
  let code = facts.errno;
  if (code === null) {
    for (let e: unknown = reason, depth = 0; e instanceof Error && depth < 10; e = e.cause, depth++) {
      const c = (e as { code?: unknown }).code;
      if (typeof c === 'string') code = c; // the innermost one wins
    }
  }
  return { code: code ?? WeirCode.UNKNOWN, message: facts.message };
}

function produceHeaderBytes(idem: ProducerSequence | undefined): number {
  return idem === undefined ? PRODUCE_HEADER_BYTES : IDEMPOTENT_PRODUCE_HEADER_BYTES;
}

function u53(b: Uint8Array, at: number): number {
  return readU32(b, at + 4) * TWO_32 + readU32(b, at);
}
