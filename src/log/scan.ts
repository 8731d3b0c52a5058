/**
 * Pure validation of stored records (no IO): recovery feeds it chunks of a segment file.
 *
 * A record is accepted when it is wholly present, its length is at least the header, its magic and
 * CRC32C are right (`isValidStoredRecord`), and its offset is the one expected (segment base for the
 * first record, previous + 1 after that). The first record that fails stops the scan with a reason;
 * everything before it is the valid prefix of the segment.
 */
import { RECORD_MIN_LENGTH, isValidStoredRecord, readU32, recordOffset, recordTimestamp } from '../protocol/record.js';
import { needsIndexEntry } from './layout.js';
import type { SparseIndex } from './sparse-index.js';

/**
 * Why a scan stopped.
 * - END: the chunk was consumed exactly and it ends at EOF (a clean segment).
 * - NEED_MORE: the chunk ends inside a record that the file still holds; read from `position` with at least `need` bytes.
 * - TORN: the file ends inside a record (an interrupted write).
 * - CORRUPT: bad length or magic, or CRC mismatch.
 * - OUT_OF_SEQUENCE: a valid record carrying an unexpected offset.
 */
export type ScanStop = 'END' | 'NEED_MORE' | 'TORN' | 'CORRUPT' | 'OUT_OF_SEQUENCE';

export interface ScanCursor {
  /** File position of the next record to check. */
  position: number;
  /** Offset the next record must carry. */
  offset: number;
  /** Timestamp of the last accepted record (unchanged when none was accepted). */
  lastTimestamp: number;
  /** File position of the last index entry, -1 if none (entries are added when `index` is given). */
  lastEntryPosition: number;
  stop: ScanStop | null;
  /** With NEED_MORE: bytes the next chunk must hold from `position`. */
  need: number;
}

export function newCursor(position: number, offset: number, lastTimestamp: number, lastEntryPosition: number): ScanCursor {
  return { position, offset, lastTimestamp, lastEntryPosition, stop: null, need: 0 };
}

/**
 * Validate the records in `buf[from, to)`, where `buf[from]` is at file position `cursor.position`
 * and `atEof` says whether `to` is the end of the file. Advances the cursor past every accepted
 * record and always sets `cursor.stop`. When `index` is given, pushes an entry (relative to
 * `baseOffset`) for each accepted record that `needsIndexEntry` selects.
 */
export function scanChunk(
  buf: Uint8Array,
  from: number,
  to: number,
  atEof: boolean,
  cursor: ScanCursor,
  baseOffset: number,
  index: SparseIndex | null,
  intervalBytes: number,
): void {
  let at = from;
  for (;;) {
    const avail = to - at;
    if (avail === 0) {
      cursor.stop = atEof ? 'END' : 'NEED_MORE';
      cursor.need = 4;
      return;
    }
    if (avail < 4) {
      cursor.stop = atEof ? 'TORN' : 'NEED_MORE';
      cursor.need = 4;
      return;
    }
    const length = readU32(buf, at);
    if (length < RECORD_MIN_LENGTH) {
      cursor.stop = 'CORRUPT';
      return;
    }
    const size = 4 + length;
    if (size > avail) {
      cursor.stop = atEof ? 'TORN' : 'NEED_MORE';
      cursor.need = size;
      return;
    }
    if (!isValidStoredRecord(buf, at, at + size)) {
      cursor.stop = 'CORRUPT';
      return;
    }
    if (recordOffset(buf, at) !== cursor.offset) {
      cursor.stop = 'OUT_OF_SEQUENCE';
      return;
    }
    const ts = recordTimestamp(buf, at);
    if (index !== null && needsIndexEntry(cursor.position, cursor.lastEntryPosition, intervalBytes)) {
      index.push(cursor.offset - baseOffset, cursor.position, ts);
      cursor.lastEntryPosition = cursor.position;
    }
    cursor.lastTimestamp = ts;
    cursor.offset++;
    cursor.position += size;
    at += size;
  }
}
