/**
 * Partition actors hosted on the gateway's own thread (`actorHost: 'gateway'`): the same
 * PartitionCore, log and rings as on a worker thread, but the core is stepped right after the
 * gateway publishes its input, and its output is handed to the actor in the same turn. A request
 * then costs no thread wake-up at all (on a worker: an Atomics.notify to wake the partition, and an
 * eventfd write and epoll return to wake the gateway back), which is most of the broker's CPU per
 * message at low rates.
 *
 * What it gives up: the log's writes (and, under fsync `always`, its fdatasyncs) run on the thread
 * that also serves every socket, so throughput at high rates is that one thread's; and a partition
 * no longer dies alone with a thread. A throw from a core is this group's crash: the rest of the
 * gateway is untouched, the actors fail what they have in flight (PARTITION_UNAVAILABLE,
 * retryable), the log is dropped unflushed (as a dead thread's would be), and the supervisor
 * restarts the group, which replays the log before serving again. Its replay runs on the gateway's
 * thread too.
 *
 * Rings on demand: a partition here gets its two rings when it is first used (the actor writes a
 * request, or the core an answer) and lets go of them once it has been quiet for its idle period
 * and both are empty (`LazyRings`), so an idle partition holds none.
 * A move to worker threads allocates new rings for the thread anyway (partitionSlot).
 */
import type { ChildExit } from '../supervisor/index.js';
import { ChildCrashedError, ChildKilledError } from '../supervisor/index.js';
import { createRing, Doorbell, MIN_CAPACITY, RingReader, RingWriter } from '../ring/index.js';
import { openHostedPartition, slotReady, type HostedPartition } from './open-partition.js';
import { DEFAULT_IDLE_RELEASE_MS, type PartitionPorts } from './core.js';
import {
  attachActor,
  partitionLogSlot,
  ringPairBytes,
  type ActorRuntime,
  type PartitionRef,
  type PartitionActorConfig,
  type PartitionActorGroup,
  type PartitionResources,
  type PartitionRings,
} from './ref.js';


export interface GatewayHostedOptions {
  /** Used in errors ("child NAME crashed"). */
  name: string;
  testHooks: boolean;
}

export class GatewayHostedPartitions implements PartitionActorGroup, ActorRuntime {
  readonly worker = null;
  readonly deliversOutput = true;
  readonly actors: PartitionRef[];
  private readonly hosted: HostedPartition[] = [];
  private readonly rings: LazyRings[];
  /** Slots whose core has input (or a re-entrant request) waiting for the step loop. */
  private readonly wanted: boolean[];
  private stepping = false;
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  private exit: ChildExit | null = null;
  private handingOver = false;
  private readonly exitListeners: Array<(e: ChildExit) => void> = [];

  private constructor(
    configs: PartitionActorConfig[],
    private readonly opts: GatewayHostedOptions,
    moving: readonly (PartitionRef | undefined)[] | undefined,
  ) {
    this.rings = configs.map(
      (c, i) => new LazyRings(c.ringBytes, c.idleReleaseMs ?? DEFAULT_IDLE_RELEASE_MS, (input, output) => this.actors[i]?.attachRings(input, output), () => this.actors[i]?.deliverOutput()),
    );
    try {
      for (const [i, c] of configs.entries()) this.hosted.push(openHostedPartition(partitionLogSlot(c), this.rings[i]!, c.ringBytes));
    } catch (err) {
      for (const h of this.hosted) h.log.destroy();
      throw err;
    }
    this.wanted = configs.map(() => false);
    this.actors = configs.map((c, i) => attachActor(c, this, i, this.rings[i]!.buffers, slotReady(this.hosted[i]!.log), moving?.[i]));
    this.arm();
  }

  /**
   * Open (and recover) every partition's log on this thread. Async only to match a thread's start:
   * the replay itself runs synchronously here. `moving`: as for PartitionThread.start.
   */
  static async start(configs: PartitionActorConfig[], opts: GatewayHostedOptions, moving?: readonly (PartitionRef | undefined)[]): Promise<GatewayHostedPartitions> {
    return new GatewayHostedPartitions(configs, opts, moving);
  }

  // ── ActorRuntime ─────────────────────────────────────────────────────────────────────────────

  /**
   * Step the slot's core now, in the caller's turn (the gateway's flush), and deliver its answers.
   * Re-entrant calls (an answer's waiter publishing more input) are taken by the running loop.
   */
  inputPublished(slot: number): void {
    this.wanted[slot] = true;
    if (!this.stepping && this.exit === null) this.run();
  }

  describe(slot: number): Promise<{ start: number; end: number }> {
    const log = this.hosted[slot]!.log;
    return Promise.resolve({ start: log.logStartOffset, end: log.durableOffset });
  }

  /**
   * Crash at the next turn, as a thread handles the same request. An out-of-memory cannot be
   * confined to a part of the gateway's heap: both are a core's throw here.
   */
  crash(how: 'throw' | 'oom'): void {
    if (this.opts.testHooks) setImmediate(() => this.fail(new Error(`injected crash (test hook: ${how})`)));
  }

  onExit(listener: (e: ChildExit) => void): void {
    if (this.exit !== null) queueMicrotask(() => listener(this.exit!));
    else this.exitListeners.push(listener);
  }

  attachRings(slot: number): void {
    this.rings[slot]!.allocate();
  }

  resources(slot: number): PartitionResources {
    const held = this.hosted[slot]!.core.heldResources();
    return { host: 'gateway', ringBytes: this.rings[slot]!.bytes, bufferBytes: held.bytes, fds: held.fds };
  }

  // ── ChildHandle ──────────────────────────────────────────────────────────────────────────────

  handOver(): void {
    this.handingOver = true;
  }

  /** Graceful stop: the gateway stopped producing; answer what is in the rings, flush, fsync, close. */
  async close(): Promise<void> {
    if (this.exit !== null) return;
    this.wanted.fill(true);
    this.run();
    if (this.exit !== null) return; // the last step failed: that was the exit
    this.stop();
    let error: unknown = null;
    for (const [i, h] of this.hosted.entries()) {
      try {
        h.core.close(this.handingOver);
        this.actors[i]!.deliverOutput(); // final (empty) answers to parked fetches
      } catch (err) {
        error ??= err;
        h.log.destroy();
      }
    }
    this.exited(error === null ? { normal: true, reason: null } : { normal: false, reason: new ChildCrashedError({ id: this.opts.name }, error) });
  }

  /** Stop now, without flushing (what a dead thread leaves: acknowledged records are already written). */
  destroy(): void {
    if (this.exit !== null) return;
    this.stop();
    for (const h of this.hosted) h.log.destroy();
    this.exited({ normal: false, reason: new ChildKilledError({ id: this.opts.name }) });
  }

  // ── internals ────────────────────────────────────────────────────────────────────────────────

  private run(): void {
    this.stepping = true;
    try {
      // A group stops at maxGroupBytes, and an answer's waiter may publish more: go round again.
      while (this.wanted.includes(true)) {
        for (let i = 0; i < this.hosted.length; i++) {
          if (!this.wanted[i]) continue;
          this.wanted[i] = false;
          const h = this.hosted[i]!;
          const actor = this.actors[i]!;
          const t0 = performance.now();
          const now = Date.now();
          if (h.core.step(now)) this.rings[i]!.usedAt = now;
          actor.gatewayMs += performance.now() - t0;
          actor.deliverOutput();
          if (h.ports.input.available() > 0) this.wanted[i] = true;
        }
      }
    } catch (err) {
      this.stepping = false;
      this.fail(err);
      return;
    }
    this.stepping = false;
    this.arm();
  }

  /** Keep one timer, at the earliest deadline of any core (parked fetches, interval fsync). */
  private arm(): void {
    if (this.exit !== null) return;
    const now = Date.now();
    let at = now + 60_000; // each core's nextDeadline is nearer: at most its retention check away
    for (const h of this.hosted) at = Math.min(at, h.core.nextDeadline(now));
    if (this.timer !== null && this.timerAt <= at) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(this.onTimer, Math.max(0, at - now));
    this.timer.unref();
  }

  private readonly onTimer = (): void => {
    this.timer = null;
    this.timerAt = Infinity;
    if (this.exit !== null) return;
    this.wanted.fill(true);
    if (this.stepping) return;
    this.run();
    if (this.exit === null) this.releaseQuietRings(Date.now());
  };

  /**
   * Let go of the rings of every partition that neither took a request nor answered one for its
   * idle period, and whose rings are empty on both sides. (A partition whose subscribers long-poll
   * it keeps them: each poll's answer is ring traffic; its buffers and fds go anyway.)
   */
  private releaseQuietRings(now: number): void {
    for (let i = 0; i < this.hosted.length; i++) {
      const rings = this.rings[i]!;
      const actor = this.actors[i]!;
      if (rings.bytes === 0 || now - rings.usedAt < rings.idleMs || !rings.quiet || !actor.ringsQuiet) continue;
      actor.detachRings();
      rings.release();
    }
  }

  /** A core threw: this group's crash (see the file comment). */
  private fail(err: unknown): void {
    if (this.exit !== null) return;
    this.stop();
    for (const h of this.hosted) h.log.destroy();
    this.exited({ normal: false, reason: new ChildCrashedError({ id: this.opts.name }, err) });
  }

  private stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private exited(e: ChildExit): void {
    this.exit = e;
    for (const l of this.exitListeners) l(e);
    this.exitListeners.length = 0;
  }
}

/** What a partition without rings reads: a ring nobody writes, shared by all of them. */
const NO_INPUT = new RingReader(createRing(MIN_CAPACITY));

/**
 * One gateway-hosted partition's two rings, and the core's ports to them: allocated when first
 * needed (the actor asks through ActorRuntime.attachRings, or the core writes an answer: the
 * `output` getter) and dropped by release() once both are empty. Without them the core reads
 * NO_INPUT. The actor is handed new rings (`attached`) as they are allocated.
 */
class LazyRings implements PartitionPorts {
  private sabs: PartitionRings | null = null;
  private reader: RingReader | null = null;
  private writer: RingWriter | null = null;
  private inBell: Doorbell | null = null;
  /** When the rings last carried a request or an answer (set by the step loop). */
  usedAt = -Infinity;

  constructor(
    private readonly ringBytes: number,
    /** Unused this long, and empty, the rings are released. */
    readonly idleMs: number,
    private readonly attached: (input: SharedArrayBuffer, output: SharedArrayBuffer) => void,
    /** Hand what the core published to the actor now (the step loop does after each step). */
    private readonly deliver: () => void,
  ) {}

  get input(): RingReader {
    return this.reader ?? NO_INPUT;
  }

  get output(): RingWriter {
    return this.writer ?? this.allocate().writer!;
  }

  /** The rings, or null while there are none. */
  get buffers(): PartitionRings | null {
    return this.sabs;
  }

  /** Bytes of the rings held now. */
  get bytes(): number {
    return this.sabs === null ? 0 : ringPairBytes(this.ringBytes);
  }

  /** Everything written to either ring was taken by its reader (the actor's side is checked by the actor). */
  get quiet(): boolean {
    const r = this.reader;
    const w = this.writer;
    return r === null || w === null || (r.available() === 0 && r.unreleased() === 0 && w.pending() === 0 && !w.isStaging());
  }

  allocate(): this {
    if (this.sabs !== null) return this;
    const input = createRing(this.ringBytes);
    const output = createRing(this.ringBytes);
    this.sabs = { input, output };
    this.reader = new RingReader(input);
    this.writer = new RingWriter(output);
    this.inBell = new Doorbell(input);
    this.usedAt = Date.now();
    this.attached(input, output);
    return this;
  }

  release(): void {
    this.sabs = null;
    this.reader = null;
    this.writer = null;
    this.inBell = null;
  }

  // The actor may be waiting (waitForSpaceAsync) to move held entries into the input ring.
  inputReleased(): void {
    this.inBell?.notifySpace();
  }

  // The step loop hands output over after each step; nobody waits on the output ring.
  outputPublished(): void {}

  // Output ring full mid-step: hand what is published to the actor now, which frees it all.
  waitForOutputSpace(bytes: number): boolean {
    this.deliver();
    return this.output.canWrite(bytes);
  }
}
