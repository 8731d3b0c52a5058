/**
 * One reusable buffer for the records a share window reads ahead. Regions are released in the
 * order they were taken (a window drops its chunks from the front as `start` advances), so the
 * free space is always one or two runs of a ring and taking or releasing is O(1).
 *
 * Why: copying each read out of the partition's ring into a fresh ArrayBuffer allocated external
 * memory for every queued message, and V8 answers external-memory growth with full mark-compacts on
 * the gateway thread (docs/performance.md). A region that does not fit is the caller's to allocate, as before.
 *
 *   [ free | live: tail … head | free ]        or, wrapped,   [ live … head | free | tail … live ]
 */
export class FifoArena {
  private buf: Uint8Array | null = null;
  /** Next byte to hand out. */
  private head = 0;
  /** First byte still live. */
  private tail = 0;
  private live = 0;

  constructor(private readonly capacity: number) {}

  /**
   * A copy of `bytes` in the arena, and the arena position to pass to release() once it is no
   * longer used; null when it does not fit (the caller copies it elsewhere).
   */
  copy(bytes: Uint8Array): { view: Uint8Array; end: number } | null {
    const n = bytes.length;
    const at = this.reserve(n);
    if (at < 0) return null;
    // Allocated on first use: a group that never reads (or an idle broker) holds nothing.
    const buf = (this.buf ??= new Uint8Array(this.capacity));
    buf.set(bytes, at);
    this.live++;
    this.head = at + n;
    return { view: buf.subarray(at, at + n), end: at + n };
  }

  /** Start of a free run of n bytes, or -1. Never lets head reach tail from behind (full = empty). */
  private reserve(n: number): number {
    if (n === 0 || n >= this.capacity) return -1;
    if (this.live === 0) {
      this.head = 0;
      this.tail = 0;
      return 0;
    }
    if (this.head >= this.tail) {
      if (this.capacity - this.head >= n) return this.head;
      return n < this.tail ? 0 : -1;
    }
    return this.head + n < this.tail ? this.head : -1;
  }

  /** The oldest live region, which ends at `end`, is no longer used. */
  release(end: number): void {
    if (this.live === 0) return;
    this.live--;
    this.tail = end;
    if (this.live === 0) this.head = this.tail = 0;
  }

  /** Forget every region (the window dropped all its chunks). The buffer is kept unless `free`. */
  clear(free = false): void {
    this.live = 0;
    this.head = this.tail = 0;
    if (free) this.buf = null;
  }
}
