/**
 * The one place that declares the shared memory of a ring (house-style principle 3).
 *
 * A ring is one SharedArrayBuffer: a header of Int32 slots followed by the data region.
 *
 * ```
 *  byte 0                                                                            HEADER_BYTES
 *  ├── line 0 (64 B) ──┬── line 1 ──┬── line 2 ──┬── line 3 ──────────┬── line 4 ──────────┤
 *  │ MAGIC CAPACITY    │ WRITE_INDEX│ READ_INDEX │ CONSUMER_WAITING   │ PRODUCER_WAITING   │
 *  │ CLOSED            │ (producer) │ (consumer) │ (consumer parks)   │ (producer parks)   │
 *  └───────────────────┴────────────┴────────────┴────────────────────┴────────────────────┘
 *  HEADER_BYTES                                                       HEADER_BYTES + capacity
 *  ├── data region: `capacity` bytes, a byte pipe indexed by `position & (capacity - 1)` ──┤
 * ```
 *
 * Cache lines: each 64-byte line has ONE regular writer, so the producer's stores and the consumer's
 * stores never invalidate each other's lines (no false sharing). Line 0 is written once at creation
 * and once at close, so both sides keep it cached. The waiting flags get their own lines because the
 * other side polls them on every publish/release: a line nobody writes while both sides are busy
 * stays cached and the poll costs no coherence traffic.
 *
 * Positions (WRITE_INDEX, READ_INDEX) are monotonic byte counters stored as Int32 and read back as
 * unsigned (`>>> 0`). They wrap at 2^32. Because `capacity` is a power of two ≤ 2^30 it divides 2^32,
 * so `position & (capacity - 1)` is the byte index in the data region across the wrap, and the fill
 * level is always the unsigned distance `(write - read) >>> 0`, which lies in `[0, capacity]`.
 * Never compare positions with `===` to wait for a target (house-style pitfall 5): use distances.
 *
 * Record frame (see spsc.ts): `u32 little-endian payload length`, the payload, then zero padding to
 * the next multiple of RECORD_ALIGN. Frames start at 4-aligned positions and capacity is a multiple of
 * 4, so a length prefix never straddles the wrap point; payload bytes do (byte-pipe semantics). A
 * prefix of SKIP_TO_LAP is not a record: the frames go on at the next lap's index 0.
 */

import { RingLayoutError } from './errors.js';

/** Bytes per cache line on every CPU we target (x86-64, arm64 L1). */
export const CACHE_LINE_BYTES = 64;
const SLOTS_PER_LINE = CACHE_LINE_BYTES / Int32Array.BYTES_PER_ELEMENT; // 16

/**
 * Int32 slot indexes into `new Int32Array(sab, 0, HEADER_SLOTS)`.
 * "Writer" below means who stores to the slot; every access goes through `Atomics`.
 */
export const Slot = {
  /** Written once by createRing; read by constructors to validate the buffer. */
  MAGIC: 0,
  /** Data region size in bytes. Written once by createRing; read-only afterwards. */
  CAPACITY: 1,
  /** 0 = open, 1 = closed. Either side may store 1 (never back to 0). Read by both. */
  CLOSED: 2,
  /** Producer-owned: position just past the last PUBLISHED frame. Consumer reads (acquire). */
  WRITE_INDEX: 1 * SLOTS_PER_LINE,
  /** Consumer-owned: position just past the last RELEASED frame. Producer reads (acquire). */
  READ_INDEX: 2 * SLOTS_PER_LINE,
  /**
   * 1 while the consumer is parked (or about to park) waiting for data; it parks ON this word with
   * expected value 1. Set to 1 by the consumer; cleared to 0 by the producer's ring() (which then
   * notifies), by close(), or by the consumer itself after waking.
   */
  CONSUMER_WAITING: 3 * SLOTS_PER_LINE,
  /** Mirror of CONSUMER_WAITING for a producer parked waiting for space; cleared by notifySpace(). */
  PRODUCER_WAITING: 4 * SLOTS_PER_LINE,
} as const;
export type Slot = (typeof Slot)[keyof typeof Slot];

/** Number of Int32 slots in the header (5 cache lines). */
export const HEADER_SLOTS = 5 * SLOTS_PER_LINE;
/** Byte offset of the data region; a multiple of the cache line so data starts on a fresh line. */
export const HEADER_BYTES = HEADER_SLOTS * Int32Array.BYTES_PER_ELEMENT; // 320

/**
 * 'WRNG' in ASCII; a mismatch means the SAB is not a ring. Change it if the header ever changes
 * shape, so a buffer from an older layout is rejected instead of misread.
 */
export const RING_MAGIC = 0x57524e47;

/** Frames start on multiples of this; payloads are zero-padded up to it. */
export const RECORD_ALIGN = 4;
/** Bytes of the u32 little-endian length prefix. */
export const LENGTH_PREFIX_BYTES = 4;

/**
 * A length prefix no record has (a record is shorter than the capacity, ≤ 2^30): the rest of this
 * lap is skipped and the next frame starts at index 0. The writer writes it only into an empty ring
 * (see RingWriter), so the skipped bytes are free; they count as used until the reader passes them.
 */
export const SKIP_TO_LAP = 0xffffffff;
/** A writer this far into a lap that finds the ring empty goes back to index 0 (SKIP_TO_LAP). */
export const REWIND_AFTER_BYTES = 64 * 1024;
/**
 * ... but only if it took at least this long to write those bytes: a fast writer's next burst may
 * need the whole ring, and right after a rewind it has only the bytes before the skipped ones.
 */
export const REWIND_MIN_STRIDE_MS = 10;

export const MIN_CAPACITY = 4 * 1024;
/** 2^30: the largest power of two that divides 2^32 with room to tell "full" from "empty". */
export const MAX_CAPACITY = 2 ** 30;

/** RingWriter.maxRecordBytes() of a ring whose data region holds `capacity` bytes. */
export function maxPayloadBytes(capacity: number): number {
  return capacity - LENGTH_PREFIX_BYTES;
}

/** Bytes a frame with `payloadLength` bytes of payload occupies in the ring: prefix + padded payload. */
export function frameBytes(payloadLength: number): number {
  return LENGTH_PREFIX_BYTES + ((payloadLength + (RECORD_ALIGN - 1)) & ~(RECORD_ALIGN - 1));
}

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

/**
 * Allocate and initialise a ring whose data region holds `capacityBytes` bytes.
 * Both positions start at 0; use one ring per direction (SPSC: exactly one writer and one reader).
 */
export function createRing(capacityBytes: number): SharedArrayBuffer {
  if (!isPowerOfTwo(capacityBytes) || capacityBytes < MIN_CAPACITY || capacityBytes > MAX_CAPACITY) {
    throw new RangeError(
      `ring capacity must be a power of two in [${MIN_CAPACITY}, ${MAX_CAPACITY}] bytes, got ${capacityBytes}`,
    );
  }
  const sab = new SharedArrayBuffer(HEADER_BYTES + capacityBytes);
  const header = new Int32Array(sab, 0, HEADER_SLOTS);
  // Plain initialisation before the SAB is shared: postMessage of the SAB happens-after these stores.
  header[Slot.CAPACITY] = capacityBytes;
  header[Slot.MAGIC] = RING_MAGIC;
  return sab;
}

/**
 * Validate that `sab` is a ring and return its data capacity in bytes.
 * @throws RingLayoutError if the buffer was not made by `createRing`.
 */
export function ringCapacity(sab: SharedArrayBuffer): number {
  if (!(sab instanceof SharedArrayBuffer) || sab.byteLength < HEADER_BYTES + MIN_CAPACITY) {
    throw new RingLayoutError('not a ring: expected a SharedArrayBuffer made by createRing()');
  }
  const header = new Int32Array(sab, 0, HEADER_SLOTS);
  // Atomics.load: MAGIC/CAPACITY are immutable after creation; the atomic read only documents that
  // this memory is shared.
  const magic = Atomics.load(header, Slot.MAGIC);
  const capacity = Atomics.load(header, Slot.CAPACITY);
  if (magic !== RING_MAGIC) {
    throw new RingLayoutError(`not a ring: bad magic 0x${(magic >>> 0).toString(16)}`);
  }
  if (!isPowerOfTwo(capacity) || capacity < MIN_CAPACITY || HEADER_BYTES + capacity !== sab.byteLength) {
    throw new RingLayoutError(
      `corrupt ring header: capacity ${capacity} does not match buffer of ${sab.byteLength} bytes`,
    );
  }
  return capacity;
}

/** The header slots as an Int32Array; all accesses must use `Atomics`. */
export function headerView(sab: SharedArrayBuffer): Int32Array {
  return new Int32Array(sab, 0, HEADER_SLOTS);
}
