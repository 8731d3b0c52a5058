/**
 * The transaction book: the pure state of every transaction the coordinator knows, rebuilt by
 * replaying the transaction log (txn-log.ts) and advanced by the same entries at run time. No IO,
 * no clock: callers pass `now`. The shell (coordinator.ts) writes an entry, and only once it is
 * durable applies it here, so the book never runs ahead of the disk.
 *
 * Life of a transaction:
 *
 *   begin ──half…──▶ open ──commit──▶ committing ──apply(ends)──▶ applying ──applied──▶ committed
 *                      └──rollback (producer, checker, admin, timeout)──────────────────▶ rolled_back
 *
 * `committing`/`applying` are committed transactions whose messages are not yet all in the topic:
 * recovery finishes them (see coordinator.ts, "apply").
 */

/** A run of half messages in the half topic, from one txn_produce. */
export interface HalfRange {
  /** Offset of the first record in the half topic's partition 0. */
  base: number;
  count: number;
  /** txn_produce's `partition`: every message of the range goes there; null routes by key. */
  partition: number | null;
}

export type TxnState = 'open' | 'committing' | 'committed' | 'rolled_back';

export interface Transaction {
  readonly txn: number;
  readonly topic: string;
  readonly producerGroup: string;
  readonly begunAt: number;
  lastActivityAt: number;
  state: TxnState;
  readonly halves: HalfRange[];
  messages: number;
  bytes: number;
  /** Log end offset per target partition, taken before the first append of the apply. */
  ends: Array<[partition: number, end: number]> | null;
  decidedAt: number | null;
  /** Who decided: producer, checker, admin, timeout (rollback only). */
  decidedBy: string | null;
  /** Checks sent so far (txn_check pushes). */
  checks: number;
  lastCheckAt: number | null;
}

/** One line of the transaction log. */
export type TxnLogEntry =
  | { e: 'next'; next: number }
  | { e: 'begin'; txn: number; topic: string; group: string; at: number }
  | { e: 'half'; txn: number; base: number; count: number; bytes: number; partition: number | null; at: number }
  | { e: 'commit'; txn: number; at: number; by: string }
  | { e: 'rollback'; txn: number; at: number; by: string }
  | { e: 'apply'; txn: number; ends: Array<[number, number]> }
  | { e: 'applied'; txn: number; at: number };

export interface TxnTiming {
  /** Ask the checker once the transaction has been idle (no begin/produce) this long. */
  checkMs: number;
  /** Roll back once the transaction is this old (from begin) and still open. */
  timeoutMs: number;
}

/** What the coordinator should do next about an open transaction. */
export type DueAction = { kind: 'check'; at: number } | { kind: 'rollback'; at: number };

/** Finished transactions remembered (for idempotent commit/rollback retries and `txn list`). */
export const FINISHED_KEPT = 10_000;

export class TransactionBook {
  private readonly txns = new Map<number, Transaction>();
  /** Finished transactions in finishing order, oldest first (bounded by FINISHED_KEPT). */
  private readonly finished: number[] = [];
  next = 1;
  /** Finished transactions whose entries are still in the log file (compaction drops them). */
  finishedSinceCompaction = 0;
  /**
   * Transactions open or committing (kept as a count: txn_begin checks the limit on every call).
   * Committing ones count too: if applies stall (a partition down for good), they would otherwise
   * pile up in memory while new transactions keep being begun.
   */
  unfinishedCount = 0;

  get(txn: number): Transaction | undefined {
    return this.txns.get(txn);
  }

  all(): IterableIterator<Transaction> {
    return this.txns.values();
  }

  /** Transactions not finished: open, or committed but not fully applied. */
  unfinished(): Transaction[] {
    return [...this.txns.values()].filter((t) => t.state === 'open' || t.state === 'committing');
  }

  /** Apply one (durable) log entry. Unknown transactions are ignored: their begin was compacted away. */
  apply(entry: TxnLogEntry): void {
    switch (entry.e) {
      case 'next':
        if (entry.next > this.next) this.next = entry.next;
        return;
      case 'begin':
        if (this.txns.has(entry.txn)) return; // a repeated line: the first one counts
        this.txns.set(entry.txn, {
          txn: entry.txn, topic: entry.topic, producerGroup: entry.group, begunAt: entry.at, lastActivityAt: entry.at,
          state: 'open', halves: [], messages: 0, bytes: 0, ends: null, decidedAt: null, decidedBy: null, checks: 0, lastCheckAt: null,
        });
        this.unfinishedCount++;
        if (entry.txn >= this.next) this.next = entry.txn + 1;
        return;
      case 'half': {
        const t = this.txns.get(entry.txn);
        if (!t || t.state !== 'open') return;
        t.halves.push({ base: entry.base, count: entry.count, partition: entry.partition });
        t.messages += entry.count;
        t.bytes += entry.bytes;
        if (entry.at > t.lastActivityAt) t.lastActivityAt = entry.at;
        return;
      }
      case 'commit': {
        const t = this.txns.get(entry.txn);
        if (!t || t.state !== 'open') return;
        t.state = t.messages === 0 ? 'committed' : 'committing';
        t.decidedAt = entry.at;
        t.decidedBy = entry.by;
        if (t.state === 'committed') this.finish(t);
        return;
      }
      case 'rollback': {
        const t = this.txns.get(entry.txn);
        if (!t || t.state !== 'open') return;
        t.state = 'rolled_back';
        t.decidedAt = entry.at;
        t.decidedBy = entry.by;
        this.finish(t);
        return;
      }
      case 'apply': {
        const t = this.txns.get(entry.txn);
        if (!t || t.state !== 'committing') return;
        t.ends = entry.ends.map(([p, e]) => [p, e]);
        return;
      }
      case 'applied': {
        const t = this.txns.get(entry.txn);
        if (!t || t.state !== 'committing') return;
        t.state = 'committed';
        this.finish(t);
        return;
      }
    }
  }

  /** The next thing due for an open transaction, or null (not open). */
  due(t: Transaction, timing: TxnTiming): DueAction | null {
    if (t.state !== 'open') return null;
    const rollbackAt = t.begunAt + timing.timeoutMs;
    const idleSince = Math.max(t.lastActivityAt, t.lastCheckAt ?? 0);
    const checkAt = idleSince + timing.checkMs;
    return checkAt < rollbackAt ? { kind: 'check', at: checkAt } : { kind: 'rollback', at: rollbackAt };
  }

  /**
   * The entries that reproduce the book's unfinished state (and the id counter): the content of a
   * compacted log. Finished transactions are dropped; a later commit/rollback of one gets
   * TXN_NOT_FOUND instead of an idempotent answer.
   */
  snapshot(): TxnLogEntry[] {
    const out: TxnLogEntry[] = [{ e: 'next', next: this.next }];
    for (const t of this.txns.values()) {
      if (t.state !== 'open' && t.state !== 'committing') continue;
      out.push({ e: 'begin', txn: t.txn, topic: t.topic, group: t.producerGroup, at: t.begunAt });
      // Per-range byte counts are not kept; the total goes on the first range.
      t.halves.forEach((h, i) => out.push({ e: 'half', txn: t.txn, base: h.base, count: h.count, bytes: i === 0 ? t.bytes : 0, partition: h.partition, at: t.lastActivityAt }));
      if (t.state === 'committing') {
        out.push({ e: 'commit', txn: t.txn, at: t.decidedAt ?? t.lastActivityAt, by: t.decidedBy ?? 'producer' });
        if (t.ends) out.push({ e: 'apply', txn: t.txn, ends: t.ends });
      }
    }
    return out;
  }

  /** Forget finished transactions of a compacted log (keeps unfinished ones). */
  compacted(): void {
    this.finishedSinceCompaction = 0;
  }

  private finish(t: Transaction): void {
    this.unfinishedCount--;
    this.finished.push(t.txn);
    this.finishedSinceCompaction++;
    while (this.finished.length > FINISHED_KEPT) this.txns.delete(this.finished.shift()!);
  }
}

/** A log line: CRC32C of the JSON text (8 hex digits), a space, the JSON, a newline. */
export function encodeEntry(entry: TxnLogEntry, crc: (b: Uint8Array) => number): string {
  const json = JSON.stringify(entry);
  return `${crc(new TextEncoder().encode(json)).toString(16).padStart(8, '0')} ${json}\n`;
}

/**
 * Parse the log's text. A line that is torn or fails its CRC ends the log (a crash cut the last
 * write): `validBytes` is where the good prefix ends, so the shell can truncate the rest.
 */
export function decodeLog(text: string, crc: (b: Uint8Array) => number): { entries: TxnLogEntry[]; validBytes: number; torn: boolean } {
  const entries: TxnLogEntry[] = [];
  const enc = new TextEncoder();
  let at = 0;
  let validBytes = 0;
  while (at < text.length) {
    const nl = text.indexOf('\n', at);
    if (nl < 0) return { entries, validBytes, torn: true };
    const line = text.slice(at, nl);
    const json = line.slice(9);
    const ok = line.length > 9 && line[8] === ' ' && parseInt(line.slice(0, 8), 16) === crc(enc.encode(json));
    if (!ok) return { entries, validBytes, torn: true };
    let entry: TxnLogEntry;
    try {
      entry = JSON.parse(json) as TxnLogEntry;
    } catch {
      return { entries, validBytes, torn: true };
    }
    entries.push(entry);
    at = nl + 1;
    validBytes += enc.encode(line).length + 1;
  }
  return { entries, validBytes, torn: false };
}
