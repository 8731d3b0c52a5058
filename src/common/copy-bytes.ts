/**
 * Copy bytes between typed arrays, one of which may be shared memory (a ring's SharedArrayBuffer).
 *
 * V8 copies to or from shared memory with relaxed atomics: word by word when the two addresses are
 * congruent modulo 8, byte by byte otherwise, several times slower (docs/performance.md). Plain memory
 * copies (memmove) are fast at any alignment. So a large copy across the boundary whose ends are
 * not congruent goes through a reused plain bounce buffer, placed at the shared side's alignment:
 * one fast relaxed copy plus one memmove.
 *
 * Alignment is judged from byteOffsets: ArrayBuffer and SharedArrayBuffer backing stores start at
 * least 8-aligned (malloc), so offsets tell addresses modulo 8.
 */

/** Below this a bounce costs more than it saves. */
const BOUNCE_MIN_BYTES = 1024;
/** Below this a JS loop beats allocating a `subarray` view for `TypedArray#set`. */
const SMALL_COPY_BYTES = 16;
const CHUNK_BYTES = 64 * 1024;

let bounce: Uint8Array | null = null;

/** Copy `src[start, end)` into `dst` at `at`. */
export function copyBytes(dst: Uint8Array, at: number, src: Uint8Array, start: number, end: number): void {
  const n = end - start;
  if (n >= BOUNCE_MIN_BYTES && ((dst.byteOffset + at - src.byteOffset - start) & 7) !== 0) {
    const dstShared = dst.buffer instanceof SharedArrayBuffer;
    if (dstShared !== src.buffer instanceof SharedArrayBuffer) {
      bounced(dst, at, src, start, end, dstShared);
      return;
    }
  }
  if (start === 0 && end === src.length) {
    dst.set(src, at);
  } else if (n <= SMALL_COPY_BYTES) {
    for (let i = 0; i < n; i++) dst[at + i] = src[start + i]!;
  } else {
    dst.set(src.subarray(start, end), at);
  }
}

function bounced(dst: Uint8Array, at: number, src: Uint8Array, start: number, end: number, dstShared: boolean): void {
  const b = (bounce ??= new Uint8Array(CHUNK_BYTES + 8));
  // Place the bounced bytes congruent with the shared side; the plain side's copy is a memmove.
  const shared = dstShared ? dst.byteOffset + at : src.byteOffset + start;
  const k = (shared - b.byteOffset) & 7;
  for (let from = start; from < end; from += CHUNK_BYTES) {
    const to = Math.min(end, from + CHUNK_BYTES);
    const m = to - from;
    const staged = b.subarray(k, k + m);
    staged.set(src.subarray(from, to));
    dst.set(staged, at + (from - start));
  }
}
