/**
 * The wait/notify layer of the ring, kept apart from the wait-free ring itself (ringbuf.js style).
 *
 * Protocol (the same for both directions; the "sleeper" is the consumer waiting for data or the
 * producer waiting for space, the "waker" is the other side):
 *
 *   sleeper                                          waker (after publish() / release())
 *   1. Atomics.store(FLAG, 1)           announce     a. Atomics.store(INDEX, new)  (publish/release)
 *   2. re-check the indexes and CLOSED  ── if ready: return (FLAG back to 0)
 *   3. Atomics.wait(FLAG, 1, remaining)              b. if Atomics.load(FLAG) !== 0
 *   4. loop to 1 until the deadline                       && Atomics.exchange(FLAG, 0) !== 0:
 *                                                           Atomics.notify(FLAG, 1)
 *
 * Why no notification is lost: JS Atomics are sequentially consistent. If the re-check (2) missed the
 * index store (a), then (1) precedes (b) in the single total order, so the waker sees FLAG = 1, clears
 * it and notifies. The sleeper parks ON the flag word with expected value 1, so if the clear in (b)
 * lands between (2) and (3), Atomics.wait returns 'not-equal' at once instead of sleeping. close()
 * stores CLOSED = 1 and then clears and notifies both flags: the same argument covers it. Still, every
 * wait has a timeout and re-checks on every wake-up (house-style pitfalls 4 and 6).
 *
 * Cost: on the uncontended path ring()/notifySpace() are one Atomics.load of a cache line nobody
 * writes while both sides are busy. At most ONE Atomics.notify per sleep: the exchange clears the flag.
 *
 * Sync waits (waitForData, waitForSpace) park the whole thread with Atomics.wait: use them only in a
 * worker whose event loop has nothing pending (pitfall 1), never on the main thread (pitfall 2). The
 * async waits use Atomics.waitAsync and hold a ref'd timer meanwhile, because a pending waitAsync does
 * not keep a Node thread alive (pitfall 3, nodejs/node #44729).
 *
 * Two flavours:
 * - `Doorbell(sab)` judges data and space from the SHARED indexes only. Call `reader.release()`
 *   before waitForData (else consumed-but-unreleased bytes count as data and it returns 'ok' at
 *   once) and `writer.publish()` before waitForSpace (else it can report 'ok' while begin() fails).
 * - `ConsumerDoorbell(reader)` / `ProducerDoorbell(writer)` do that release/publish for you and add
 *   writeSync/writeAsync with a total time budget. Prefer them.
 *
 * One sleeper per flag per Doorbell instance: a second concurrent wait throws RingStateError.
 */

import { RingClosedError, RingRecordTooLargeError, RingStateError, RingTimeoutError } from './errors.js';
import { LENGTH_PREFIX_BYTES, Slot, frameBytes, headerView, ringCapacity } from './layout.js';
import type { RingReader, RingWriter } from './spsc.js';

/** 'ok': the condition holds; 'closed': the ring is closed (and, for data, drained); 'timed-out'. */
export type WaitResult = 'ok' | 'timed-out' | 'closed';

/** setTimeout's limit; a longer keep-alive timer would fire at once. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

type WaitAsyncResult =
  | { async: false; value: 'not-equal' | 'timed-out' }
  | { async: true; value: Promise<'ok' | 'timed-out'> };
type WaitAsync = (array: Int32Array, index: number, value: number, timeoutMs: number) => WaitAsyncResult;

// Atomics.waitAsync exists in Node >= 16 but is typed only from lib ES2024; the project targets ES2022.
const atomicsWaitAsync = (Atomics as unknown as { waitAsync?: WaitAsync }).waitAsync;

function waitAsync(array: Int32Array, index: number, value: number, timeoutMs: number): WaitAsyncResult {
  if (atomicsWaitAsync === undefined) throw new Error('Atomics.waitAsync is not available (Node >= 20 is required)');
  return atomicsWaitAsync.call(Atomics, array, index, value, timeoutMs);
}

function checkTimeout(timeoutMs: number): void {
  if (!(timeoutMs >= 0 && timeoutMs <= MAX_TIMEOUT_MS)) {
    throw new RangeError(`timeout must be a finite number of ms in [0, ${MAX_TIMEOUT_MS}], got ${timeoutMs}`);
  }
}

/**
 * Close the ring from either side: store CLOSED = 1 (never reset), then wake both sleepers so a
 * blocked wait returns promptly. Idempotent. The producer's begin() throws RingClosedError from now
 * on; the consumer can still drain what was published.
 */
export function closeRing(sab: SharedArrayBuffer): void {
  const header = headerView(sab);
  // CLOSED first: a sleeper that wakes, or re-checks later, must observe it.
  Atomics.store(header, Slot.CLOSED, 1);
  // Unconditional clear + notify (not wake()): the clear is what makes a sleeper that sits between
  // its re-check and Atomics.wait return 'not-equal' instead of sleeping.
  Atomics.store(header, Slot.CONSUMER_WAITING, 0);
  Atomics.notify(header, Slot.CONSUMER_WAITING);
  Atomics.store(header, Slot.PRODUCER_WAITING, 0);
  Atomics.notify(header, Slot.PRODUCER_WAITING);
}

/** Probe run after announcing: the result to report now, or null to keep waiting. */
export type Probe = () => WaitResult | null;

/** The sleep loop on one flag word (CONSUMER_WAITING, PRODUCER_WAITING, or a thread bell's flag). */
export class Sleeper {
  readonly #header: Int32Array;
  /** Index of the flag word in `header`. */
  readonly #flag: number;
  #sleeping = false;

  constructor(header: Int32Array, flag: number) {
    this.#header = header;
    this.#flag = flag;
  }

  /**
   * Wake the sleeper on this flag if (and only if) it announced itself; true if it notified.
   * Flag writers: the sleeper (1, then 0), wakers and close() (0). The load is the fast path (a stale
   * 0 is harmless: the sleeper re-checks after announcing); the exchange makes sure only one waker
   * pays for the notify.
   */
  wake(): boolean {
    if (Atomics.load(this.#header, this.#flag) === 0) return false;
    if (Atomics.exchange(this.#header, this.#flag, 0) === 0) return false;
    Atomics.notify(this.#header, this.#flag, 1);
    return true;
  }

  sleepSync(probe: Probe, timeoutMs: number): WaitResult {
    const started = this.#enter();
    try {
      for (;;) {
        const ready = this.#announceAndProbe(probe);
        if (ready !== null) return ready;
        const remaining = started + timeoutMs - performance.now();
        if (remaining <= 0) return 'timed-out';
        // Parks only while FLAG is still 1. 'ok', 'not-equal' and 'timed-out' all lead to the same
        // re-check at the top of the loop, so the result is not needed.
        Atomics.wait(this.#header, this.#flag, 1, remaining);
      }
    } finally {
      this.#leave();
    }
  }

  async sleepAsync(probe: Probe, timeoutMs: number): Promise<WaitResult> {
    this.#enter();
    // The deadline is our own ref'd timer, not a waitAsync timeout: V8 schedules such a timeout as
    // a delayed task, and posting it wakes this thread's event loop (an eventfd write, read and
    // epoll round) on every wait, i.e. on every delivery. The timer also keeps the thread alive,
    // which a pending waitAsync alone does not (nodejs/node #44729).
    let timedOut = false;
    let expire!: () => void;
    const expired = new Promise<void>((resolve) => (expire = resolve));
    const deadline = setTimeout(() => {
      timedOut = true;
      expire();
    }, Math.min(MAX_TIMEOUT_MS, timeoutMs));
    try {
      for (;;) {
        const ready = this.#announceAndProbe(probe);
        if (ready !== null) return ready;
        if (timedOut) return 'timed-out';
        const result = waitAsync(this.#header, this.#flag, 1, Infinity);
        if (!result.async) continue;
        await Promise.race([result.value, expired]);
        // Retire the waiter the deadline left behind, or the next notify would go to it (a lost wake-up).
        if (timedOut) Atomics.notify(this.#header, this.#flag);
      }
    } finally {
      clearTimeout(deadline);
      this.#leave();
    }
  }

  #enter(): number {
    if (this.#sleeping) throw new RingStateError('only one wait at a time per side of a ring');
    this.#sleeping = true;
    return performance.now();
  }

  #leave(): void {
    // Withdraw the announcement so the waker stops paying for notifies nobody waits for.
    Atomics.store(this.#header, this.#flag, 0);
    this.#sleeping = false;
  }

  #announceAndProbe(probe: Probe): WaitResult | null {
    // Announce BEFORE probing (a seq-cst store, then the probe's loads): see the protocol above.
    Atomics.store(this.#header, this.#flag, 1);
    return probe();
  }
}

/**
 * Both halves of the doorbell of one ring, judged from the shared indexes. Each thread makes its own
 * instance over the same SharedArrayBuffer and uses its side's methods:
 * producer: ring(), waitForSpace*(); consumer: notifySpace(), waitForData*(); either: close().
 */
export class Doorbell {
  readonly buffer: SharedArrayBuffer;
  readonly capacity: number;
  protected readonly header: Int32Array;
  readonly #data: Sleeper;
  readonly #space: Sleeper;

  readonly #dataProbe: Probe = () => {
    // Data first: records published before close() must still be drained.
    if (this.#published() > 0) return 'ok';
    if (!this.isClosed()) return null;
    // Load WRITE_INDEX again AFTER seeing CLOSED: a producer that publishes and then closes stores
    // the index before CLOSED, so the first load may predate its last publish. This one cannot.
    return this.#published() > 0 ? 'ok' : 'closed';
  };

  #spaceProbe(payloadLength: number): Probe {
    const frame = frameBytes(payloadLength);
    return () => {
      if (this.isClosed()) return 'closed';
      return this.capacity - this.#published() >= frame ? 'ok' : null;
    };
  }

  constructor(sab: SharedArrayBuffer) {
    this.capacity = ringCapacity(sab);
    this.buffer = sab;
    this.header = headerView(sab);
    this.#data = new Sleeper(this.header, Slot.CONSUMER_WAITING);
    this.#space = new Sleeper(this.header, Slot.PRODUCER_WAITING);
  }

  /** Producer, after publish(): wake the consumer only if it announced it is waiting. */
  ring(): boolean {
    return this.#data.wake();
  }

  /** Consumer, after release(): wake the producer only if it announced it is waiting for space. */
  notifySpace(): boolean {
    return this.#space.wake();
  }

  /**
   * Consumer: block the thread (Atomics.wait) until published bytes exceed released bytes, the ring
   * is closed and drained, or `timeoutMs` passes. Worker threads only; release() first.
   */
  waitForData(timeoutMs: number): WaitResult {
    checkTimeout(timeoutMs);
    return this.#dataProbe() ?? this.#data.sleepSync(this.#dataProbe, timeoutMs);
  }

  /** Consumer: like waitForData without blocking the event loop (Atomics.waitAsync). */
  async waitForDataAsync(timeoutMs: number): Promise<WaitResult> {
    checkTimeout(timeoutMs);
    return this.#dataProbe() ?? (await this.#data.sleepAsync(this.#dataProbe, timeoutMs));
  }

  /**
   * Producer: block the thread until a record with a payload of `payloadLength` bytes fits after
   * everything published, the ring is closed, or `timeoutMs` passes. Worker threads only; publish()
   * first. @throws RingRecordTooLargeError if it can never fit.
   */
  waitForSpace(payloadLength: number, timeoutMs: number): WaitResult {
    checkTimeout(timeoutMs);
    const probe = this.#spaceProbe(this.#checkLength(payloadLength));
    return probe() ?? this.#space.sleepSync(probe, timeoutMs);
  }

  /** Producer: like waitForSpace without blocking the event loop (Atomics.waitAsync). */
  async waitForSpaceAsync(payloadLength: number, timeoutMs: number): Promise<WaitResult> {
    checkTimeout(timeoutMs);
    const probe = this.#spaceProbe(this.#checkLength(payloadLength));
    return probe() ?? (await this.#space.sleepAsync(probe, timeoutMs));
  }

  /** See closeRing(). */
  close(): void {
    closeRing(this.buffer);
  }

  isClosed(): boolean {
    return Atomics.load(this.header, Slot.CLOSED) !== 0;
  }

  /**
   * Published-but-unreleased bytes: `(WRITE_INDEX - READ_INDEX) >>> 0`, in [0, capacity].
   * Each side calls this with its own index exact (it is the only writer of it) and the other's
   * possibly stale; staleness only errs the safe way: the consumer sees less data, the producer less
   * space, and the announce-then-probe order guarantees a later wake-up for whatever it missed.
   */
  #published(): number {
    return (Atomics.load(this.header, Slot.WRITE_INDEX) - Atomics.load(this.header, Slot.READ_INDEX)) >>> 0;
  }

  #checkLength(payloadLength: number): number {
    if (!Number.isInteger(payloadLength) || payloadLength < 0) {
      throw new RangeError(`payload length must be a non-negative integer, got ${payloadLength}`);
    }
    const max = this.capacity - LENGTH_PREFIX_BYTES;
    if (payloadLength > max) throw new RingRecordTooLargeError(payloadLength, max);
    return payloadLength;
  }
}

/** The consumer's doorbell: releases consumed records before every wait. */
export class ConsumerDoorbell extends Doorbell {
  readonly #reader: RingReader;

  constructor(reader: RingReader) {
    super(reader.buffer);
    this.#reader = reader;
  }

  /**
   * Releases everything returned by next() (invalidating those views) and wakes a producer waiting
   * for that space, then waits as Doorbell.waitForData. Without the release we could sleep holding
   * the space the producer is sleeping for.
   */
  override waitForData(timeoutMs: number): WaitResult {
    checkTimeout(timeoutMs);
    this.releaseAndNotify();
    return super.waitForData(timeoutMs);
  }

  override async waitForDataAsync(timeoutMs: number): Promise<WaitResult> {
    checkTimeout(timeoutMs);
    this.releaseAndNotify();
    return super.waitForDataAsync(timeoutMs);
  }

  /** reader.release() + notifySpace(). Returns the bytes released. */
  releaseAndNotify(): number {
    const released = this.#reader.release();
    if (released > 0) this.notifySpace();
    return released;
  }
}

/** The producer's doorbell: publishes committed records before every wait. */
export class ProducerDoorbell extends Doorbell {
  readonly #writer: RingWriter;

  constructor(writer: RingWriter) {
    super(writer.buffer);
    this.#writer = writer;
  }

  /** writer.publish() + ring(). Returns true if anything was published. */
  flush(): boolean {
    if (!this.#writer.publish()) return false;
    this.ring();
    return true;
  }

  /**
   * Publishes committed records (the consumer cannot free space it cannot see) and rings, then waits
   * as Doorbell.waitForSpace. @throws RingStateError while a record is staged: its space is already
   * reserved, so waiting for more could only time out.
   */
  override waitForSpace(payloadLength: number, timeoutMs: number): WaitResult {
    checkTimeout(timeoutMs);
    this.#prepare();
    return super.waitForSpace(payloadLength, timeoutMs);
  }

  override async waitForSpaceAsync(payloadLength: number, timeoutMs: number): Promise<WaitResult> {
    checkTimeout(timeoutMs);
    this.#prepare();
    return super.waitForSpaceAsync(payloadLength, timeoutMs);
  }

  /**
   * Write one record, blocking the thread for space for at most `timeoutMs` in total. Committed, not
   * published: call flush() when the batch is done. Worker threads only.
   * @throws RingTimeoutError when the budget runs out, RingClosedError if the ring closes.
   */
  writeSync(payload: Uint8Array, timeoutMs: number): void {
    checkTimeout(timeoutMs);
    const deadline = performance.now() + timeoutMs;
    while (!this.#writer.tryWrite(payload)) {
      const remaining = Math.max(0, deadline - performance.now());
      settle(this.waitForSpace(payload.length, remaining), timeoutMs);
    }
  }

  /** Like writeSync but waits with Atomics.waitAsync. */
  async writeAsync(payload: Uint8Array, timeoutMs: number): Promise<void> {
    checkTimeout(timeoutMs);
    const deadline = performance.now() + timeoutMs;
    while (!this.#writer.tryWrite(payload)) {
      const remaining = Math.max(0, deadline - performance.now());
      settle(await this.waitForSpaceAsync(payload.length, remaining), timeoutMs);
    }
  }

  #prepare(): void {
    if (this.#writer.isStaging()) {
      throw new RingStateError('waiting for space while a record is staged: commit() or abort() it first');
    }
    this.flush();
  }
}

function settle(result: WaitResult, timeoutMs: number): void {
  if (result === 'closed') throw new RingClosedError();
  if (result === 'timed-out') throw new RingTimeoutError('waiting for ring space', timeoutMs);
}
