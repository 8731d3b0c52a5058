/**
 * Exactly-once append, the IO shell of the producer state (producer-state.ts): a snapshot file in
 * the partition directory plus a replay of the log after it (Kafka's producer-state snapshots).
 *
 *   <partition dir>/producer-state.snapshot   {"version":1,"offset":N,"producers":[…]}
 *                                             {"version":1,"none":true}
 *
 * (a snapshot file, src/journal/snapshot.ts: the JSON in one CRC-checked frame, replaced
 * atomically; a damaged one reads as unreadable and the log is replayed instead. The unframed
 * `producer-state.json` of a data directory from before is read once and moved to it.)
 *
 * A snapshot holds the state of every record below `offset`. At open the table is loaded from it
 * and the records in [offset, log end) are replayed: only those with ATTR_IDEMPOTENT (first record
 * of an idempotent batch, whose first headers carry producer id, sequence and count) change it, so
 * the replay costs one byte test per record.
 *
 * Most partitions never see an idempotent producer, and they must not pay for the feature: the
 * "none" file says so. It is written once, durably, when a partition's log is created (an empty log
 * without a snapshot), and replaced — synchronously and durably, BEFORE the append — by a real
 * snapshot at the partition's first idempotent batch (`beginTracking`). A "none" partition replays
 * nothing at open and never writes a snapshot. A log without any snapshot file was written by an
 * older version (or the file was lost): it is replayed whole once, then gets a snapshot or "none".
 *
 * While tracking, a snapshot is written (durably: it is only every `intervalMs`) while the log
 * grows, right after recovery, and at clean close, so a crash replays at most that much log.
 *
 * "Durably" follows the broker's fsync policy like every side journal: each snapshot (and the
 * "none" file, and the one `beginTracking` writes before the first idempotent append) is
 * fdatasynced, with its directory, before it counts, under `always` and `interval`; under `never`
 * none is (a snapshot lost in an OS crash means a longer replay; the log itself is not synced then).
 *
 * A torn tail: recovery of the log cuts it at the first incomplete record, so after a power loss the
 * first records of an idempotent batch can survive without the rest. Such a batch is NOT recorded
 * (neither from the replay nor from a snapshot whose offset is past the log end), so it is never
 * acknowledged as a duplicate with its tail missing; it is kept as `table.torn`, and the partition
 * completes it with the missing records when the producer resends it (core.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { jsonPayload, parseJsonPayload, readSnapshotSync, writeSnapshotSync, type FsyncPolicy } from '../journal/index.js';
import { ATTR_IDEMPOTENT, F_ATTRIBUTES, readU32, recordOffset } from '../protocol/record.js';
import { Header, headerInteger } from '../protocol/headers.js';
import type { PartitionStore } from '../log/index.js';
import { ProducerStateTable, type ProducerStateLimits, DEFAULT_PRODUCER_STATE_LIMITS } from './producer-state.js';

export const PRODUCER_SNAPSHOT_FILE = 'producer-state.snapshot';
/** The unframed snapshot before snapshot files (read once, then removed). */
export const LEGACY_PRODUCER_SNAPSHOT_FILE = 'producer-state.json';
const REPLAY_READ_BYTES = 1 << 20;

export interface ProducerStateRecovery {
  table: ProducerStateTable;
  /** Where the replay started (the snapshot's offset, or the log start); the log end when none ran. */
  replayedFrom: number;
  replayedBatches: number;
  snapshotUsed: boolean;
  /** The partition has (had) idempotent batches: snapshots are kept. False for "none" partitions. */
  tracking: boolean;
}

type Snapshot =
  | { kind: 'missing' }
  | { kind: 'unreadable' }
  | { kind: 'none' }
  | { kind: 'state'; offset: number; producers: unknown };

export class ProducerStateStore {
  private lastSnapshotOffset = -1;
  private lastSnapshotVersion = -1;
  private nextSnapshotAt = 0;
  private readonly file: string;
  private readonly legacyFile: string;
  /** False while the partition never had an idempotent batch: no snapshot is written. */
  private trackingState = false;

  constructor(
    dir: string,
    private readonly intervalMs = 5_000,
    /** The broker's fsync policy: snapshots are synced (file and directory) unless it is `never`. */
    private readonly fsync: FsyncPolicy = { mode: 'always' },
  ) {
    this.file = path.join(dir, PRODUCER_SNAPSHOT_FILE);
    this.legacyFile = path.join(dir, LEGACY_PRODUCER_SNAPSHOT_FILE);
  }

  get tracking(): boolean {
    return this.trackingState;
  }

  /** Rebuild the table of an opened (recovered) log, and write a fresh snapshot when tracking. */
  recover(log: PartitionStore, limits: ProducerStateLimits = DEFAULT_PRODUCER_STATE_LIMITS): ProducerStateRecovery {
    let table = new ProducerStateTable(limits);
    const end = log.durableOffset;
    const snap = this.readSnapshot();
    if (snap.kind === 'none' || (snap.kind === 'missing' && log.nextOffset === 0)) {
      // No idempotent batch was ever appended here (or the log is brand new): nothing to rebuild.
      if (snap.kind === 'missing') this.writeNone();
      return { table, replayedFrom: end, replayedBatches: 0, snapshotUsed: false, tracking: false };
    }
    let from = log.logStartOffset;
    let snapshotUsed = false;
    if (snap.kind === 'state') {
      try {
        table.load(snap.producers);
        snapshotUsed = true;
        if (snap.offset > end) {
          // The log lost its unsynced tail after the snapshot was written: the snapshot describes
          // every record below the end too, minus the batches that were (partly) cut off.
          table.torn = table.truncateFrom(end);
          from = end;
        } else from = Math.max(snap.offset, log.logStartOffset);
      } catch {
        table = new ProducerStateTable(limits); // malformed: replay everything instead
        snapshotUsed = false;
        from = log.logStartOffset;
      }
    }
    const replayedBatches = replay(log, table, from, end);
    if (!snapshotUsed && replayedBatches === 0) {
      // An older version's log (or a lost snapshot) without any idempotent batch.
      this.writeNone();
      return { table, replayedFrom: from, replayedBatches, snapshotUsed, tracking: false };
    }
    this.trackingState = true;
    this.write(table, end);
    return { table, replayedFrom: from, replayedBatches, snapshotUsed, tracking: true };
  }

  /**
   * The partition is about to append its first idempotent batch at `offset` (every record below
   * it is plain). Records that durably, so a restart replays from there instead of trusting
   * "none". Throws (a storage error) when it cannot: the batch must then not be appended.
   */
  beginTracking(table: ProducerStateTable, offset: number): void {
    if (this.trackingState) return;
    writeSnapshotSync(this.file, jsonPayload({ version: 1, offset, producers: table.toJSON() }), this.fsync);
    this.trackingState = true;
    this.lastSnapshotOffset = offset;
    this.lastSnapshotVersion = table.version;
  }

  /** Snapshot if due: tracking, the log moved (or the table changed) and `intervalMs` passed. */
  maybeSnapshot(table: ProducerStateTable, durableOffset: number, now: number): void {
    if (!this.trackingState || now < this.nextSnapshotAt) return;
    this.nextSnapshotAt = now + this.intervalMs;
    if (durableOffset === this.lastSnapshotOffset && table.version === this.lastSnapshotVersion) return;
    this.write(table, durableOffset);
  }

  /**
   * Write a snapshot of `table` as of `offset` (every record below it is in the table), atomically
   * and durably. A no-op for a partition that never had an idempotent batch.
   */
  write(table: ProducerStateTable, offset: number): void {
    if (!this.trackingState) return;
    try {
      writeSnapshotSync(this.file, jsonPayload({ version: 1, offset, producers: table.toJSON() }), this.fsync);
      this.lastSnapshotOffset = offset;
      this.lastSnapshotVersion = table.version;
    } catch {
      // A snapshot is an optimisation (the log is the truth): keep serving, try again next interval.
    }
  }

  private writeNone(): void {
    try {
      writeSnapshotSync(this.file, jsonPayload({ version: 1, none: true }), this.fsync);
    } catch {
      // Without the file the next open replays the log once more (correct, only slower).
    }
  }

  private readSnapshot(): Snapshot {
    // The unframed JSON of a data directory from before: used when it parses (else the log is replayed).
    const legacy = {
      file: this.legacyFile,
      read: (f: string): Uint8Array | null => {
        try {
          const v = JSON.parse(fs.readFileSync(f, 'utf8')) as unknown;
          return snapshotOf(v).kind === 'unreadable' ? null : jsonPayload(v);
        } catch {
          return null;
        }
      },
    };
    let read;
    try {
      read = readSnapshotSync(this.file, { legacy, fsync: this.fsync });
    } catch {
      return { kind: 'unreadable' };
    }
    if (read.kind === 'missing') return { kind: 'missing' };
    if (read.kind === 'damaged') return { kind: 'unreadable' };
    return snapshotOf(parseJsonPayload(read.payload));
  }
}

function snapshotOf(v: unknown): Snapshot {
  if (typeof v !== 'object' || v === null) return { kind: 'unreadable' };
  const o = v as { version?: unknown; offset?: unknown; producers?: unknown; none?: unknown };
  if (o.version !== 1) return { kind: 'unreadable' };
  if (o.none === true) return { kind: 'none' };
  if (typeof o.offset !== 'number' || !Number.isSafeInteger(o.offset) || o.offset < 0) return { kind: 'unreadable' };
  return { kind: 'state', offset: o.offset, producers: o.producers };
}

/**
 * Replay the idempotent batches stored in [from, end) into `table`; returns how many. A batch whose
 * records do not all lie below `end` (a torn tail) is skipped: see the file comment.
 */
export function replay(log: PartitionStore, table: ProducerStateTable, from: number, end: number): number {
  let offset = from;
  let batches = 0;
  const buffer = new Uint8Array(REPLAY_READ_BYTES);
  while (offset < end) {
    const r = log.read(offset, REPLAY_READ_BYTES, 1_000_000, buffer);
    if (r.lost !== null) {
      offset = r.nextOffset; // damaged: the batches there are lost (reported by the log); go on after
      continue;
    }
    if (r.count === 0) break;
    const b = r.records;
    let at = 0;
    for (let i = 0; i < r.count; i++) {
      if ((b[at + F_ATTRIBUTES]! & ATTR_IDEMPOTENT) !== 0) {
        const pid = headerInteger(b, at, Header.PRODUCER_ID);
        const seq = headerInteger(b, at, Header.SEQUENCE);
        const count = headerInteger(b, at, Header.BATCH_COUNT);
        const base = recordOffset(b, at);
        // The gateway wrote these; anything else is not ours to interpret.
        if (pid !== null && seq !== null && count !== null && pid === pid && seq === seq && count === count && count > 0) {
          if (base + count <= end) {
            table.record(pid, seq, count, base);
            table.commit();
            batches++;
          } else table.torn = { producerId: pid, firstSeq: seq, count, baseOffset: base, survived: end - base };
        }
      }
      at += 4 + readU32(b, at);
    }
    offset = r.nextOffset;
  }
  return batches;
}
