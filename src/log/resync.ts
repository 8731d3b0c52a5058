/**
 * Finding where good records resume after a damaged region of a segment (the NATS file store and
 * Kafka's dump tools do the same): scan forward from the damage for the first position holding a
 * record whose length fits, whose magic is right, whose offset lies after the damaged one by no
 * more records than the skipped bytes could hold (a record is at least RECORD_HEADER_BYTES long),
 * and whose CRC32C matches. A random match of all of these is about 2^-32 per candidate that passes
 * the cheap checks, and the offset bound leaves few of those.
 */
import { RECORD_HEADER_BYTES, RECORD_MAGIC, RECORD_MIN_LENGTH, F_MAGIC, F_OFFSET, readU32, readU53, verifyRecords } from '../protocol/record.js';
import { nativeIo } from '../common/native-io.js';

/** Records checked with the CPU's crc32 instruction where the native helper is built. */
export const verifyStored: (b: Uint8Array, start: number, end: number, firstOffset: number) => number = nativeIo?.verifyRecords ?? verifyRecords;

/** Reads `length` bytes at file `position` into `out` from 0; returns how many it got (short at EOF). */
export type ReadBytes = (out: Uint8Array, length: number, position: number) => number;

export interface ResyncPoint {
  /** File position of the first good record after the damage, or `endPosition` when none. */
  position: number;
  /** Its offset, or `endOffset` when none. */
  offset: number;
  /** Whether a good record was found (false: the damage runs to `endPosition`). */
  found: boolean;
}

export interface ResyncScratch {
  buf: Uint8Array;
}

/** A known good record position ahead (an index entry), checked before scanning bytes. */
export interface ResyncHint {
  position: number;
  offset: number;
}

/**
 * The first good record after damage that starts at file position `damagePosition`, where the
 * record of offset `damageOffset` should have been. Searches up to `endPosition` (exclusive; the
 * segment's size) for offsets below `endOffset` (Infinity when unknown: the last segment during
 * recovery). `hints` (ascending, e.g. the sparse index's entries after the damage) bound the byte
 * scan: the first that checks out is a resync point, and only the bytes before it are scanned for
 * an earlier one.
 */
export function findResync(
  read: ReadBytes,
  scratch: ResyncScratch,
  damagePosition: number,
  damageOffset: number,
  endPosition: number,
  endOffset: number,
  hints: readonly ResyncHint[] = [],
): ResyncPoint {
  let limitPosition = endPosition;
  let limitOffset = endOffset;
  let found = false;
  for (const h of hints) {
    if (h.position < damagePosition + RECORD_HEADER_BYTES || h.offset <= damageOffset || h.offset >= endOffset) continue;
    if (recordChecksOut(read, scratch, h.position, h.offset, endPosition)) {
      limitPosition = h.position;
      limitOffset = h.offset;
      found = true;
      break;
    }
  }
  // The damaged record itself spans at least a header: the next good one cannot start sooner.
  let p = damagePosition + RECORD_HEADER_BYTES;
  while (p < limitPosition) {
    const want = Math.min(scratch.buf.length, endPosition - p);
    if (want < RECORD_HEADER_BYTES) break;
    const n = read(scratch.buf, want, p);
    if (n < RECORD_HEADER_BYTES) break;
    const b = scratch.buf;
    const starts = Math.min(limitPosition - p, n - RECORD_HEADER_BYTES + 1);
    for (let i = 0; i < starts; i++) {
      if (b[i + F_MAGIC] !== RECORD_MAGIC) continue;
      const q = p + i;
      const length = readU32(b, i);
      if (length < RECORD_MIN_LENGTH || q + 4 + length > endPosition) continue;
      const offset = readU53(b, i + F_OFFSET);
      if (offset <= damageOffset || offset >= limitOffset) continue;
      if (offset - damageOffset > Math.floor((q - damagePosition) / RECORD_HEADER_BYTES)) continue;
      const ok = i + 4 + length <= n ? verifyStored(b, i, i + 4 + length, offset) === 1 : recordChecksOut(read, { buf: new Uint8Array(0) }, q, offset, endPosition);
      if (ok) return { position: q, offset, found: true };
    }
    p += starts;
  }
  return { position: limitPosition, offset: limitOffset, found };
}

/** Whether a whole, valid record carrying `offset` starts at `position` (read on its own). */
export function recordChecksOut(read: ReadBytes, scratch: ResyncScratch, position: number, offset: number, endPosition: number): boolean {
  if (endPosition - position < RECORD_HEADER_BYTES) return false;
  if (scratch.buf.length < RECORD_HEADER_BYTES) scratch.buf = new Uint8Array(4096);
  let n = read(scratch.buf, Math.min(scratch.buf.length, endPosition - position), position);
  if (n < RECORD_HEADER_BYTES) return false;
  const size = 4 + readU32(scratch.buf, 0);
  if (size < RECORD_HEADER_BYTES || position + size > endPosition) return false;
  if (size > n) {
    scratch.buf = new Uint8Array(size);
    n = read(scratch.buf, size, position);
    if (n < size) return false;
  }
  return verifyStored(scratch.buf, 0, size, offset) === 1;
}
