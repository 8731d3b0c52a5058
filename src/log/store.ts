/**
 * The store contract of a partition: what the partition actor (src/partition/) needs from the log
 * of its records, whatever keeps them. Two implementations: PartitionLog (segment files, the broker's)
 * and MemoryLog (in memory, for tests), both run against one contract suite
 * (test/log/store-contract.test.ts), after the NATS server's filestore/memstore pair.
 *
 * Offsets: every record gets the next offset at append; `logStartOffset <= durableOffset <=
 * nextOffset` always holds. Records in [durableOffset, nextOffset) are appended but not flushed
 * (group commit): readers never see them and destroy() drops them. Below `syncedOffset`
 * (<= durableOffset) the records are fdatasync'ed (the store's fsync policy says when).
 *
 * Errors are LogError (src/log/errors.ts); callers match on `code`, never on the class:
 * - STORAGE_FULL (retryable): a flush found no space; nothing of it was kept.
 * - STORAGE_ERROR: any other I/O failure (`details.errno` names it; EMFILE/ENFILE when the store
 *   could not reopen a file it released, which nothing was written by).
 * - OFFSET_OUT_OF_RANGE: a read outside [logStartOffset, durableOffset]; details {offset, start, end}.
 * - LOG_CLOSED: append, flush, read, offsetForTimestamp, applyRetention and maybeSync after close()
 *   or destroy() (the offsets stay readable; close, destroy and releaseIdle are no-ops then).
 * - LOG_BAD_ARGUMENT: an append range that is not `count` whole records (nothing is kept).
 * - LOG_CORRUPT: opening found the store's files inconsistent beyond repair (file store only).
 * A store that failed in a way it cannot undo (a flush it could not roll back) rethrows that error
 * from every later append, flush, applyRetention and maybeSync; reads go on.
 *
 * Every member is used by the partition actor (core, producer-state replay, hosts); a store's own
 * extras (segment listing, sizes, test hooks) stay on its class.
 */
import type { DamagedRange } from './damage.js';

/** Offsets a read found lost to damage: [from, to); the reader continues at `to`. */
export interface LostRange {
  from: number;
  to: number;
}

export interface ReadResult {
  /**
   * Whole stored records, exactly as stored, in a Buffer the caller owns (its own ArrayBuffer, not a
   * pool slice, so it can be transferred). May be a view at byteOffset 0 of a somewhat larger
   * ArrayBuffer. When count is 0 it is one shared zero-length Buffer (do not transfer that one).
   */
  records: Uint8Array;
  count: number;
  /** Offset after the last record returned (= the requested offset when count is 0; `lost.to` when lost). */
  nextOffset: number;
  /**
   * Non-null when the requested offset lies in a damaged region (count is then 0): those offsets
   * are lost (reported by the store); read on from `nextOffset` (= lost.to).
   */
  lost: LostRange | null;
}

/** What opening the store found (PartitionLog's RecoveryReport holds more). */
export interface StoreRecovery {
  /** Bytes cut from a torn tail (0 after a clean shutdown, and always for a memory store). */
  truncatedBytes: number;
  /** Offset of the first record cut (the store continues from it), or null when nothing was. */
  truncatedAtOffset: number | null;
  /** Damaged regions found while opening, and the truncated tail if any. */
  damage: DamagedRange[];
}

export interface PartitionStore {
  /** What opening the store found and repaired. */
  readonly recovery: StoreRecovery;

  /** First offset still stored (moves up only by applyRetention). */
  readonly logStartOffset: number;
  /** Offset the next appended record gets (log end offset, buffered records included). */
  readonly nextOffset: number;
  /** Everything below has been flushed (written, and fdatasync'ed under 'always'); reads stop here. */
  readonly durableOffset: number;
  /** Everything below has been fdatasync'ed: = durableOffset after each flush under 'always', else moved by maybeSync() and close(). */
  readonly syncedOffset: number;

  /**
   * Copy `count` producer-form records from `src[start, end)` into the group-commit buffer and stamp
   * them (offsets from nextOffset, one log-append timestamp max(previous, now) so timestamps never
   * decrease, CRC32C) there; `src` is not modified. They are not readable until flush(). Throws
   * LOG_BAD_ARGUMENT, leaving the store unchanged, when the range does not hold exactly `count`
   * whole records; LOG_CLOSED after close/destroy.
   */
  append(src: Uint8Array, start: number, end: number, count: number): { baseOffset: number; timestamp: number };

  /**
   * Group commit: make everything appended since the last flush readable (fdatasync'ed first under
   * 'always'). Returns the new durableOffset. All-or-nothing: on failure the buffered records are
   * dropped (nextOffset returns to durableOffset) and STORAGE_FULL or STORAGE_ERROR is thrown.
   */
  flush(): number;

  /**
   * Whole stored records from `offset`: at most `maxBytes` (but always the whole first record,
   * however large) and at most `maxRecords` (at least 1), from one segment (a caller continues at
   * `nextOffset`), never past durableOffset. `offset === durableOffset` gives an empty result;
   * outside [logStartOffset, durableOffset] throws OFFSET_OUT_OF_RANGE. A damaged offset gives
   * `lost` (see ReadResult). I/O failures throw STORAGE_ERROR. With `into`, records are read into it when they fit (the result is
   * then a view of `into`, valid until the caller reuses it).
   */
  read(offset: number, maxBytes: number, maxRecords: number, into?: Uint8Array): ReadResult;

  /** First durable offset whose record's timestamp is >= ts; durableOffset if none. */
  offsetForTimestamp(ts: number): number;

  /**
   * Delete whole old segments, never the active one: the oldest while the total size exceeds
   * retentionBytes, then those whose newest record is older than now - retentionMs (the active
   * segment is rolled first when all of it has expired, or its first record is segmentMs old).
   * Returns how many were deleted; logStartOffset moves to the first one left.
   */
  applyRetention(now?: number): number;

  /** Under 'interval': fdatasync when something is unsynced and intervalMs has passed since the last sync. Returns whether it synced. */
  maybeSync(now?: number): boolean;

  /**
   * When maybeSync() next has work: under 'interval', with flushed records not yet synced, the time
   * their sync falls due (the last sync + intervalMs); otherwise Infinity. A host that sleeps must
   * wake by then.
   */
  syncDueAt(): number;

  /**
   * Give back transient buffers and file descriptors while the partition is quiet; the next call
   * that needs them takes them again. Does nothing while records are buffered.
   */
  releaseIdle(): void;

  /** Bytes of transient buffers and open fds held now (both 0 right after releaseIdle()). */
  heldResources(): { bytes: number; fds: number };

  /**
   * Flush, fdatasync (whatever the policy) and close; idempotent. If the flush fails the store is
   * closed anyway and the error thrown. `handOver`: the store is reopened at once by another thread
   * of this process, which lets the file store skip the fdatasync under fsync 'never'.
   */
  close(opts?: { handOver?: boolean }): void;

  /** Close without flushing: buffered records are lost, as in a crash. Idempotent, never throws. */
  destroy(): void;
}
