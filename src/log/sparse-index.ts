/**
 * The sparse offset/time index of one segment, in memory (pure, no IO).
 *
 * On disk and in memory it is the same bytes: fixed 16-byte entries, little-endian,
 *
 *   0  u32  relativeOffset   record offset - segment base offset
 *   4  u32  filePosition     byte position of that record in the segment's .log file
 *   8  u32  timestampLow     the record's timestamp (ms) ┐
 *  12  u32  timestampHigh                               ┘
 *
 * Invariants of a well-formed index (checked by `validPrefixLength`): the first entry is (0, 0);
 * relativeOffset and filePosition strictly ascend; timestamps do not decrease; every filePosition is
 * below the .log file size. Because timestamps are non-decreasing within a partition, the same
 * entries serve offset lookups and timestamp lookups.
 *
 * Storage is a growable Uint8Array with a Uint32Array view over it; the view is host-endian, so the
 * module refuses to load on a big-endian host rather than write a wrong file.
 */

export const INDEX_ENTRY_BYTES = 16;
const WORDS = 4;
const TWO_32 = 0x1_0000_0000;

if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) {
  throw new Error('weir log: the sparse index assumes a little-endian host');
}

export class SparseIndex {
  private bytes: Uint8Array;
  private words: Uint32Array;
  private n = 0;

  constructor(initialEntries = 16) {
    this.bytes = new Uint8Array(Math.max(1, initialEntries) * INDEX_ENTRY_BYTES);
    this.words = new Uint32Array(this.bytes.buffer);
  }

  /** An index over a copy of `raw` (whole entries only; a trailing partial entry is ignored). */
  static fromBytes(raw: Uint8Array): SparseIndex {
    const count = Math.floor(raw.length / INDEX_ENTRY_BYTES);
    const idx = new SparseIndex(count + 16);
    idx.bytes.set(raw.subarray(0, count * INDEX_ENTRY_BYTES));
    idx.n = count;
    return idx;
  }

  get count(): number {
    return this.n;
  }

  relOffset(i: number): number {
    return this.words[i * WORDS]!;
  }
  position(i: number): number {
    return this.words[i * WORDS + 1]!;
  }
  timestamp(i: number): number {
    return this.words[i * WORDS + 3]! * TWO_32 + this.words[i * WORDS + 2]!;
  }

  push(relOffset: number, position: number, timestamp: number): void {
    if (this.n * INDEX_ENTRY_BYTES === this.bytes.length) this.grow();
    const w = this.n * WORDS;
    this.words[w] = relOffset;
    this.words[w + 1] = position;
    this.words[w + 2] = timestamp >>> 0;
    this.words[w + 3] = Math.floor(timestamp / TWO_32);
    this.n++;
  }

  /** Keep the first `count` entries. */
  truncate(count: number): void {
    if (count < this.n) this.n = Math.max(0, count);
  }

  /** The encoded bytes of entries [from, to): a view, valid until the next push. */
  entryBytes(from = 0, to = this.n): Uint8Array {
    return this.bytes.subarray(from * INDEX_ENTRY_BYTES, to * INDEX_ENTRY_BYTES);
  }

  /** Last entry whose relativeOffset <= rel, or -1. */
  floorByOffset(rel: number): number {
    let lo = 0;
    let hi = this.n - 1;
    let found = -1;
    const w = this.words;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (w[mid * WORDS]! <= rel) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  /**
   * Last entry whose timestamp is < ts, or -1. The first record with timestamp >= ts is at or after
   * that entry (timestamps are non-decreasing), so a scan starts there.
   */
  lastBeforeTimestamp(ts: number): number {
    let lo = 0;
    let hi = this.n - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.timestamp(mid) < ts) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  /**
   * Length of the longest well-formed prefix for a .log file of `fileSize` bytes (see the invariants
   * above). Recovery keeps that prefix of the last segment and rebuilds a sealed segment's index when
   * the prefix is not the whole index.
   */
  validPrefixLength(fileSize: number): number {
    for (let i = 0; i < this.n; i++) {
      const rel = this.relOffset(i);
      const pos = this.position(i);
      if (pos >= fileSize) return i;
      if (i === 0) {
        if (rel !== 0 || pos !== 0) return 0;
        continue;
      }
      if (rel <= this.relOffset(i - 1) || pos <= this.position(i - 1) || this.timestamp(i) < this.timestamp(i - 1)) {
        return i;
      }
    }
    return this.n;
  }

  private grow(): void {
    const next = new Uint8Array(this.bytes.length * 2);
    next.set(this.bytes);
    this.bytes = next;
    this.words = new Uint32Array(next.buffer);
  }
}
