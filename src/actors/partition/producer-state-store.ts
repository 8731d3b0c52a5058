/**
 * Exactly-once append, the IO shell of the producer state (producer-state.ts): a snapshot file in
 * the partition directory plus a replay of the log after it (Kafka's producer-state snapshots).
 *
 *   <partition dir>/producer-state.json   {"version":1,"offset":N,"producers":[…]}
 *
 * A snapshot holds the state of every record below `offset`. At open the table is loaded from it
 * and the records in [offset, log end) are replayed: only those with ATTR_IDEMPOTENT (first record
 * of an idempotent batch, whose first headers carry producer id, sequence and count) change it, so
 * the replay costs one byte test per record. A snapshot is written right after recovery, every
 * `intervalMs` while the log grows, and at clean close, so a crash replays at most that much log.
 * A missing, unreadable, or too new snapshot (its offset past the log end: the log lost its unsynced
 * tail) is ignored and the whole log is replayed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ATTR_IDEMPOTENT, F_ATTRIBUTES, readU32, recordOffset } from '../../protocol/record.js';
import { Header, headerInteger } from '../../protocol/headers.js';
import type { PartitionLog } from '../../log/index.js';
import { ProducerStateTable, type ProducerStateLimits, DEFAULT_PRODUCER_STATE_LIMITS } from './producer-state.js';

export const PRODUCER_SNAPSHOT_FILE = 'producer-state.json';
const REPLAY_READ_BYTES = 1 << 20;

export interface ProducerStateRecovery {
  table: ProducerStateTable;
  /** Where the replay started (the snapshot's offset, or the log start). */
  replayedFrom: number;
  replayedBatches: number;
  snapshotUsed: boolean;
}

export class ProducerStateStore {
  private lastSnapshotOffset = -1;
  private lastSnapshotVersion = -1;
  private nextSnapshotAt = 0;
  private readonly file: string;

  constructor(
    dir: string,
    private readonly intervalMs = 5_000,
  ) {
    this.file = path.join(dir, PRODUCER_SNAPSHOT_FILE);
  }

  /** Rebuild the table of an opened (recovered) log, and write a fresh snapshot. */
  recover(log: PartitionLog, limits: ProducerStateLimits = DEFAULT_PRODUCER_STATE_LIMITS): ProducerStateRecovery {
    let table = new ProducerStateTable(limits);
    const end = log.durableOffset;
    let from = log.logStartOffset;
    let snapshotUsed = false;
    const snap = this.readSnapshot();
    if (snap !== null && snap.offset <= end) {
      try {
        table.load(snap.producers);
        from = Math.max(snap.offset, log.logStartOffset);
        snapshotUsed = true;
      } catch {
        table = new ProducerStateTable(limits); // malformed: replay everything instead
      }
    }
    const replayedBatches = replay(log, table, from, end);
    this.write(table, end);
    return { table, replayedFrom: from, replayedBatches, snapshotUsed };
  }

  /** Snapshot if due: the log moved (or the table changed) and `intervalMs` passed since the last. */
  maybeSnapshot(table: ProducerStateTable, durableOffset: number, now: number): void {
    if (now < this.nextSnapshotAt) return;
    this.nextSnapshotAt = now + this.intervalMs;
    if (durableOffset === this.lastSnapshotOffset && table.version === this.lastSnapshotVersion) return;
    this.write(table, durableOffset);
  }

  /**
   * Write a snapshot of `table` as of `offset` (every record below it is in the table). Atomic by
   * rename. Not fsynced: a lost snapshot only means a longer replay, and a snapshot that outlives
   * the log tail it describes is detected (offset past the log end) and ignored.
   */
  write(table: ProducerStateTable, offset: number): void {
    const tmp = `${this.file}.tmp`;
    try {
      fs.writeFileSync(tmp, JSON.stringify({ version: 1, offset, producers: table.toJSON() }));
      fs.renameSync(tmp, this.file);
      this.lastSnapshotOffset = offset;
      this.lastSnapshotVersion = table.version;
    } catch {
      // A snapshot is an optimisation (the log is the truth): keep serving, try again next interval.
    }
  }

  private readSnapshot(): { offset: number; producers: unknown } | null {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch {
      return null;
    }
    try {
      const o = JSON.parse(text) as { version?: unknown; offset?: unknown; producers?: unknown };
      if (o.version !== 1 || typeof o.offset !== 'number' || !Number.isSafeInteger(o.offset) || o.offset < 0) return null;
      return { offset: o.offset, producers: o.producers };
    } catch {
      return null;
    }
  }
}

/** Replay the idempotent batches stored in [from, end) into `table`; returns how many. */
export function replay(log: PartitionLog, table: ProducerStateTable, from: number, end: number): number {
  let offset = from;
  let batches = 0;
  const buffer = new Uint8Array(REPLAY_READ_BYTES);
  while (offset < end) {
    const r = log.read(offset, REPLAY_READ_BYTES, 1_000_000, buffer);
    if (r.count === 0) break;
    const b = r.records;
    let at = 0;
    for (let i = 0; i < r.count; i++) {
      if ((b[at + F_ATTRIBUTES]! & ATTR_IDEMPOTENT) !== 0) {
        const pid = headerInteger(b, at, Header.PRODUCER_ID);
        const seq = headerInteger(b, at, Header.SEQUENCE);
        const count = headerInteger(b, at, Header.BATCH_COUNT);
        // The gateway wrote these; anything else is not ours to interpret.
        if (pid !== null && seq !== null && count !== null && pid === pid && seq === seq && count === count && count > 0) {
          table.record(pid, seq, count, recordOffset(b, at));
          table.commit();
          batches++;
        }
      }
      at += 4 + readU32(b, at);
    }
    offset = r.nextOffset;
  }
  return batches;
}
