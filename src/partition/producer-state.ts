/**
 * Exactly-once append, the partition's side: which batches of which idempotent producer this
 * partition already holds (Kafka's producer state). Pure: no IO, no clock. The partition core asks
 * `check` before appending an idempotent batch, `record`s it after the append, and `commit`s or
 * `rollback`s with the group's flush. Recovery rebuilds it from a snapshot plus the records the
 * gateway marked with ATTR_IDEMPOTENT (producer-state-store.ts).
 *
 * Rules for a batch (producer p, first sequence s, count n), with e = the sequence p is expected to
 * send next on this partition (last batch's lastSeq + 1):
 *   - p unknown: s must be 0 (a fresh producer), else OUT_OF_ORDER_SEQUENCE;
 *   - s = e: append;
 *   - s matches the first sequence of one of p's last `window` batches, with the same count: a
 *     retry of a batch already written — acknowledge with its ORIGINAL base offset, append nothing;
 *   - s below the first remembered batch: DUPLICATE_SEQUENCE (written long ago; offsets forgotten);
 *   - anything else (a gap, or a count that does not match): OUT_OF_ORDER_SEQUENCE.
 */

export interface ProducerBatch {
  firstSeq: number;
  lastSeq: number;
  baseOffset: number;
}

/**
 * The idempotent batch a power loss cut in two: its first `survived` records are the last records
 * of the log. Its resend completes it (the partition appends only the missing records and
 * acknowledges the batch's original base offset), as long as nothing was appended after them.
 */
export interface TornBatch {
  producerId: number;
  firstSeq: number;
  count: number;
  baseOffset: number;
  survived: number;
}

export type SequenceCheck =
  | { kind: 'append' }
  | { kind: 'duplicate'; baseOffset: number; count: number }
  | { kind: 'out_of_order'; expected: number }
  | { kind: 'too_old'; oldest: number };

export interface ProducerStateLimits {
  /** Batches remembered per producer (≥ 10: a producer may resend its last 10 in-flight batches). */
  window: number;
  /** Producers remembered per partition; the least recently appending one is forgotten beyond it. */
  maxProducers: number;
}

export const DEFAULT_PRODUCER_STATE_LIMITS: ProducerStateLimits = { window: 32, maxProducers: 10_000 };

/** Serialized form (snapshot files): [producerId, [[firstSeq, lastSeq, baseOffset], …]][]. */
export type ProducerStateJson = Array<[number, Array<[number, number, number]>]>;

const APPEND: SequenceCheck = { kind: 'append' };

export class ProducerStateTable {
  /** Map order = least recently appended first (re-inserted on every append), for eviction. */
  private readonly producers = new Map<number, ProducerBatch[]>();
  /** Producers whose last batch was recorded since the last commit (undone by rollback). */
  private readonly journal: number[] = [];
  /** Bumped by every change; the shell snapshots only when it moved. */
  version = 0;
  /** Set by recovery when the log ends inside an idempotent batch (see TornBatch). */
  torn: TornBatch | null = null;

  constructor(private readonly limits: ProducerStateLimits = DEFAULT_PRODUCER_STATE_LIMITS) {
    if (limits.window < 10) throw new Error('producer state window must be at least 10 batches');
  }

  get size(): number {
    return this.producers.size;
  }

  check(producerId: number, firstSeq: number, count: number): SequenceCheck {
    const batches = this.producers.get(producerId);
    if (batches === undefined || batches.length === 0) return firstSeq === 0 ? APPEND : { kind: 'out_of_order', expected: 0 };
    const last = batches[batches.length - 1]!;
    const expected = last.lastSeq + 1;
    if (firstSeq === expected) return APPEND;
    if (firstSeq > expected) return { kind: 'out_of_order', expected };
    if (firstSeq < batches[0]!.firstSeq) return { kind: 'too_old', oldest: batches[0]!.firstSeq };
    for (let i = batches.length - 1; i >= 0; i--) {
      const b = batches[i]!;
      if (b.firstSeq === firstSeq) {
        const n = b.lastSeq - b.firstSeq + 1;
        return n === count ? { kind: 'duplicate', baseOffset: b.baseOffset, count: n } : { kind: 'out_of_order', expected };
      }
    }
    return { kind: 'out_of_order', expected };
  }

  /** A batch was appended (not yet durable: commit or rollback follows). */
  record(producerId: number, firstSeq: number, count: number, baseOffset: number): void {
    let batches = this.producers.get(producerId);
    if (batches === undefined) batches = [];
    else this.producers.delete(producerId); // re-insert: most recently used last
    this.producers.set(producerId, batches);
    batches.push({ firstSeq, lastSeq: firstSeq + count - 1, baseOffset });
    this.journal.push(producerId);
    this.version++;
  }

  /** The recorded batches are durable: trim windows and evict beyond the limits. */
  commit(): void {
    if (this.journal.length === 0) return;
    for (const pid of this.journal) {
      const batches = this.producers.get(pid);
      if (batches && batches.length > this.limits.window) batches.splice(0, batches.length - this.limits.window);
    }
    this.journal.length = 0;
    while (this.producers.size > this.limits.maxProducers) {
      const oldest = this.producers.keys().next().value as number;
      this.producers.delete(oldest);
    }
  }

  /** The flush failed: the log dropped every batch recorded since the last commit; forget them. */
  rollback(): void {
    for (let i = this.journal.length - 1; i >= 0; i--) {
      const pid = this.journal[i]!;
      const batches = this.producers.get(pid);
      if (!batches) continue;
      batches.pop();
      if (batches.length === 0) this.producers.delete(pid);
    }
    if (this.journal.length > 0) this.version++;
    this.journal.length = 0;
  }

  /**
   * The log was cut back to `offset`: forget every batch not wholly below it (a batch whose first
   * records survived without the rest must be appended again when resent, not acknowledged).
   */
  truncateFrom(offset: number): TornBatch | null {
    let torn: TornBatch | null = null;
    for (const [pid, batches] of this.producers) {
      for (let last = batches[batches.length - 1]; last !== undefined && last.baseOffset + (last.lastSeq - last.firstSeq + 1) > offset; last = batches[batches.length - 1]) {
        if (last.baseOffset < offset) {
          torn = { producerId: pid, firstSeq: last.firstSeq, count: last.lastSeq - last.firstSeq + 1, baseOffset: last.baseOffset, survived: offset - last.baseOffset };
        }
        batches.pop();
      }
      if (batches.length === 0) this.producers.delete(pid);
    }
    this.version++;
    return torn;
  }

  toJSON(): ProducerStateJson {
    const out: ProducerStateJson = [];
    for (const [pid, batches] of this.producers) out.push([pid, batches.map((b) => [b.firstSeq, b.lastSeq, b.baseOffset])]);
    return out;
  }

  /** Load a snapshot (replaces nothing: call on an empty table). Throws on a malformed one. */
  load(json: unknown): void {
    if (!Array.isArray(json)) throw new Error('producer state: not an array');
    for (const entry of json as unknown[]) {
      if (!Array.isArray(entry) || entry.length !== 2 || !isCount(entry[0]) || !Array.isArray(entry[1])) throw new Error('producer state: bad producer entry');
      const batches: ProducerBatch[] = [];
      for (const b of entry[1] as unknown[]) {
        if (!Array.isArray(b) || b.length !== 3 || !b.every(isCount) || (b[1] as number) < (b[0] as number)) throw new Error('producer state: bad batch');
        batches.push({ firstSeq: b[0] as number, lastSeq: b[1] as number, baseOffset: b[2] as number });
      }
      if (batches.length > 0) this.producers.set(entry[0] as number, batches.slice(-this.limits.window));
    }
    this.version++;
  }

  /** Test and inspection surface: the remembered batches of one producer. */
  batchesOf(producerId: number): readonly ProducerBatch[] {
    return this.producers.get(producerId) ?? [];
  }
}

function isCount(v: unknown): boolean {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}
