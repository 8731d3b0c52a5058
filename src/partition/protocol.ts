/**
 * What travels between the gateway and a partition actor.
 *
 * Data moves through two SPSC rings per partition (src/ring): the *input* ring (gateway writes,
 * partition reads) and the *output* ring (partition writes, gateway reads). Each ring record is one
 * entry: a few little-endian u32 words of header, then bytes. Rare control messages (ready,
 * describe, shutdown) use postMessage; nothing per message does.
 *
 * Input entries:
 *   PRODUCE  [1, chunkId, count]                                      + producer-form records
 *   FETCH    [2, fetchId, mode, posLow, posHigh, maxBytes, maxRecords, maxWaitMs, flags]
 *            flags: STANDING = the fetch stays open after an answer with records, at the next
 *            offset, until maxBytes/maxRecords (a budget over all its answers) are spent or
 *            maxWaitMs has passed: a caught-up subscriber is pushed each commit without asking again
 *   PRODUCE_IDEMPOTENT [3, chunkId, count, producerIdLow, producerIdHigh, sequence] + records
 *   CANCEL   [4, fetchId]  end a parked fetch now (its subscriber went away): it gets a final
 *            empty DATA; nothing happens if it already ended
 *            (exactly-once append: one whole batch of one producer; see src/partition/producer-state.ts)
 * Output entries:
 *   ACK      [1, chunkId, baseLow, baseHigh, count, endLow, endHigh]
 *   DATA     [2, fetchId, count, nextLow, nextHigh, endLow, endHigh, flags]  + stored records
 *            flags: MORE = the (standing) fetch is still open: more answers to it will follow
 *   FAIL     [3, id, kind, errorIndex, startLow, startHigh, endLow, endHigh] + UTF-8 message
 *            kind 1 = a PRODUCE chunk failed, 2 = a FETCH failed
 */
import { RING_ERROR_CODES, type ErrorCode } from '../protocol/codes.js';
import type { DamagedRange } from '../log/damage.js';
import type { FsyncPolicy } from '../common/fsync.js';

export const In = { PRODUCE: 1, FETCH: 2, PRODUCE_IDEMPOTENT: 3, CANCEL: 4 } as const;
export const Out = { ACK: 1, DATA: 2, FAIL: 3 } as const;
export const FailKind = { PRODUCE: 1, FETCH: 2 } as const;
export const FetchFlag = { STANDING: 1 } as const;
export const DataFlag = { MORE: 1 } as const;
export const FetchMode = { OFFSET: 0, EARLIEST: 1, LATEST: 2, TIMESTAMP: 3 } as const;
export type FetchMode = (typeof FetchMode)[keyof typeof FetchMode];

export const PRODUCE_HEADER_BYTES = 12;
export const IDEMPOTENT_PRODUCE_HEADER_BYTES = 24;
export const FETCH_BYTES = 36;
export const CANCEL_BYTES = 8;
export const ACK_BYTES = 28;
export const DATA_HEADER_BYTES = 32;
export const FAIL_HEADER_BYTES = 32;

export function errorIndex(code: ErrorCode): number {
  const i = RING_ERROR_CODES.indexOf(code);
  return i < 0 ? 0 : i;
}
export function errorCodeAt(i: number): ErrorCode {
  return RING_ERROR_CODES[i] ?? RING_ERROR_CODES[0]!;
}

/** One partition actor hosted by a worker thread: its log and its two rings. */
export interface PartitionSlotData {
  topic: string;
  partition: number;
  dir: string;
  input: SharedArrayBuffer;
  output: SharedArrayBuffer;
  log: {
    segmentBytes: number;
    indexIntervalBytes: number;
    fsync: FsyncPolicy;
    retentionBytes?: number;
    retentionMs?: number;
    segmentMs?: number;
    /** PartitionLog's drop-behind window (`pageCacheBytes`). */
    pageCacheBytes?: number;
    /** The log's previous writer handed it over a moment ago (PartitionLog's `handedOver`). */
    handedOver?: boolean;
  };
  /** Quiet this long, the partition releases its buffers and fds (PartitionCoreOptions.idleReleaseMs). */
  idleReleaseMs?: number;
}

/** A partition's slot without its rings: what opening its log and core needs. */
export type PartitionLogSlot = Omit<PartitionSlotData, 'input' | 'output'>;

/**
 * Everything a partition worker thread needs, passed as workerData. A thread hosts one actor by
 * default; with `actorsPerThread` > 1 it hosts several (an actor is not a thread) and its
 * producers ring the thread's bell rather than each input ring's own doorbell.
 */
export interface PartitionWorkerData {
  slots: PartitionSlotData[];
  /** ThreadBell the gateway rings after publishing to any of this thread's input rings. */
  bell: SharedArrayBuffer;
  /** Lets tests crash the actor from inside (a real uncaught exception). Off in production. */
  testHooks: boolean;
}

export interface SlotReady {
  start: number;
  end: number;
  truncatedBytes: number;
  truncatedAtOffset: number | null;
  /** Damage recovery found (and the truncated tail): relayed to the gateway thread's channels. */
  damage: DamagedRange[];
}

/**
 * What a partition thread's logs publish on its own diagnostics channels while it runs (they are
 * per thread): relayed to the gateway's thread, where `weir start` logs them. Errors as plain objects.
 */
export type LogEvent =
  | { channel: 'walDamage'; message: Record<string, unknown> }
  | { channel: 'walSyncFailed'; message: Record<string, unknown> }
  | { channel: 'walWriteFailed'; message: Record<string, unknown> };

/** Control messages (postMessage), parent → worker. */
export type ControlRequest =
  | { type: 'shutdown' }
  /** The coming shutdown hands the logs over to another thread of this process (a move). */
  | { type: 'hand-over' }
  | { type: 'describe'; id: number; slot: number }
  | { type: 'crash'; how: 'throw' | 'oom' };
/** Control messages, worker → parent. */
export type ControlReply =
  | { type: 'ready'; slots: SlotReady[] }
  | { type: 'described'; id: number; slot: number; start: number; end: number }
  | { type: 'log-event'; event: LogEvent }
  | { type: 'stopped' };
