/**
 * Partition directory layout and pure offset math (no IO).
 *
 *   <dir>/00000000000000000000.log     records [base, next base), the record.ts format back to back
 *   <dir>/00000000000000000000.index   sparse index of that segment (see sparse-index.ts)
 *
 * A segment is named by its base offset, 20 decimal digits zero-padded (Kafka's convention), so a
 * lexical sort of names is an offset sort.
 */

export const LOG_SUFFIX = '.log';
/**
 * Written by close() after the final fdatasync; removed (and the removal made durable) at open.
 * Its absence at open means the previous writer did not shut down cleanly, so recovery validates the
 * whole last segment, not only its tail after the last index entry (after a power loss under 'never'
 * or 'interval' any unsynced page of it may be missing, not just the last one). Kafka's
 * `.kafka_cleanshutdown` plays the same role.
 */
export const CLEAN_SHUTDOWN_FILE = '.weir-clean-shutdown';
export const INDEX_SUFFIX = '.index';
/**
 * The recovery point (Kafka's recovery-point-offset-checkpoint): decimal offset below which every
 * sealed segment is known to be fdatasync'ed. Rolling seals a segment at once but syncs it in the
 * background (a 1 GiB fdatasync stalled every partition of the thread for up to 0.9 s), and this
 * file advances when that sync completes. After an unclean stop, recovery validates sealed segments
 * at or past it like the last one. Absent: logs written before it existed synced on roll, so every
 * sealed segment is trusted. Unreadable: treated as 0 (validate everything).
 */
export const SYNCED_BELOW_FILE = '.weir-synced-below';
const NAME_DIGITS = 20;
const NAME_RE = /^(\d{20})\.(log|index)$/;

export function segmentName(baseOffset: number, suffix: string): string {
  return String(baseOffset).padStart(NAME_DIGITS, '0') + suffix;
}

/** `{base, kind}` for a segment or index file name, or null for anything else. */
export function parseSegmentName(name: string): { base: number; kind: 'log' | 'index' } | null {
  const m = NAME_RE.exec(name);
  if (m === null) return null;
  const base = Number(m[1]);
  if (!Number.isSafeInteger(base)) return null;
  return { base, kind: m[2] as 'log' | 'index' };
}

/**
 * Index of the segment holding `offset`: the last base <= offset, given bases sorted ascending.
 * -1 when offset is below the first base.
 */
export function findSegment<T extends { readonly base: number }>(segments: readonly T[], offset: number): number {
  let lo = 0;
  let hi = segments.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (segments[mid]!.base <= offset) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}

/**
 * Whether a record starting at `position` of a segment gets a sparse index entry: the first record
 * of a segment always does (`lastEntryPosition` is -1 while the segment has no entry), then one
 * whenever at least `intervalBytes` of log lie between this record and the previous entry. Shared by
 * append and recovery so both produce the same index.
 */
export function needsIndexEntry(position: number, lastEntryPosition: number, intervalBytes: number): boolean {
  return lastEntryPosition < 0 || position - lastEntryPosition >= intervalBytes;
}
