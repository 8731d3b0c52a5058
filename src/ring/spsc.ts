/**
 * Wait-free single-producer / single-consumer ring of variable-length records on a SharedArrayBuffer.
 *
 * Nothing in this file waits, spins or notifies: every method finishes in a bounded number of steps
 * whatever the other thread does. Blocking and wake-ups live in doorbell.ts (ringbuf.js keeps the same
 * split). Exactly ONE RingWriter and ONE RingReader may exist per ring, on any two threads.
 *
 * Frame format (4-byte aligned, see layout.ts):
 *
 * ```
 *   position p (p % 4 === 0)
 *   ├─ u32 LE payload length n ─┼─ n payload bytes ─┼─ 0..3 zero bytes ─┤  next frame at p + frameBytes(n)
 * ```
 *
 * The data region is a byte pipe: a frame's bytes continue at index 0 when they reach the end, so
 * no space is lost at the wrap. The length prefix itself never straddles because frames start
 * 4-aligned and capacity is a multiple of 4.
 *
 * Rewind. A writer REWIND_AFTER_BYTES into a lap that finds the ring empty (everything it wrote has
 * been released) writes one SKIP_TO_LAP prefix and goes on at index 0, if writing those bytes took
 * REWIND_MIN_STRIDE_MS or more. At low rates a ring then cycles through its first pages, which
 * stay in cache and TLB, instead of walking its whole capacity (megabytes of pages, each faulted
 * in on first touch: 400 page faults a second on the gateway at 5,000 msg/s before). A fast writer
 * does not rewind: until the reader passes the marker, the skipped bytes are not free, and its next
 * burst may need them. It costs one clock read and one load of the reader's index per
 * REWIND_AFTER_BYTES written.
 *
 * Memory ordering. JS Atomics are sequentially consistent. The producer writes frame bytes with
 * plain stores and then makes them visible with ONE `Atomics.store(WRITE_INDEX)` per batch (release);
 * the consumer's `Atomics.load(WRITE_INDEX)` (acquire) that observes the new value happens-after those
 * plain stores, so every byte below the loaded index is final. Symmetrically the consumer copies
 * bytes out and only then stores READ_INDEX; the producer never overwrites bytes before it has loaded
 * a READ_INDEX past them. Bytes at or above the loaded WRITE_INDEX are never read.
 */

import { copyBytes } from '../common/copy-bytes.js';
import { RingClosedError, RingCorruptError, RingRecordTooLargeError, RingStateError } from './errors.js';
import {
  HEADER_BYTES,
  LENGTH_PREFIX_BYTES,
  REWIND_AFTER_BYTES,
  REWIND_MIN_STRIDE_MS,
  SKIP_TO_LAP,
  Slot,
  frameBytes,
  headerView,
  ringCapacity,
} from './layout.js';

const EMPTY = new Uint8Array(0);

function checkPayloadLength(payloadLength: number, maxRecordBytes: number): void {
  if (!Number.isInteger(payloadLength) || payloadLength < 0) {
    throw new RangeError(`payload length must be a non-negative integer, got ${payloadLength}`);
  }
  if (payloadLength > maxRecordBytes) throw new RingRecordTooLargeError(payloadLength, maxRecordBytes);
}

export class RingWriter {
  readonly buffer: SharedArrayBuffer;
  /** Data region size in bytes (a power of two). */
  readonly capacity: number;

  readonly #header: Int32Array;
  readonly #data: Uint8Array;
  readonly #view: DataView;
  readonly #mask: number;
  readonly #maxRecordBytes: number;

  // Positions are unsigned 32-bit counters (see layout.ts); all arithmetic ends in `>>> 0`.
  /** End of the last committed frame. Private to the producer. */
  #writePos: number;
  /** Last value stored to WRITE_INDEX. */
  #publishedPos: number;
  /** Last READ_INDEX we loaded. Stale = too low = we think there is less space than there is: safe. */
  #cachedReadPos: number;
  /** Rewind when this far into a lap (REWIND_AFTER_BYTES, or half a small ring). */
  readonly #rewindAfter: number;
  /** Position from which the next begin() checks whether to rewind. */
  #rewindCheckAt: number;
  /** When the previous rewind check happened (ms, `#now`). */
  #rewindCheckTime: number;
  readonly #now: () => number;

  // Staging of the record between begin() and commit().
  #staging = false;
  /** Position of the next payload byte to append. */
  #cursor = 0;
  /** Payload bytes still owed before commit(). */
  #remaining = 0;
  /** Position just past the staged frame (including padding). */
  #frameEnd = 0;

  /** `rewind: false` keeps the plain byte pipe (tests of the wrap point); `now` is the rewind's clock. */
  constructor(sab: SharedArrayBuffer, options: { rewind?: boolean; now?: () => number } = {}) {
    this.capacity = ringCapacity(sab);
    this.buffer = sab;
    this.#header = headerView(sab);
    this.#data = new Uint8Array(sab, HEADER_BYTES, this.capacity);
    this.#view = new DataView(sab, HEADER_BYTES, this.capacity);
    this.#mask = this.capacity - 1;
    this.#maxRecordBytes = this.capacity - LENGTH_PREFIX_BYTES;
    // Resume from the shared positions (normally 0; preset by internal.ts in wrap tests).
    this.#writePos = Atomics.load(this.#header, Slot.WRITE_INDEX) >>> 0;
    this.#publishedPos = this.#writePos;
    this.#cachedReadPos = Atomics.load(this.#header, Slot.READ_INDEX) >>> 0;
    // Disabled: a check point always half a position space ahead, pushed on at every check.
    this.#rewindAfter = options.rewind === false ? 0x80000000 : Math.min(REWIND_AFTER_BYTES, this.capacity / 2);
    this.#rewindCheckAt = (this.#writePos + this.#rewindAfter) >>> 0;
    this.#now = options.now ?? Date.now;
    this.#rewindCheckTime = this.#now();
  }

  /** Largest payload that can ever fit: one frame filling the whole ring. A multiple of 4. */
  maxRecordBytes(): number {
    return this.#maxRecordBytes;
  }

  /**
   * Ring bytes not occupied by published, committed or staged frames, from a fresh load of the
   * consumer's READ_INDEX. A payload of `n` bytes needs `frameBytes(n)` of them (prefix + padding).
   */
  freeBytes(): number {
    this.#cachedReadPos = Atomics.load(this.#header, Slot.READ_INDEX) >>> 0;
    const end = this.#staging ? this.#frameEnd : this.#writePos;
    return this.capacity - ((end - this.#cachedReadPos) >>> 0);
  }

  /** Whether `begin(payloadLength)` would succeed right now (fresh READ_INDEX load). */
  canWrite(payloadLength: number): boolean {
    checkPayloadLength(payloadLength, this.#maxRecordBytes);
    return !this.#staging && this.freeBytes() >= frameBytes(payloadLength);
  }

  /** True between begin() and commit()/abort(). */
  isStaging(): boolean {
    return this.#staging;
  }

  /** True once either side called close() (doorbell.ts). Committed data may still be drained. */
  isClosed(): boolean {
    // CLOSED only ever goes 0 → 1; a stale 0 means we learn about the close one call later.
    return Atomics.load(this.#header, Slot.CLOSED) !== 0;
  }

  /**
   * Reserve space for one record of `payloadLength` bytes and write its length prefix.
   * Follow with append()/appendU32() of exactly that many bytes, then commit().
   *
   * @returns false if the ring is too full right now; nothing was written (back-pressure).
   * @throws RangeError for a negative or non-integer length.
   * @throws RingRecordTooLargeError if the payload exceeds maxRecordBytes(): it can never fit.
   * @throws RingClosedError once the ring is closed.
   * @throws RingStateError if a record is already staged.
   */
  begin(payloadLength: number): boolean {
    if (this.#staging) throw new RingStateError('begin() while a record is staged: commit() or abort() it first');
    checkPayloadLength(payloadLength, this.#maxRecordBytes);
    // CLOSED only ever goes 0 → 1, and a stale 0 delays the throw by a call at most (as in
    // isClosed()): a plain read, which TurboFan inlines; Atomics.load is a builtin call per entry.
    if (this.#header[Slot.CLOSED] !== 0) throw new RingClosedError();
    const frame = frameBytes(payloadLength);
    // At or past #rewindCheckAt (distance taken modulo 2^32, like every position comparison).
    if (((this.#writePos - this.#rewindCheckAt) >>> 0) < 0x80000000) this.#maybeRewind(frame);
    if (this.capacity - ((this.#writePos - this.#cachedReadPos) >>> 0) < frame) {
      // Only touch the consumer's cache line when the cached view says we are full.
      this.#cachedReadPos = Atomics.load(this.#header, Slot.READ_INDEX) >>> 0;
      if (this.capacity - ((this.#writePos - this.#cachedReadPos) >>> 0) < frame) return false;
    }
    // Frames are 4-aligned and capacity % 4 === 0, so the prefix never straddles the wrap.
    this.#view.setUint32(this.#writePos & this.#mask, payloadLength, true);
    this.#cursor = (this.#writePos + LENGTH_PREFIX_BYTES) >>> 0;
    this.#remaining = payloadLength;
    this.#frameEnd = (this.#writePos + frame) >>> 0;
    this.#staging = true;
    return true;
  }

  /**
   * Copy `src[start, end)` into the staged record, continuing at index 0 across the wrap point.
   * Bytes, not characters: encode strings before calling (house-style pitfall 6).
   */
  append(src: Uint8Array, start = 0, end: number = src.length): void {
    if (!(start >= 0 && start <= end && end <= src.length)) {
      throw new RangeError(`append range [${start}, ${end}) is outside a source of ${src.length} bytes`);
    }
    const n = end - start;
    this.#reserve(n);
    const at = this.#cursor & this.#mask;
    const room = this.capacity - at;
    if (n <= room) {
      copyBytes(this.#data, at, src, start, end);
    } else {
      copyBytes(this.#data, at, src, start, start + room);
      copyBytes(this.#data, 0, src, start + room, end);
    }
    this.#cursor = (this.#cursor + n) >>> 0;
    this.#remaining -= n;
  }

  /** Append `v` as 4 little-endian bytes (for small headers inside the payload). */
  appendU32(v: number): void {
    this.#reserve(4);
    const at = this.#cursor & this.#mask;
    if (at <= this.capacity - 4) {
      this.#view.setUint32(at, v >>> 0, true);
    } else {
      // Only an unaligned cursor can get here: split the word across the wrap point.
      for (let i = 0; i < 4; i++) this.#data[(at + i) & this.#mask] = (v >>> (8 * i)) & 0xff;
    }
    this.#cursor = (this.#cursor + 4) >>> 0;
    this.#remaining -= 4;
  }

  /**
   * Finish the staged record. It is committed but NOT visible to the consumer until publish().
   * @throws RingStateError if fewer bytes were appended than begin() declared.
   */
  commit(): void {
    if (!this.#staging) throw new RingStateError('commit() without begin()');
    if (this.#remaining !== 0) {
      throw new RingStateError(`commit() with ${this.#remaining} of the declared payload bytes still missing`);
    }
    // Zero the 0..3 padding bytes so the ring never carries stale bytes from an earlier lap.
    const pad = (this.#frameEnd - this.#cursor) >>> 0;
    for (let i = 0; i < pad; i++) this.#data[(this.#cursor + i) & this.#mask] = 0;
    this.#writePos = this.#frameEnd;
    this.#staging = false;
  }

  /** Drop the staged record. Nothing of it was visible; its space is free again. */
  abort(): void {
    this.#staging = false;
  }

  /** begin + append + commit. Returns false (nothing written) if the ring is too full right now. */
  tryWrite(payload: Uint8Array): boolean {
    if (!this.begin(payload.length)) return false;
    this.append(payload);
    this.commit();
    return true;
  }

  /**
   * Make every committed record visible with ONE `Atomics.store(WRITE_INDEX)`. Does not notify:
   * call the doorbell's ring() afterwards if the consumer may be parked.
   * @returns true if anything new was published.
   */
  publish(): boolean {
    // `===` is safe here: both are our own positions and at most `capacity` (< 2^32) apart.
    if (this.#writePos === this.#publishedPos) return false;
    // Release: every plain store of frame bytes above happens-before this store; a consumer that
    // loads this value sees them. Writer: producer only. Reader: consumer (next/available).
    Atomics.store(this.#header, Slot.WRITE_INDEX, this.#writePos | 0);
    this.#publishedPos = this.#writePos;
    return true;
  }

  /** Committed-but-unpublished bytes (frames including prefix and padding). */
  pending(): number {
    return (this.#writePos - this.#publishedPos) >>> 0;
  }

  /**
   * See "Rewind" in the file comment. Only between records, and only when the next `frame` fits
   * before the skipped bytes (after a rewind an empty ring has `at` bytes free), so a rewind never
   * makes begin() fail.
   */
  #maybeRewind(frame: number): void {
    this.#rewindCheckAt = (this.#writePos + this.#rewindAfter) >>> 0;
    const t = this.#now();
    const slow = t - this.#rewindCheckTime >= REWIND_MIN_STRIDE_MS;
    this.#rewindCheckTime = t;
    if (!slow) return; // a fast writer: keep the whole ring for its bursts
    const at = this.#writePos & this.#mask;
    if (at < this.#rewindAfter || frame > at) return; // near the start of a lap already, or too big
    this.#cachedReadPos = Atomics.load(this.#header, Slot.READ_INDEX) >>> 0;
    if (this.#cachedReadPos !== this.#writePos) return; // the reader has frames to go: not empty
    this.#view.setUint32(at, SKIP_TO_LAP, true);
    this.#writePos = (this.#writePos + (this.capacity - at)) >>> 0;
    this.#rewindCheckAt = (this.#writePos + this.#rewindAfter) >>> 0;
  }

  #reserve(n: number): void {
    if (!this.#staging) throw new RingStateError('append without begin()');
    if (n > this.#remaining) {
      throw new RingStateError(`append of ${n} bytes overflows the record: only ${this.#remaining} declared bytes remain`);
    }
  }
}

export class RingReader {
  readonly buffer: SharedArrayBuffer;
  /** Data region size in bytes (a power of two). */
  readonly capacity: number;

  readonly #header: Int32Array;
  readonly #data: Uint8Array;
  readonly #view: DataView;
  readonly #mask: number;

  /** Position of the next frame to return from next(). Private to the consumer. */
  #readPos: number;
  /** Last value stored to READ_INDEX. */
  #releasedPos: number;
  /** Last WRITE_INDEX we loaded. Stale = too low = we see fewer records than exist: safe. */
  #cachedWritePos: number;
  /** Reused copy target for records that straddle the wrap point; grows, never shrinks. */
  #scratch: Uint8Array = EMPTY;

  constructor(sab: SharedArrayBuffer) {
    this.capacity = ringCapacity(sab);
    this.buffer = sab;
    this.#header = headerView(sab);
    this.#data = new Uint8Array(sab, HEADER_BYTES, this.capacity);
    this.#view = new DataView(sab, HEADER_BYTES, this.capacity);
    this.#mask = this.capacity - 1;
    this.#readPos = Atomics.load(this.#header, Slot.READ_INDEX) >>> 0;
    this.#releasedPos = this.#readPos;
    this.#cachedWritePos = Atomics.load(this.#header, Slot.WRITE_INDEX) >>> 0;
  }

  /** Published bytes (whole frames) not yet returned by next(). Fresh acquire-load of WRITE_INDEX. */
  available(): number {
    this.#cachedWritePos = Atomics.load(this.#header, Slot.WRITE_INDEX) >>> 0;
    return (this.#cachedWritePos - this.#readPos) >>> 0;
  }

  /** Bytes returned by next() but not yet handed back with release(). */
  unreleased(): number {
    return (this.#readPos - this.#releasedPos) >>> 0;
  }

  /** True once either side called close(). Published records can still be drained with next(). */
  isClosed(): boolean {
    return Atomics.load(this.#header, Slot.CLOSED) !== 0;
  }

  /**
   * The next record's payload, or null if no published record is left.
   *
   * CONTRACT: the result is valid only until the next call to next() or release() (or a doorbell
   * wait, which releases). When the payload is contiguous it is a VIEW into the SharedArrayBuffer,
   * which the producer overwrites once it is released; when it straddles the wrap point it is a view
   * of a reused scratch buffer. Decode or copy it before that (house-style pitfall 7), and never pass
   * it to code that keeps it or reads it later (uWS send, cbor-x without copyBuffers, postMessage).
   *
   * Allocation: one Uint8Array view object per non-empty record (the bytes are not copied), plus
   * scratch growth for straddling records.
   *
   * @throws RingCorruptError if a length prefix is impossible (shared memory was overwritten).
   */
  next(): Uint8Array | null {
    let available = (this.#cachedWritePos - this.#readPos) >>> 0;
    if (available === 0) {
      // Acquire: frame bytes below the loaded index are final (see file comment). A stale value only
      // delays records until the next call.
      this.#cachedWritePos = Atomics.load(this.#header, Slot.WRITE_INDEX) >>> 0;
      available = (this.#cachedWritePos - this.#readPos) >>> 0;
      if (available === 0) return null;
    }
    let at = this.#readPos & this.#mask;
    let length = this.#view.getUint32(at, true);
    if (length === SKIP_TO_LAP) {
      // The writer rewound (see the file comment): the next frame starts this lap's end.
      const skip = this.capacity - at;
      if (skip > available || available > this.capacity) {
        throw new RingCorruptError(`skip of ${skip} bytes with ${available} bytes published`, { length, available, readPosition: this.#readPos });
      }
      this.#readPos = (this.#readPos + skip) >>> 0;
      available -= skip;
      if (available === 0) return null;
      at = 0;
      length = this.#view.getUint32(0, true);
    }
    // Published data is always whole frames; anything else means the memory was corrupted.
    if (length > available - LENGTH_PREFIX_BYTES || available > this.capacity) {
      throw new RingCorruptError(`impossible record length ${length} with ${available} bytes published`, {
        length,
        available,
        readPosition: this.#readPos,
      });
    }
    this.#readPos = (this.#readPos + frameBytes(length)) >>> 0;
    if (length === 0) return EMPTY;
    const start = (at + LENGTH_PREFIX_BYTES) & this.#mask;
    if (start + length <= this.capacity) {
      return new Uint8Array(this.buffer, HEADER_BYTES + start, length);
    }
    // Straddles the wrap point: stitch the two pieces together in the scratch buffer.
    if (this.#scratch.length < length) {
      this.#scratch = new Uint8Array(Math.max(256, 2 ** Math.ceil(Math.log2(length))));
    }
    const head = this.capacity - start;
    this.#scratch.set(this.#data.subarray(start, this.capacity), 0);
    this.#scratch.set(this.#data.subarray(0, length - head), head);
    return this.#scratch.subarray(0, length);
  }

  /**
   * Hand everything returned by next() so far back to the producer with ONE
   * `Atomics.store(READ_INDEX)`. Views from next() are invalid afterwards. Does not notify: call the
   * doorbell's notifySpace() afterwards if the producer may be parked.
   * @returns the number of ring bytes released.
   */
  release(): number {
    const released = (this.#readPos - this.#releasedPos) >>> 0;
    if (released === 0) return 0;
    // Release ordering: our reads of the released frames happen-before this store, so the producer
    // (which acquire-loads READ_INDEX before reusing the space) cannot overwrite bytes still being read.
    // Writer: consumer only. Reader: producer (begin/freeBytes).
    Atomics.store(this.#header, Slot.READ_INDEX, this.#readPos | 0);
    this.#releasedPos = this.#readPos;
    return released;
  }
}
