/**
 * The transaction coordinator (RocketMQ-style half messages, plus multi-partition atomic writes),
 * the IO shell around the pure TransactionBook:
 *
 * - txn_begin logs a `begin` (durable id counter) and answers the transaction id.
 * - txn_produce tags the records with `weir-txn: <id>`, appends them to the internal topic
 *   `__txn_half` (1 partition; consumers never see it), then logs the range: half messages.
 * - txn_commit / txn_rollback log the decision (durable before anything else happens). A commit
 *   then applies: reads the half messages back and appends them to the topic, routed by key (or
 *   the produce's partition), every target partition in the same event-loop turn. Nothing is
 *   visible before the decision is durable; after it, the apply is retried until it completes,
 *   including by recovery after a restart.
 * - Open transactions idle for the topic's transactionCheckMs are pushed to a checker of their
 *   producer group (`txn_check`), which answers with txn_commit/txn_rollback; one still open
 *   transactionTimeoutMs after its begin is rolled back.
 *
 * Re-applying never duplicates: before its first append the apply logs every partition's end
 * offset (`apply` entry); a resumed apply finds, per partition, how much of its share is already
 * there from that offset on and appends only the rest (records of one partition are appended in
 * order, so what is there is a prefix). It matches content, not just the `weir-txn` tag: a client
 * may produce a copy of a committed message (tag included) into the same topic meanwhile, and
 * counting tags would take that copy for one of ours and lose a message.
 */
import path from 'node:path';
import { WeirError, badRequest, lostRange } from '../../common/errors.js';
import { ErrorCode } from '../../protocol/codes.js';
import { BatchFormatError, RecordIndex, scanBatch } from '../../protocol/record.js';
import type { TxnCheckFrame, TxnInfo, TxnState } from '../../protocol/frames.js';
import { groupNameOf, publicTopicOf } from '../../core/validate.js';
import type { Feature, FeatureContext, FeatureHost, Frame, ReadResult, Session } from '../../core/feature-host.js';
import type { Topic } from '../../core/topics/registry.js';
import { TransactionBook, type Transaction, type TxnLogEntry } from './book.js';
import { gather, isOfTransaction, recordDigest, recordStarts, tagWithTransaction, targetPartition } from './records.js';
import { TxnLog, txnErrorChannel } from './txn-log.js';
import { testHooks } from './internal.js';
import { HALF_TOPIC } from '../../core/topics/names.js';

export { HALF_TOPIC };
/** Bounds of one transaction: its messages are re-read and appended at commit. */
export const MAX_TXN_MESSAGES = 1_000_000;
export const MAX_TXN_BYTES = 1 << 30;
/** Unfinished (open or committing) transactions at once (each holds a timer or an apply, and a little memory). */
export const MAX_OPEN_TXNS = 100_000;
/** Half-message bytes a connection may have in flight (txn_produce not yet answered). */
export const MAX_IN_FLIGHT_BYTES_PER_CONNECTION = 64 << 20;
/** Transactions in one txn_list answer at most. */
const MAX_LISTED = 10_000;
/** How long a start waits for recovery to finish committed transactions before serving. */
const RECOVERY_WAIT_MS = 10_000;
/** How long close() waits for applies in progress. */
const CLOSE_WAIT_MS = 2_000;
/** Compact the log once this many finished transactions have entries in it. */
const COMPACT_AFTER_FINISHED = 5_000;
/** A timeout rollback that could not be logged (disk error) is tried again this much later. */
const TIMEOUT_RETRY_MS = 1_000;

function report(txn: number | null, op: 'apply' | 'timeout' | 'check' | 'compact', error: unknown): void {
  if (txnErrorChannel.hasSubscribers) txnErrorChannel.publish({ txn, op, error });
}

export class TransactionCoordinator implements Feature {
  readonly name = 'transactions';
  private readonly book = new TransactionBook();
  private log!: TxnLog;
  /** The half-message store, created on first use (a broker without transactions runs no extra partition). */
  private half: Topic | null = null;
  private readonly index = new RecordIndex();
  private readonly timers = new Map<number, ReturnType<typeof setTimeout>>();
  /** Decision being logged, per transaction: later deciders wait for it. */
  private readonly deciding = new Map<number, Promise<void>>();
  /** Half-message appends in flight, per transaction: a decision waits for them. */
  private readonly producing = new Map<number, Set<Promise<unknown>>>();
  private readonly applying = new Map<number, Promise<void>>();
  private readonly checkers = new Map<string, Session[]>();
  private readonly inFlightBytes = new Map<Session, number>();
  /** Round-robin position per producer group (a global counter skews when groups interleave). */
  private readonly nextChecker = new Map<string, number>();
  /** txn_begins counted against MAX_OPEN_TXNS but not logged yet (their transaction is not in the book). */
  private beginsInFlight = 0;
  /** Backoff sleeps of retrying applies: close() ends them. */
  private readonly sleeps = new Set<{ timer: ReturnType<typeof setTimeout>; wake(): void }>();
  private closed = false;
  private compacting = false;

  private constructor(private readonly host: FeatureHost) {}

  /** Read the transaction log back into the book (installTransactions then registers the ops and recovers). */
  static async open(ctx: FeatureContext): Promise<TransactionCoordinator> {
    const c = new TransactionCoordinator(ctx.host);
    const { log } = await TxnLog.open(path.join(ctx.dataDir, 'transactions'), ctx.fsync, (entries) => {
      for (const e of entries) c.book.apply(e);
      return c.book.snapshot();
    });
    c.log = log;
    c.book.compacted();
    return c;
  }

  /**
   * Recovery: finish committed transactions, re-arm the timers of open ones. The gateway listens
   * after install: wait (bounded, a partition may be down) so clients find them applied.
   */
  async recover(): Promise<void> {
    const applies: Array<Promise<void>> = [];
    for (const t of this.book.unfinished()) {
      if (t.state === 'committing') applies.push(this.ensureApplied(t).catch(() => undefined));
      else this.schedule(t);
    }
    if (applies.length > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([Promise.all(applies), new Promise((r) => (timer = setTimeout(r, RECOVERY_WAIT_MS)))]);
      clearTimeout(timer);
    }
  }

  /** The session is gone: it checks no more transactions, and has no half messages in flight. */
  connectionClosed(conn: Session): void {
    this.dropChecker(conn);
    this.inFlightBytes.delete(conn);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    for (const sleep of this.sleeps) {
      clearTimeout(sleep.timer);
      sleep.wake();
    }
    this.sleeps.clear();
    // Let appends already handed to partitions finish and be logged: a gateway restarted by the
    // supervisor replays this log while the partitions stay up, and must not apply them twice.
    if (this.applying.size > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([Promise.allSettled([...this.applying.values()]), new Promise((r) => (timer = setTimeout(r, CLOSE_WAIT_MS)))]);
      clearTimeout(timer);
    }
    await this.log.close();
  }

  // ------------------------------------------------------------------ ops (registered by installTransactions, feature.ts)

  /** The `txn_begin` op. */
  async begin(conn: Session, id: number, f: Frame): Promise<void> {
    this.checkOpen();
    const topic = publicTopicOf(this.host.topics, f);
    const producerGroup = groupNameOf(f.producerGroup, 'producerGroup');
    // Begins being logged count too: concurrent ones must not all pass the check.
    const open = this.book.unfinishedCount + this.beginsInFlight;
    if (open >= MAX_OPEN_TXNS) {
      throw new WeirError(ErrorCode.THROTTLED, `${open} transactions are open or being applied (limit ${MAX_OPEN_TXNS}); commit or roll back some first`, { retryable: true });
    }
    const txn = this.book.next++;
    const entry: TxnLogEntry = { e: 'begin', txn, topic: topic.name, group: producerGroup, at: Date.now() };
    this.beginsInFlight++;
    try {
      await this.log.append(entry);
    } finally {
      this.beginsInFlight--;
    }
    this.book.apply(entry);
    this.schedule(this.book.get(txn)!);
    this.host.send(conn, {
      op: 'result', id, txn, topic: topic.name, producerGroup,
      checkMs: topic.config.transactionCheckMs, timeoutMs: topic.config.transactionTimeoutMs,
    });
  }

  /** The `txn_produce` op: half messages. */
  async produce(conn: Session, id: number, f: Frame): Promise<void> {
    this.checkOpen();
    const t = this.txnOf(f);
    if (t.state !== 'open' || this.deciding.has(t.txn)) throw alreadyDecided(t, 'cannot add messages to it');
    const records = f.records;
    if (!(records instanceof Uint8Array)) throw badRequest('records', '"records" must be a byte string holding a record batch');
    const topic = this.topicOf(t);
    let forced: number | null = null;
    if (f.partition !== undefined) {
      if (typeof f.partition !== 'number' || !Number.isInteger(f.partition)) throw badRequest('partition', '"partition" must be an integer');
      if (f.partition < 0 || f.partition >= topic.partitions) {
        throw new WeirError(ErrorCode.PARTITION_NOT_FOUND, `topic ${topic.name} has partitions 0..${topic.partitions - 1}, not ${f.partition}`);
      }
      forced = f.partition;
    }
    try {
      scanBatch(records, this.index, { maxRecordBytes: Number.MAX_SAFE_INTEGER, maxRecords: MAX_TXN_MESSAGES });
    } catch (err) {
      if (err instanceof BatchFormatError) {
        throw new WeirError(ErrorCode.BAD_BATCH, err.message, { details: { defect: err.defect, record: err.recordIndex, position: err.position } });
      }
      throw err;
    }
    const count = this.index.count;
    if (t.messages + count > MAX_TXN_MESSAGES || t.bytes + records.length > MAX_TXN_BYTES) {
      throw new WeirError(ErrorCode.TXN_TOO_LARGE, `transaction ${t.txn} would hold more than ${MAX_TXN_MESSAGES} messages or ${MAX_TXN_BYTES} bytes`, {
        details: { txn: t.txn, messages: t.messages, bytes: t.bytes },
      });
    }
    const inFlight = this.inFlightBytes.get(conn) ?? 0;
    if (inFlight > 0 && inFlight + records.length > MAX_IN_FLIGHT_BYTES_PER_CONNECTION) {
      throw new WeirError(ErrorCode.THROTTLED, `connection has ${inFlight} half-message bytes in flight (limit ${MAX_IN_FLIGHT_BYTES_PER_CONNECTION}); wait for answers`, { retryable: true });
    }
    const tagged = tagWithTransaction(records, this.index, t.txn);
    this.inFlightBytes.set(conn, inFlight + records.length);
    const work = (async () => {
      const { parts } = await this.host.append(await this.halfTopic(), tagged, 0);
      const entry: TxnLogEntry = { e: 'half', txn: t.txn, base: parts[0]![1], count, bytes: tagged.length, partition: forced, at: Date.now() };
      await this.log.append(entry);
      this.book.apply(entry);
    })();
    let set = this.producing.get(t.txn);
    if (!set) this.producing.set(t.txn, (set = new Set()));
    set.add(work);
    try {
      await work;
    } finally {
      set.delete(work);
      if (set.size === 0) this.producing.delete(t.txn);
      const left = (this.inFlightBytes.get(conn) ?? records.length) - records.length;
      if (left > 0) this.inFlightBytes.set(conn, left);
      else this.inFlightBytes.delete(conn);
    }
    this.schedule(t);
    this.host.send(conn, { op: 'result', id, txn: t.txn, count, messages: t.messages });
  }

  /** The `txn_commit` and `txn_rollback` ops. */
  async decideOp(conn: Session, id: number, f: Frame, kind: 'commit' | 'rollback'): Promise<void> {
    this.checkOpen();
    const t = this.txnOf(f);
    const state = await this.decide(t, kind, typeof f.by === 'string' && /^(producer|checker|admin)$/.test(f.by) ? f.by : 'producer');
    this.host.send(conn, { op: 'result', id, txn: t.txn, state });
  }

  /**
   * Decide a transaction (first decision wins; a repeat of the same decision is answered like the
   * first, the other one gets TXN_ALREADY_DECIDED). A commit resolves once its messages are in
   * the topic.
   */
  async decide(t: Transaction, kind: 'commit' | 'rollback', by: string): Promise<TxnState> {
    if (t.state === 'open') {
      let pending = this.deciding.get(t.txn);
      if (!pending) {
        pending = (async () => {
          const inFlight = this.producing.get(t.txn);
          if (inFlight) await Promise.allSettled([...inFlight]);
          const entry: TxnLogEntry = kind === 'commit' ? { e: 'commit', txn: t.txn, at: Date.now(), by } : { e: 'rollback', txn: t.txn, at: Date.now(), by };
          await this.log.append(entry);
          this.book.apply(entry);
          this.unschedule(t.txn);
          this.maybeCompact();
        })();
        this.deciding.set(t.txn, pending);
        void pending.catch(() => undefined).finally(() => this.deciding.delete(t.txn));
      }
      await pending;
    }
    const want = kind === 'commit' ? ['committing', 'committed'] : ['rolled_back'];
    if (!want.includes(t.state)) throw alreadyDecided(t, `cannot ${kind} it`);
    if (t.state === 'committing') await this.ensureApplied(t);
    return t.state;
  }

  /** The `txn_checker` op. */
  registerChecker(conn: Session, id: number, f: Frame): void {
    const producerGroup = groupNameOf(f.producerGroup, 'producerGroup');
    if (f.stop !== undefined && typeof f.stop !== 'boolean') throw badRequest('stop', '"stop" must be a boolean');
    if (f.stop === true) {
      // Withdrawn (the SDK's checker.close() on a connection that stays open): its turns in the
      // rotation would otherwise go to a client that ignores them.
      this.dropChecker(conn, producerGroup);
      this.host.send(conn, { op: 'result', id, producerGroup });
      return;
    }
    const list = this.checkers.get(producerGroup) ?? [];
    if (!list.includes(conn)) list.push(conn);
    this.checkers.set(producerGroup, list);
    this.host.send(conn, { op: 'result', id, producerGroup });
    // Transactions already waiting for a check get one now rather than a period later.
    for (const t of this.book.all()) {
      if (t.state === 'open' && t.producerGroup === producerGroup && t.checks > 0) this.check(t);
    }
  }

  /** The `txn_list` op. */
  list(conn: Session, id: number, f: Frame): void {
    if (f.topic !== undefined && typeof f.topic !== 'string') throw badRequest('topic', '"topic" must be a string');
    const all = f.all === true;
    const out: TxnInfo[] = [];
    for (const t of this.book.all()) {
      if (f.topic !== undefined && t.topic !== f.topic) continue;
      if (!all && t.state !== 'open' && t.state !== 'committing') continue;
      if (!this.host.may(conn, 'txn', t.producerGroup)) continue;
      out.push({
        txn: t.txn, topic: t.topic, producerGroup: t.producerGroup, state: t.state, messages: t.messages,
        begunAt: t.begunAt, lastActivityAt: t.lastActivityAt, decidedAt: t.decidedAt, decidedBy: t.decidedBy, checks: t.checks,
      });
    }
    out.sort((a, b) => a.txn - b.txn);
    // Bounded answer (the oldest first: those are the ones that need attention).
    const truncated = out.length > MAX_LISTED;
    this.host.send(conn, { op: 'result', id, transactions: truncated ? out.slice(0, MAX_LISTED) : out, truncated });
  }

  // ------------------------------------------------------------------ checks and timeouts

  private schedule(t: Transaction): void {
    this.unschedule(t.txn);
    if (this.closed) return;
    const topic = this.host.topics.get(t.topic);
    const due = this.book.due(t, {
      checkMs: topic?.config.transactionCheckMs ?? 5_000,
      timeoutMs: topic?.config.transactionTimeoutMs ?? 60_000,
    });
    if (!due) return;
    this.arm(t, due.at - Date.now(), () => {
      if (due.kind === 'rollback') {
        this.decide(t, 'rollback', 'timeout').catch((err: unknown) => {
          // Decided otherwise meanwhile (a commit was being logged): nothing to do.
          if (t.state !== 'open') return;
          // The log refused the decision (disk error): still open, try again a little later
          // (not at once: due.at is past, that would spin).
          report(t.txn, 'timeout', err);
          this.arm(t, TIMEOUT_RETRY_MS, () => this.schedule(t));
        });
        return;
      }
      try {
        this.check(t);
      } catch (err) {
        report(t.txn, 'check', err);
      }
      this.schedule(t);
    });
  }

  /** Run `fire` for an open transaction in `ms` (its one timer; nothing it throws escapes). */
  private arm(t: Transaction, ms: number, fire: () => void): void {
    this.unschedule(t.txn);
    if (this.closed) return;
    const timer = setTimeout(() => {
      this.timers.delete(t.txn);
      if (this.closed || t.state !== 'open') return;
      try {
        fire();
      } catch (err) {
        report(t.txn, 'check', err);
      }
    }, Math.max(0, ms));
    timer.unref?.();
    this.timers.set(t.txn, timer);
  }

  private unschedule(txn: number): void {
    const timer = this.timers.get(txn);
    if (timer) clearTimeout(timer);
    this.timers.delete(txn);
  }

  /** Ask one checker of the transaction's producer group (rotating among them). */
  private check(t: Transaction): void {
    t.checks++;
    t.lastCheckAt = Date.now();
    const list = (this.checkers.get(t.producerGroup) ?? []).filter((c) => !c.closed);
    if (list.length === 0) return;
    const turn = this.nextChecker.get(t.producerGroup) ?? 0;
    this.nextChecker.set(t.producerGroup, turn + 1);
    const conn = list[turn % list.length]!;
    const frame: TxnCheckFrame = { op: 'txn_check', txn: t.txn, topic: t.topic, producerGroup: t.producerGroup, messages: t.messages, begunAt: t.begunAt, checks: t.checks };
    this.host.send(conn, { ...frame });
  }

  /** Remove `conn` as a checker of `only` (or of every group: its connection closed). */
  private dropChecker(conn: Session, only?: string): void {
    for (const [group, list] of this.checkers) {
      if (only !== undefined && group !== only) continue;
      const rest = list.filter((c) => c !== conn);
      if (rest.length === 0) {
        this.checkers.delete(group);
        this.nextChecker.delete(group);
      } else this.checkers.set(group, rest);
    }
  }

  // ------------------------------------------------------------------ apply

  /** Resolves once the committed transaction's messages are all in its topic (retrying failures). */
  private ensureApplied(t: Transaction): Promise<void> {
    let p = this.applying.get(t.txn);
    if (!p) {
      p = this.applyUntilDone(t).finally(() => this.applying.delete(t.txn));
      this.applying.set(t.txn, p);
    }
    return p;
  }

  private async applyUntilDone(t: Transaction): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw shuttingDown();
      try {
        await this.applyOnce(t);
        return;
      } catch (err) {
        if (this.closed) throw shuttingDown();
        report(t.txn, 'apply', err);
        if (attempt === 20) console.error(`weir transactions: applying committed transaction ${t.txn} keeps failing (retrying):`, err);
        await this.sleep(Math.min(5_000, 50 * 2 ** Math.min(attempt, 7)));
      }
    }
  }

  private async applyOnce(t: Transaction): Promise<void> {
    if (t.state !== 'committing') return;
    const topic = this.topicOf(t);
    const skip = new Array<number>(topic.partitions).fill(0);
    if (!t.ends) {
      // First attempt: nothing of it is in the topic yet. Remember where each partition ends, so a
      // resumed apply knows where to look for what it already appended.
      const described = await Promise.all(topic.actors.map((a) => a.describe()));
      const entry: TxnLogEntry = { e: 'apply', txn: t.txn, ends: described.map((d, p) => [p, d.end]) };
      await this.log.append(entry);
      this.book.apply(entry);
    } else {
      const expected = await this.shareDigests(t, topic.partitions);
      for (const [p, end] of t.ends) if (p < topic.partitions) skip[p] = await this.countApplied(topic, p, end, t.txn, expected[p]!);
    }
    for (const h of t.halves) {
      for await (const r of this.halfChunks(t, h)) {
        const buckets = new Map<number, Array<[number, number]>>();
        for (const at of recordStarts(r.records)) {
          const p = targetPartition(r.records, at, h.partition, topic.partitions, t.txn);
          if (skip[p]! > 0) {
            skip[p]!--;
            continue;
          }
          let ranges = buckets.get(p);
          if (!ranges) buckets.set(p, (ranges = []));
          ranges.push([at, at + 4 + (r.records[at]! | (r.records[at + 1]! << 8) | (r.records[at + 2]! << 16) | (r.records[at + 3]! << 24)) >>> 0]);
        }
        // Every partition's share in the same turn: they become visible together, within one flush.
        // allSettled, not all: a retry counts what is in each partition, so it must not start while
        // another partition's append of this chunk may still land (it would be appended twice).
        const outcomes = await Promise.allSettled(
          [...buckets].map(async ([p, ranges]) => {
            if (testHooks.beforePartitionAppend) await testHooks.beforePartitionAppend(t.txn, p);
            await this.host.append(topic, gather(r.records, ranges), p);
          }),
        );
        for (const o of outcomes) if (o.status === 'rejected') throw o.reason;
      }
    }
    const entry: TxnLogEntry = { e: 'applied', txn: t.txn, at: Date.now() };
    await this.log.append(entry);
    this.book.apply(entry);
    this.maybeCompact();
  }

  /** Per target partition, the digests of its share of the transaction's messages, in apply order. */
  private async shareDigests(t: Transaction, partitions: number): Promise<number[][]> {
    const out = Array.from({ length: partitions }, (): number[] => []);
    for (const h of t.halves) {
      for await (const r of this.halfChunks(t, h)) {
        for (const at of recordStarts(r.records)) out[targetPartition(r.records, at, h.partition, partitions, t.txn)]!.push(recordDigest(r.records, at));
      }
    }
    return out;
  }

  /**
   * The half messages of `h`, read in chunks. Offsets lost to damage on disk (DATA_LOSS) are
   * skipped and reported on `weir:txn:error`: the rest of the transaction still applies, the same
   * way on every attempt (shareDigests and the apply skip the same ones).
   */
  private async *halfChunks(t: Transaction, h: { base: number; count: number }): AsyncGenerator<ReadResult> {
    let offset = h.base;
    let left = h.count;
    while (left > 0) {
      let r: ReadResult;
      try {
        r = await this.host.read(await this.halfTopic(), 0, offset, { maxRecords: left });
      } catch (err) {
        const lost = lostRange(err);
        if (lost === null || lost.to <= offset) throw err;
        report(t.txn, 'apply', err);
        left -= Math.min(left, lost.to - offset);
        offset = lost.to;
        continue;
      }
      if (r.count === 0) throw new WeirError(ErrorCode.INTERNAL, `half messages of transaction ${t.txn} at ${HALF_TOPIC}@${offset} are missing`);
      yield r;
      offset = r.next;
      left -= r.count;
    }
  }

  /**
   * How many of `share` (digests of partition p's share, in order) are in partition `p` from offset
   * `from` on: the longest prefix found there, in order, among the records tagged with `txn`.
   */
  private async countApplied(topic: Topic, p: number, from: number, txn: number, share: number[]): Promise<number> {
    let found = 0;
    let offset = from;
    for (;;) {
      let r;
      try {
        r = await this.host.read(topic, p, offset);
      } catch (err) {
        const lost = lostRange(err);
        if (lost !== null && lost.to > offset) {
          offset = lost.to; // damaged on disk: whatever of ours was there cannot be counted
          continue;
        }
        if (WeirError.isWeirError(err) && err.code === ErrorCode.OFFSET_OUT_OF_RANGE) {
          // The log lost its tail below the recorded end (a machine crash under --fsync never):
          // nothing of ours is left there to count.
          if (typeof err.details?.end === 'number' && err.details.end < offset) return found;
          // Retention deleted the start of what we appended (the apply was pending longer than the
          // retention): count what is left. Deleted messages of ours are appended again: at least
          // once in that corner case rather than retrying forever (docs/transactions.md).
          if (typeof err.details?.start === 'number' && err.details.start > offset) {
            offset = err.details.start;
            continue;
          }
        }
        throw err;
      }
      if (r.count === 0) return found;
      for (const at of recordStarts(r.records)) {
        if (found < share.length && isOfTransaction(r.records, at, txn) && recordDigest(r.records, at) === share[found]) found++;
      }
      if (found === share.length) return found;
      offset = r.next;
      if (offset >= r.end) return found;
    }
  }

  // ------------------------------------------------------------------ helpers

  private async halfTopic(): Promise<Topic> {
    // deadLetterTopic null: the default `__txn_half.dlq` would be refused when topics.json is
    // read back at the next start (a reserved name), and half messages are never dead-lettered.
    this.half ??= await this.host.ensureTopic(HALF_TOPIC, 1, { deadLetterTopic: null }, true);
    return this.half;
  }

  /** Rewrite the log with only unfinished transactions once enough finished ones accumulated. */
  private maybeCompact(): void {
    if (this.compacting || this.book.finishedSinceCompaction < COMPACT_AFTER_FINISHED || this.closed) return;
    this.compacting = true;
    this.book.compacted();
    void this.log
      .rewrite(() => this.book.snapshot())
      .catch((err: unknown) => {
        report(null, 'compact', err);
        console.error('weir transactions: compacting the log failed:', err);
      })
      .finally(() => (this.compacting = false));
  }

  /** Wait `ms` (a retry backoff); close() ends the wait early. */
  private sleep(ms: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const sleep = {
        timer: setTimeout(() => {
          this.sleeps.delete(sleep);
          resolve();
        }, ms),
        wake: resolve,
      };
      this.sleeps.add(sleep);
    });
  }

  /** The producer group of transaction `txn` (undefined: no such transaction). */
  producerGroupOf(txn: unknown): string | undefined {
    return typeof txn === 'number' ? this.book.get(txn)?.producerGroup : undefined;
  }

  private txnOf(f: Frame): Transaction {
    const id = f.txn;
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 1) throw badRequest('txn', '"txn" must be a positive integer (from txn_begin)');
    const t = this.book.get(id);
    if (!t) throw new WeirError(ErrorCode.TXN_NOT_FOUND, `no transaction ${id} (never begun, or finished and forgotten)`, { details: { txn: id } });
    return t;
  }

  private topicOf(t: Transaction): Topic {
    const topic = this.host.topics.get(t.topic);
    if (!topic) throw new WeirError(ErrorCode.TOPIC_NOT_FOUND, `topic ${t.topic} of transaction ${t.txn} does not exist`);
    return topic;
  }

  private checkOpen(): void {
    if (this.closed) throw shuttingDown();
  }
}


function shuttingDown(): WeirError {
  return new WeirError(ErrorCode.SHUTTING_DOWN, 'broker is stopping; retry against it once it is back', { retryable: true });
}

function alreadyDecided(t: Transaction, what: string): WeirError {
  const state = t.state === 'open' ? 'deciding' : t.state;
  return new WeirError(ErrorCode.TXN_ALREADY_DECIDED, `transaction ${t.txn} is ${state.replace('_', ' ')}: ${what}`, { details: { txn: t.txn, state } });
}
