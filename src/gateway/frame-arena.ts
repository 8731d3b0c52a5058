/**
 * Memory for the frames of one event-loop turn: regions handed out one after another from a reused
 * buffer, all given back at once when the turn's frames were sent (`ws.send` copies them into the
 * socket or uWS's own buffer before it returns).
 *
 * Why: a deliver frame carries up to maxFetchBytes of records; a fresh ArrayBuffer per frame is a
 * malloc (an mmap above 128 KiB), page faults on first touch and external memory V8 counts toward
 * its next full GC. Regions start 8-aligned in a buffer whose base is, so a caller can place data
 * at a chosen address modulo 8 (deliver-frame.ts).
 */
/** Memory for a hand-encoded frame of at least `bytes` bytes (deliver-frame.ts, result-frame.ts): the turn's arena, or a fresh buffer. */
export type FrameAllocator = (bytes: number) => Uint8Array;

export class FrameArena {
  private buf: Uint8Array | null = null;
  private head = 0;

  constructor(readonly capacity: number) {}

  /** `n` bytes valid until reset(), or null when they do not fit (allocate them elsewhere). */
  take(n: number): Uint8Array | null {
    if (n > this.capacity - this.head) return null;
    // Allocated on first use: a broker without subscribers holds nothing.
    const buf = (this.buf ??= new Uint8Array(this.capacity));
    const view = buf.subarray(this.head, this.head + n);
    this.head = Math.min(this.capacity, (this.head + n + 7) & ~7);
    return view;
  }

  /** Bytes handed out since the last reset (alignment included). */
  get used(): number {
    return this.head;
  }

  /** Every region handed out so far is no longer used. */
  reset(): void {
    this.head = 0;
  }
}
