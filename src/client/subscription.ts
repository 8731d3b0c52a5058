/**
 * One subscription: credit-based delivery, per-partition sequential handling, batched commits
 * (groups), the rebalance protocol, and re-subscribing after a reconnect.
 *
 * Per partition the state is a `PartitionState`, replaced whole by every `assign`:
 *
 *   deliver ──(assigned? not stopped? offset ≥ nextExpected?)──▶ queue ──▶ handler (one at a time)
 *                                                                            │ resolved
 *                                                                            ▼
 *                                     processed = offset + 1, +1 credit owed (granted in batches)
 *
 * Invariants:
 * - At most one handler runs per partition, also across an assignment change: a new state for a
 *   partition first waits for the previous state's loop (`blockedBy`).
 * - Credit owed to the broker = messages handled or discarded since the last grant; it is granted
 *   when it reaches half the window, so the broker never runs dry while the client has nothing
 *   queued (owed + queued + broker-side credit = window).
 * - A partition whose handler threw is in `stopped` for the rest of this subscription's life: its
 *   queue is dropped, no more credit is granted, and later deliveries are ignored.
 * - Commits are serialized (one `commit` request at a time) and only move forward.
 */
import { readCheckedMessages, readMessages, type CorruptRecord, type Message } from '../protocol/batch-reader.js';
import { ErrorCode, WeirCode } from '../protocol/codes.js';
import { MAX_CREDITS, type AssignFrame, type DeliverFrame, type RevokeFrame, type StartPosition, type SubscribeResult } from '../protocol/frames.js';
import { unrefTimer } from './backoff.js';
import { asClientError, type Connection, type PushFrame } from './connection.js';
import { Emitter } from './emitter.js';
import { WeirClientError, corruptRecordError, errorFromFrame, handlerError } from './errors.js';
import type { MessageHandler, SubscribeOptions } from './types.js';

export interface SubscriptionEvents extends Record<string, unknown> {
  error: WeirClientError;
  assign: { generation: number; partitions: Array<[partition: number, offset: number]> };
  revoke: { generation: number };
}

export interface PartitionStats {
  partition: number;
  /** Next offset the subscription accepts from the broker. */
  nextExpected: number;
  /** Offset after the last message whose handler resolved (undefined: none yet). */
  processed: number | undefined;
  /** Offset after the last committed message (groups). */
  committed: number | undefined;
  queued: number;
  /** Credit handled/discarded but not yet granted back. */
  owed: number;
  stopped: boolean;
}

interface PartitionState {
  partition: number;
  nextExpected: number;
  queue: Message[];
  head: number;
  running: Promise<void> | null;
  blockedBy: Promise<void> | null;
  processed: number | undefined;
  committed: number | undefined;
  owed: number;
  /** False once revoked, reassigned, disconnected or closing: stop dispatching. */
  active: boolean;
}

const MAX_KEPT_ERRORS = 100;

/** The subscription's credit window (option `credits`, default 1000); BAD_REQUEST outside 1 – MAX_CREDITS. */
export function creditsOf(opts: SubscribeOptions): number {
  const credits = opts.credits ?? 1000;
  // Above MAX_CREDITS the broker clamps, and a window it never fills would never be granted back.
  if (!(Number.isInteger(credits) && credits >= 1 && credits <= MAX_CREDITS)) {
    throw new WeirClientError(ErrorCode.BAD_REQUEST, `credits must be an integer from 1 to ${MAX_CREDITS}`, { retryable: false, details: { field: 'credits' } });
  }
  return credits;
}

export class Subscription extends Emitter<SubscriptionEvents> {
  readonly topic: string;
  readonly group: string | undefined;
  /** The latest errors (handler failures, subscription errors from the broker), oldest first. */
  readonly errors: WeirClientError[] = [];

  private subId: number | null = null;
  private generation = -1;
  private parts = new Map<number, PartitionState>();
  /** States replaced by an assign/revoke/disconnect whose handler may still be running. */
  private readonly retired = new Set<PartitionState>();
  private readonly stopped = new Set<number>();
  /** Non-group: where to resume each partition after a reconnect. */
  private readonly positions = new Map<number, number>();
  private state: 'subscribing' | 'active' | 'closing' | 'closed' = 'subscribing';
  private commitTimer: ReturnType<typeof setTimeout> | null = null;
  private commitChain: Promise<void> = Promise.resolve();
  private closing: Promise<void> | null = null;
  private readonly credits: number;
  private readonly commitIntervalMs: number;
  private readonly from: StartPosition | undefined;
  private readonly listener = (frame: PushFrame): void => this.onPush(frame);
  /** Records of the delivery being read that failed the CRC check (reused). */
  private readonly corrupt: CorruptRecord[] = [];

  private constructor(
    private readonly conn: Connection,
    topic: string,
    private readonly opts: SubscribeOptions,
    private readonly handler: MessageHandler,
    private readonly onClosed: (sub: Subscription) => void,
  ) {
    super();
    this.topic = topic;
    this.group = opts.group;
    this.from = opts.from;
    this.credits = creditsOf(opts);
    this.commitIntervalMs = opts.commitIntervalMs ?? 100;
    if (typeof handler !== 'function') throw new WeirClientError(ErrorCode.BAD_REQUEST, 'subscribe() needs a handler function', { retryable: false, details: { field: 'handler' } });
  }

  static async start(
    conn: Connection,
    topic: string,
    opts: SubscribeOptions,
    handler: MessageHandler,
    onClosed: (sub: Subscription) => void,
  ): Promise<Subscription> {
    const sub = new Subscription(conn, topic, opts, handler, onClosed);
    await sub.subscribe(sub.from);
    sub.state = 'active';
    sub.scheduleCommit();
    return sub;
  }

  /**
   * A subscription the broker opened on its own (one topic of a pattern subscription): `subId` is
   * already live, so no `subscribe` is sent. Its pattern subscription handles reconnects (rebind).
   */
  static attach(conn: Connection, topic: string, subId: number, opts: SubscribeOptions, handler: MessageHandler, onClosed: (sub: Subscription) => void): Subscription {
    const sub = new Subscription(conn, topic, opts, handler, onClosed);
    sub.rebind(subId);
    sub.state = 'active';
    sub.scheduleCommit();
    return sub;
  }

  /** Pattern subscriptions, after a reconnect: the broker opened subscription `subId` for this topic again. */
  rebind(subId: number): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.generation = -1;
    this.subId = subId;
    this.conn.registerSubscription(subId, this.listener);
  }

  /** Without a group: per partition, the first offset not handled yet (where resubscribing resumes). */
  resumeOffsets(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [p, o] of this.positions) out[String(p)] = o;
    return out;
  }

  /** The broker's subscription id on the current connection (changes after a reconnect). */
  get id(): number | null {
    return this.subId;
  }

  /** Partitions currently assigned to this subscription. */
  assignment(): number[] {
    return [...this.parts.keys()].sort((a, b) => a - b);
  }

  stats(): PartitionStats[] {
    return [...this.parts.values()]
      .sort((a, b) => a.partition - b.partition)
      .map((ps) => ({
        partition: ps.partition,
        nextExpected: ps.nextExpected,
        processed: ps.processed,
        committed: ps.committed,
        queued: ps.queue.length - ps.head,
        owed: ps.owed,
        stopped: this.stopped.has(ps.partition),
      }));
  }

  /**
   * Stop dispatching, wait for running handlers, commit (groups), send `unsubscribe`.
   * Do not await this from inside the handler: it waits for that very handler.
   */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  /** Stop at once: no waiting, no commit, no unsubscribe (the connection is going away). */
  destroy(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.stopCommitTimer();
    for (const ps of this.allStates()) this.retire(ps);
    if (this.subId !== null) this.conn.unregisterSubscription(this.subId, this.listener);
    this.subId = null;
    this.onClosed(this);
  }

  /** The connection dropped: the broker forgot this subscription. */
  onDisconnect(): void {
    if (this.state !== 'active') return;
    if (this.subId !== null) this.conn.unregisterSubscription(this.subId, this.listener);
    this.subId = null;
    for (const ps of this.parts.values()) {
      // The first message not handed to the handler yet: the head of the queue, else the next one
      // expected. Not a message whose handler is still running: it was delivered, and resuming
      // there would deliver it twice (if that handler throws, the partition stops as usual).
      if (!this.group) this.positions.set(ps.partition, ps.queue[ps.head]?.offset ?? ps.nextExpected);
      this.retire(ps);
    }
    this.parts = new Map();
  }

  /** The connection is back: subscribe again (groups get a fresh assignment from the broker). */
  async onReconnect(): Promise<void> {
    if (this.state !== 'active') return;
    let from = this.from;
    if (!this.group && this.positions.size > 0) {
      // Resume where processing stopped instead of re-reading from `from`.
      const offsets: Record<string, number> = {};
      for (const [p, o] of this.positions) offsets[String(p)] = o;
      from = { offsets };
    }
    try {
      await this.subscribe(from);
    } catch (err) {
      const e = asClientError(err, 'resubscribe');
      // Retryable failures mean the connection dropped again: the next reconnect tries again.
      if (!e.retryable) {
        this.report(new WeirClientError(e.code, `resubscribing to ${this.topic} failed: ${e.message}`, { retryable: false, details: e.details, cause: e }));
        this.destroy();
      }
    }
  }

  // --------------------------------------------------------------------------- broker frames

  private async subscribe(from: StartPosition | undefined): Promise<void> {
    this.generation = -1;
    await this.conn.request<SubscribeResult>(
      { op: 'subscribe', topic: this.topic, group: this.group, from, credits: this.credits },
      {
        // Synchronous, before any later frame of the same read: the first `assign` may follow at once.
        onResult: (result) => {
          if (typeof result.sub !== 'number') throw new WeirClientError(WeirCode.BAD_RESPONSE, 'subscribe result has no sub', { retryable: false });
          this.subId = result.sub;
          this.conn.registerSubscription(result.sub, this.listener);
        },
      },
    );
  }

  private onPush(frame: PushFrame): void {
    if (this.state === 'closed') return;
    switch (frame.op) {
      case 'deliver':
        this.onDeliver(frame);
        return;
      case 'assign':
        this.onAssign(frame);
        return;
      case 'revoke':
        void this.onRevoke(frame);
        return;
      case 'error': {
        const err = errorFromFrame(frame);
        const d = err.details;
        if (err.code === ErrorCode.DATA_LOSS && typeof d?.partition === 'number' && typeof d.from === 'number' && typeof d.to === 'number') {
          this.lost(d.partition, d.to, err);
          return;
        }
        if (err.code === ErrorCode.OFFSET_OUT_OF_RANGE) this.onStartPastEnd(err.details);
        this.report(err);
        return;
      }
    }
  }

  /**
   * The broker found a partition's start offset (from `from`, or a group's commit) past the log end
   * and delivers from the end instead: accept deliveries from there (they would be discarded as
   * redeliveries below the old offset), and let a group commit again from there.
   */
  private onStartPastEnd(details: Record<string, unknown> | undefined): void {
    const partition = details?.partition;
    const end = details?.end;
    if (typeof partition !== 'number' || typeof end !== 'number') return;
    const ps = this.parts.get(partition);
    if (!ps || ps.nextExpected <= end) return;
    ps.nextExpected = end;
    if (ps.committed !== undefined && ps.committed > end) ps.committed = end;
    if (ps.processed !== undefined && ps.processed > end) ps.processed = end;
    if (!this.group) this.positions.set(partition, end);
  }

  private onAssign(f: AssignFrame): void {
    if (!this.dispatching()) return;
    if (typeof f.generation === 'number') {
      if (f.generation < this.generation) return; // stale
      this.generation = f.generation;
    }
    const previous = this.parts;
    this.parts = new Map();
    for (const ps of previous.values()) this.retire(ps);
    const partitions = Array.isArray(f.partitions) ? f.partitions : [];
    for (const [partition, offset] of partitions) {
      // One handler per partition at a time, across assignments too: wait for any earlier state's
      // running loop (retired above or by a revoke/disconnect) and for what it was itself waiting on.
      const waits: Array<Promise<void>> = [];
      for (const r of this.retired) if (r.partition === partition && r.running) waits.push(r.running);
      const prev = previous.get(partition);
      if (prev?.blockedBy) waits.push(prev.blockedBy);
      this.parts.set(partition, {
        partition,
        nextExpected: offset,
        queue: [],
        head: 0,
        running: null,
        blockedBy: waits.length === 0 ? null : Promise.all(waits).then(() => undefined),
        processed: undefined,
        // Delivery starts at the group's committed offset (or `from`): nothing to commit below it.
        committed: offset,
        owed: 0,
        active: true,
      });
      if (!this.group) this.positions.set(partition, offset);
    }
    this.emit('assign', { generation: this.generation, partitions: partitions.map(([p, o]) => [p, o] as [number, number]) });
  }

  private onDeliver(f: DeliverFrame): void {
    if (!this.dispatching()) return;
    const ps = this.parts.get(f.partition);
    if (!ps || !ps.active || this.stopped.has(f.partition)) return; // not ours (any more)
    let messages: Message[];
    if (this.conn.checkCrcs) {
      const corrupt = this.corrupt;
      messages = readCheckedMessages(this.topic, f.partition, f.records, corrupt);
      if (corrupt.length > 0) {
        // Never handed out: reported and skipped (or the partition stopped), like data lost on disk.
        const stop = this.opts.onDataLoss === 'stop';
        // A record that failed claims an offset it may not have: one outside this delivery is replaced by the first possible.
        const first = corrupt[0]!;
        const at = first.offset >= ps.nextExpected && (typeof f.next !== 'number' || first.offset < f.next) ? first.offset : ps.nextExpected;
        if (stop) messages = messages.filter((m) => m.offset < at);
        for (const c of corrupt) this.lost(f.partition, undefined, corruptRecordError(this.topic, f.partition, c === first ? at : c.offset, c.framed, stop ? 'delivery of this partition stopped' : 'skipped'));
        corrupt.length = 0;
      }
    } else messages = readMessages(this.topic, f.partition, f.records);
    let discarded = 0;
    for (const m of messages) {
      // Dedupe guard: anything below what we already accepted is a redelivery.
      if (m.offset < ps.nextExpected) discarded++;
      else {
        ps.queue.push(m);
        ps.nextExpected = m.offset + 1;
      }
    }
    // `next` may lie past the last message carried: the broker skipped expired records (a deliver
    // with count 0 when all of them expired). Not when every message was a redelivery (stale).
    if (typeof f.next === 'number' && f.next > ps.nextExpected && (messages.length === 0 || discarded < messages.length)) ps.nextExpected = f.next;
    if (discarded > 0) {
      // The broker spent credit on them; give it back or the window shrinks for good.
      ps.owed += discarded;
      this.maybeGrant(ps);
    }
    this.startDispatch(ps);
    this.skipIfIdle(ps);
  }

  /**
   * Offsets of `partition` up to `to` (exclusive) will never be delivered (lost to damage on the
   * broker's disk, or failing the client's CRC check): report it, then skip past them
   * (`onDataLoss: 'skip'`, the default: the position and a group's commit move past once what came
   * before is handled) or stop the partition there (`'stop'`: what was queued before the loss is
   * still handled, nothing after it, and nothing past it is committed). `to` undefined: the loss
   * lies inside a delivery being read, whose own `next` moves the position.
   */
  private lost(partition: number, to: number | undefined, err: WeirClientError): void {
    this.report(err);
    const ps = this.parts.get(partition);
    if (!ps || !ps.active || this.stopped.has(partition)) return;
    if (this.opts.onDataLoss === 'stop') this.stopped.add(partition);
    else if (to !== undefined && to > ps.nextExpected) {
      ps.nextExpected = to;
      this.skipIfIdle(ps);
    }
  }

  /**
   * With nothing queued or running, every offset below nextExpected was handled or skipped by the
   * broker (expired): the position (and a group's commit) may move there. Without this a group
   * never commits past a run of expired records and re-reads them after every restart.
   */
  private skipIfIdle(ps: PartitionState): void {
    if (!ps.active || ps.running || ps.blockedBy || ps.head < ps.queue.length || this.stopped.has(ps.partition)) return;
    if (ps.processed !== undefined ? ps.nextExpected <= ps.processed : ps.nextExpected <= (ps.committed ?? 0)) return;
    ps.processed = ps.nextExpected;
    if (!this.group) this.positions.set(ps.partition, ps.processed);
  }

  private async onRevoke(f: RevokeFrame): Promise<void> {
    const sub = this.subId;
    // 'subscribing' too: a revoke can arrive in the same socket read as the subscribe result,
    // before start() marks the subscription active; ignoring it stalls the group's rebalance.
    if (!this.dispatching() || sub === null) return;
    // Stop every partition now; deliveries until the next assign are ignored (parts is empty).
    const old = [...this.parts.values()];
    this.parts = new Map();
    for (const ps of old) this.retire(ps);
    this.emit('revoke', { generation: f.generation });
    await Promise.all(old.map((ps) => ps.running));
    if (this.group) await this.commit(old);
    if (this.subId !== sub || this.isClosed()) return; // reconnected meanwhile: that sub is gone
    this.conn.notify({ op: 'revoked', sub, generation: f.generation });
  }

  // ------------------------------------------------------------------------------ handling

  private startDispatch(ps: PartitionState): void {
    if (ps.running || ps.head >= ps.queue.length) return;
    const loop = this.runLoop(ps).finally(() => {
      ps.running = null;
      this.retired.delete(ps);
      if (ps.active && ps.head < ps.queue.length) this.startDispatch(ps);
      else this.skipIfIdle(ps);
    });
    ps.running = loop;
  }

  private async runLoop(ps: PartitionState): Promise<void> {
    if (ps.blockedBy) {
      await ps.blockedBy;
      ps.blockedBy = null;
    }
    while (ps.active && this.dispatching() && ps.head < ps.queue.length) {
      const m = ps.queue[ps.head]!;
      ps.queue[ps.head++] = undefined as unknown as Message; // let the message's buffer go
      if (ps.head > 1024 && ps.head * 2 > ps.queue.length) {
        ps.queue = ps.queue.slice(ps.head);
        ps.head = 0;
      }
      const offset = m.offset;
      try {
        // Await only what is awaitable: a synchronous handler costs no promise or microtask per message.
        const done = this.handler(m) as unknown;
        if (done !== undefined && done !== null && typeof (done as PromiseLike<void>).then === 'function') await done;
      } catch (err) {
        this.stopped.add(ps.partition);
        ps.active = false;
        ps.queue = [];
        ps.head = 0;
        this.report(handlerError(this.topic, ps.partition, offset, err));
        return;
      }
      ps.processed = offset + 1;
      if (!ps.active) return; // revoked while the handler ran: processed is committed by onRevoke
      if (!this.group) this.positions.set(ps.partition, ps.processed);
      ps.owed++;
      this.maybeGrant(ps);
    }
  }

  private isClosed(): boolean {
    return this.state === 'closed';
  }

  private dispatching(): boolean {
    return this.state === 'active' || this.state === 'subscribing';
  }

  private maybeGrant(ps: PartitionState): void {
    if (ps.owed < Math.max(1, Math.ceil(this.credits / 2)) || this.subId === null || !ps.active) return;
    if (this.conn.notify({ op: 'credit', sub: this.subId, partition: ps.partition, credits: ps.owed })) ps.owed = 0;
  }

  private retire(ps: PartitionState): void {
    ps.active = false;
    ps.queue = [];
    ps.head = 0;
    if (ps.running) this.retired.add(ps);
  }

  private allStates(): PartitionState[] {
    return [...this.parts.values(), ...this.retired];
  }

  // ------------------------------------------------------------------------------- commits

  private scheduleCommit(): void {
    if (!this.group || this.state !== 'active' || this.commitTimer) return;
    this.commitTimer = unrefTimer(
      setTimeout(() => {
        this.commitTimer = null;
        void this.commit([...this.parts.values()]).finally(() => this.scheduleCommit());
      }, this.commitIntervalMs),
    );
  }

  private stopCommitTimer(): void {
    if (this.commitTimer) clearTimeout(this.commitTimer);
    this.commitTimer = null;
  }

  /** Commit the processed offsets of `states` (after any commit already in flight). Never throws. */
  private commit(states: PartitionState[]): Promise<void> {
    const run = async (): Promise<void> => {
      const sub = this.subId;
      if (!this.group || sub === null) return;
      const due = states.filter((ps) => ps.processed !== undefined && ps.processed > (ps.committed ?? -1));
      if (due.length === 0) return;
      const offsets = due.map((ps) => [ps.partition, ps.processed!] as [number, number]);
      try {
        await this.conn.request({ op: 'commit', sub, offsets });
        due.forEach((ps, i) => {
          ps.committed = Math.max(ps.committed ?? 0, offsets[i]![1]);
        });
      } catch (err) {
        const e = asClientError(err, 'commit');
        // NOT_ASSIGNED: rebalanced away (the new owner redelivers). Retryable: the next commit retries.
        if (e.code !== ErrorCode.NOT_ASSIGNED && !e.retryable && this.state !== 'closed') this.report(e);
      }
    };
    const next = this.commitChain.then(run);
    this.commitChain = next;
    return next;
  }

  private async doClose(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closing';
    this.stopCommitTimer();
    const states = this.allStates();
    for (const ps of states) this.retire(ps);
    await Promise.all(states.map((ps) => ps.running));
    if (this.group) await this.commit(states);
    const sub = this.subId;
    if (sub !== null) {
      try {
        await this.conn.request({ op: 'unsubscribe', sub });
      } catch (err) {
        const e = asClientError(err, 'unsubscribe');
        if (e.code !== ErrorCode.CONNECTION_CLOSED && e.code !== ErrorCode.UNKNOWN_SUBSCRIPTION) this.report(e);
      }
      this.conn.unregisterSubscription(sub, this.listener);
    }
    this.subId = null;
    this.state = 'closed';
    this.onClosed(this);
  }

  private report(error: WeirClientError): void {
    this.errors.push(error);
    if (this.errors.length > MAX_KEPT_ERRORS) this.errors.shift();
    try {
      this.opts.onError?.(error);
    } catch (err) {
      // The callback's own bug must not break delivery of other partitions: surface it elsewhere.
      queueMicrotask(() => {
        throw err;
      });
    }
    this.emit('error', error);
  }
}
