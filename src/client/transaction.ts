/**
 * Transactions in the SDK (docs/transactions.md):
 *
 *   const tx = await client.beginTransaction('orders', { producerGroup: 'billing' });
 *   await tx.produce([{ key: 'k1', value: 'a' }, { key: 'k2', value: 'b' }]);   // half messages
 *   await tx.commit();   // or tx.rollback(); all of them become visible, or none
 *
 *   // Elsewhere: answer the broker's questions about transactions whose producer went away.
 *   const checker = await client.transactionChecker('billing', async (check) => (await isPaid(check.txn)) ? 'commit' : 'rollback');
 *
 * A transaction is identified by its number, not by the connection: after a reconnect (or from
 * another client) it can still be committed or rolled back.
 */
import { BatchBuilder } from '../protocol/batch-builder.js';
import { ErrorCode } from '../protocol/codes.js';
import type { TxnBeginResult, TxnCheckFrame, TxnDecider, TxnDecisionResult, TxnInfo, TxnListResult, TxnProduceResult, TxnState } from '../protocol/frames.js';
import { asClientError, type Connection } from './connection.js';
import { WeirClientError, badRequest } from './errors.js';
import { recordSize } from './record-size.js';
import type { ProduceMessage } from './types.js';

export type { TxnInfo, TxnState } from '../protocol/frames.js';

export interface BeginTransactionOptions {
  /** The group whose checkers the broker asks about this transaction if it stays undecided. */
  producerGroup: string;
}

/** What a checker is asked about. */
export interface TransactionCheck {
  txn: number;
  topic: string;
  producerGroup: string;
  /** Half messages in the transaction. */
  messages: number;
  /** When it was begun (ms since the epoch). */
  begunAt: number;
  /** How many times the broker has asked about it (this one included). */
  checks: number;
}

/** A checker's answer; 'unknown' leaves the transaction open (asked again later, rolled back at the timeout). */
export type CheckAnswer = 'commit' | 'rollback' | 'unknown';
export type TransactionCheckHandler = (check: TransactionCheck) => CheckAnswer | Promise<CheckAnswer>;

/** How long commit/rollback keep retrying retryable failures (connection lost, broker restarting). */
const DECIDE_RETRY_MS = 30_000;

export class Transaction {
  private decided: TxnState | null = null;

  constructor(
    private readonly conn: Connection,
    readonly id: number,
    readonly topic: string,
    readonly producerGroup: string,
  ) {}

  static async begin(conn: Connection, topic: string, options: BeginTransactionOptions): Promise<Transaction> {
    const producerGroup = options?.producerGroup;
    if (typeof producerGroup !== 'string') throw badRequest('beginTransaction needs options.producerGroup', 'producerGroup');
    const r = await conn.request<TxnBeginResult>({ op: 'txn_begin', topic, producerGroup });
    return new Transaction(conn, r.txn, r.topic, r.producerGroup);
  }

  /**
   * Add half messages: stored durably, invisible to consumers until commit. Not retried: a lost
   * answer leaves it unknown whether they were added (roll back and start over if that matters).
   */
  async produce(messages: readonly ProduceMessage[], options: { partition?: number } = {}): Promise<{ count: number; messages: number }> {
    if (!Array.isArray(messages) || messages.length === 0) throw badRequest('produce() takes a non-empty array of messages', 'messages');
    let bytes = 0;
    for (const m of messages) bytes += recordSize(m);
    const builder = new BatchBuilder(bytes);
    for (const m of messages) builder.add(m.key, m.value, m.headers);
    const r = await this.conn.request<TxnProduceResult>({ op: 'txn_produce', txn: this.id, records: builder.take(), partition: options.partition });
    return { count: r.count, messages: r.messages };
  }

  /** Make every message visible (resolves once they are all in the topic). Safe to retry. */
  async commit(): Promise<TxnState> {
    this.decided = await decide(this.conn, this.id, 'commit', 'producer');
    return this.decided;
  }

  /** Discard every message. Safe to retry. */
  async rollback(): Promise<TxnState> {
    this.decided = await decide(this.conn, this.id, 'rollback', 'producer');
    return this.decided;
  }

  /** The last decision this object made, or null. */
  get state(): TxnState | null {
    return this.decided;
  }
}

/** Commit or roll back transaction `txn`, retrying retryable failures (the decision is idempotent). */
export async function decide(conn: Connection, txn: number, kind: 'commit' | 'rollback', by: TxnDecider): Promise<TxnState> {
  const deadline = Date.now() + DECIDE_RETRY_MS;
  for (let attempt = 0; ; attempt++) {
    try {
      const r = await conn.request<TxnDecisionResult>({ op: kind === 'commit' ? 'txn_commit' : 'txn_rollback', txn, by });
      return r.state;
    } catch (err) {
      const e = asClientError(err, `${kind} of transaction ${txn}`);
      if (!e.retryable || Date.now() >= deadline) throw e;
      await new Promise((r) => setTimeout(r, Math.min(1_000, 20 * 2 ** attempt)));
    }
  }
}

export async function listTransactions(conn: Connection, options: { topic?: string; all?: boolean } = {}): Promise<TxnInfo[]> {
  const r = await conn.request<TxnListResult>({ op: 'txn_list', topic: options.topic, all: options.all });
  return Array.isArray(r.transactions) ? r.transactions.map((t) => ({ ...t })) : [];
}

/** Checker registries (one per client) whose `txn_check` listener is installed. */
const listening = new WeakSet<Map<string, TransactionChecker>>();

/**
 * This client answers the broker's `txn_check` questions for `producerGroup` (re-registered after
 * each reconnect). One checker per group per client; a second call replaces the handler.
 */
export class TransactionChecker {
  private closed = false;
  private readonly offReconnect: () => void;

  private constructor(
    private readonly conn: Connection,
    readonly producerGroup: string,
    private readonly handler: TransactionCheckHandler,
    private readonly registry: Map<string, TransactionChecker>,
    private readonly onError: (err: WeirClientError) => void,
  ) {
    this.offReconnect = conn.on('reconnect', () => {
      if (!this.closed) void this.register().catch((err: unknown) => this.onError(asClientError(err, 'registering the transaction checker')));
    });
  }

  static async start(conn: Connection, producerGroup: string, handler: TransactionCheckHandler, registry: Map<string, TransactionChecker>, onError: (err: WeirClientError) => void): Promise<TransactionChecker> {
    if (typeof handler !== 'function') throw badRequest('transactionChecker needs a handler function', 'handler');
    registry.get(producerGroup)?.close();
    const checker = new TransactionChecker(conn, producerGroup, handler, registry, onError);
    registry.set(producerGroup, checker);
    if (!listening.has(registry)) {
      // One listener per client, for every producer group it checks.
      listening.add(registry);
      conn.onPush('txn_check', (frame) => {
        const f = frame as unknown as TxnCheckFrame;
        const c = registry.get(f.producerGroup);
        if (c) void c.handle(f);
      });
    }
    try {
      await checker.register();
    } catch (err) {
      checker.close();
      throw err;
    }
    return checker;
  }

  /** Stop answering (the broker forgets the registration when the connection closes). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.offReconnect();
    if (this.registry.get(this.producerGroup) === this) {
      this.registry.delete(this.producerGroup);
      // Tell the broker, so it stops giving this connection turns in the group's rotation (best
      // effort: a closed connection is forgotten by the broker anyway).
      this.conn.request({ op: 'txn_checker', producerGroup: this.producerGroup, stop: true }).catch(() => undefined);
    }
  }

  private async register(): Promise<void> {
    await this.conn.request({ op: 'txn_checker', producerGroup: this.producerGroup });
  }

  private async handle(f: TxnCheckFrame): Promise<void> {
    if (this.closed) return;
    const check: TransactionCheck = { txn: f.txn, topic: f.topic, producerGroup: f.producerGroup, messages: f.messages, begunAt: f.begunAt, checks: f.checks };
    try {
      const answer = await this.handler(check);
      if (this.closed || answer === 'unknown') return;
      if (answer !== 'commit' && answer !== 'rollback') throw badRequest(`a transaction checker must answer 'commit', 'rollback' or 'unknown', not ${JSON.stringify(answer)}`, 'answer');
      await decide(this.conn, f.txn, answer, 'checker');
    } catch (err) {
      const e = asClientError(err, `checking transaction ${f.txn}`);
      // Decided meanwhile (by its producer, another checker or the timeout): nothing to do.
      if (e.code === ErrorCode.TXN_ALREADY_DECIDED || e.code === ErrorCode.TXN_NOT_FOUND) return;
      this.onError(e);
    }
  }
}

