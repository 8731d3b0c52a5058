/**
 * Reading partitions from inside the broker (features, commits, start positions): one fetch to the
 * partition's actor per call, published with the turn. And the errors a failed fetch becomes.
 */
import { WeirError } from '../common/errors.js';
import { ErrorCode, RETRYABLE } from '../protocol/codes.js';
import { FetchMode } from '../partition/protocol.js';
import type { PartitionRef } from '../partition/ref.js';
import type { Topic } from './topics/registry.js';
import type { ReadOptions, ReadResult } from './feature-host.js';
import type { Turn } from './turn.js';

export class Reads {
  constructor(
    private readonly config: { maxFetchBytes: number },
    private readonly turn: Turn,
  ) {}

  /**
   * Read stored records of one partition from `offset` (waiting up to maxWaitMs for some to
   * arrive). `records` is a copy the caller owns.
   */
  async read(topic: Topic, partition: number, offset: number, options: ReadOptions = {}): Promise<ReadResult> {
    let result!: ReadResult;
    await this.readView(topic, partition, offset, options, (records, count, next, end) => {
      result = { records: records.slice(), count, next, end };
    });
    return result;
  }

  /**
   * read() without the copy: `use` gets the records as a view of the partition's output ring, valid
   * only during the call, for callers that copy them into memory of their own (queue windows keep
   * read-ahead records in a reused buffer instead of a fresh allocation per read). Resolves after
   * `use` returned; rejects with the partition's error (then `use` is not called).
   */
  readView(topic: Topic, partition: number, offset: number, options: ReadOptions, use: (records: Uint8Array, count: number, next: number, end: number) => void): Promise<void> {
    return new Promise((resolve, reject) => {
      const actor = topic.actors[partition];
      if (!actor) throw new WeirError(ErrorCode.PARTITION_NOT_FOUND, `topic ${topic.name} has no partition ${partition}`);
      const fetchId = actor.fetch(FetchMode.OFFSET, offset, options.maxBytes ?? this.config.maxFetchBytes, options.maxRecords ?? 10_000, options.maxWaitMs ?? 0, {
        data: (records, count, next, end) => {
          try {
            use(records, count, next, end);
            resolve();
          } catch (err) {
            reject(err as Error);
          }
        },
        failed: (code, message, start, end) => reject(fetchFailure(topic, partition, code, message, start, end)),
      });
      if (fetchId === 0) throw unavailable(topic.name, partition, actor);
      this.turn.markActor(actor);
    });
  }

  /**
   * The offset a partition resolves `mode` to (EARLIEST, LATEST, or TIMESTAMP with `position` in
   * ms: the first record appended at or after it, else the log end). Retries while the partition
   * restarts, for about 30 s or until `abandon()` says so.
   */
  async resolveOffset(topic: Topic, partition: number, mode: FetchMode, position = 0, abandon: () => boolean = () => false): Promise<number> {
    // Ask the partition to resolve it (a fetch of zero records answers with its start offset).
    for (let attempt = 0; ; attempt++) {
      const actor = topic.actors[partition]!;
      const r = await new Promise<number | null>((resolve) => {
        const fetchId = actor.fetch(mode, position, 0, 0, 0, {
          data: (_records, _count, next) => resolve(next),
          failed: () => resolve(null),
        });
        if (fetchId === 0) resolve(null);
        else this.turn.markActor(actor);
      });
      if (r !== null) return r;
      if (abandon() || attempt > 300) throw new WeirError(ErrorCode.PARTITION_UNAVAILABLE, `partition ${topic.name}/${partition} is unavailable`, { retryable: true });
      await new Promise((res) => setTimeout(res, 100));
    }
  }

  /** A partition's log start and end now (one question to its actor; PARTITION_UNAVAILABLE while it restarts). */
  logRange(topic: Topic, partition: number): Promise<{ start: number; end: number }> {
    return new Promise((resolve, reject) => {
      const actor = topic.actors[partition]!;
      // A fetch of zero records from the earliest position answers with the log start and end.
      const fetchId = actor.fetch(FetchMode.EARLIEST, 0, 0, 0, 0, {
        data: (_records, _count, next, end) => resolve({ start: next, end }),
        failed: (code, message) => reject(new WeirError(code, message, { retryable: RETRYABLE.has(code) })),
      });
      if (fetchId === 0) reject(new WeirError(ErrorCode.PARTITION_UNAVAILABLE, `partition ${topic.name}/${partition} is restarting; retry`, { retryable: true }));
      else this.turn.markActor(actor);
    });
  }
}

/**
 * The error a failed fetch of `topic`/`partition` answers with: OFFSET_OUT_OF_RANGE names the log's
 * [start, end]; DATA_LOSS the lost offsets [from, to) (its reader continues at `to`).
 */
export function fetchFailure(topic: Topic, partition: number, code: ErrorCode, message: string, start: number, end: number): WeirError {
  const details = code === ErrorCode.DATA_LOSS ? { topic: topic.name, partition, from: start, to: end } : { start, end };
  return new WeirError(code, message, { retryable: RETRYABLE.has(code), details });
}

/**
 * The error for a request to a partition whose actor is down: what failed, if the broker gave up on
 * the partition (its actor kept failing: FailedPartitions), else "restarting; retry".
 */
export function unavailable(topic: string, partition: number, actor: PartitionRef): WeirError {
  const f = actor.failure;
  if (f !== null) return new WeirError(f.code, f.message, { retryable: RETRYABLE.has(f.code), details: { topic, partition } });
  return new WeirError(ErrorCode.PARTITION_UNAVAILABLE, `partition ${topic}/${partition} is restarting; retry`, { retryable: true });
}
