/**
 * Subscriptions: each assigned partition has a cursor that keeps one standing fetch at its
 * partition while it has credit and its session keeps up; the partition pushes each commit to it,
 * and the cursor hands the records to the session's front door (`deliver`). Consumer groups
 * (src/core/groups/) assign partitions to members and keep their committed offsets.
 */
import { WeirError } from '../common/errors.js';
import { channels } from '../common/diagnostics.js';
import { ErrorCode } from '../protocol/codes.js';
import { MAX_CREDITS, type StartPosition } from '../protocol/frames.js';
import { dropExpired } from '../protocol/expiry-filter.js';
import { FetchMode } from '../partition/protocol.js';
import type { FlowControl } from './flow-control.js';
import type { GroupCoordinator, GroupMember } from './groups/coordinator.js';
import type { OffsetStore } from './groups/offset-store.js';
import { fetchFailure, type Reads } from './reads.js';
import type { Frame, Session } from './session.js';
import type { Topic } from './topics/registry.js';
import type { Turn } from './turn.js';
import { badRequest, nonNegInt, partitionOf, type SubscribeOptions } from './validate.js';

export interface SubscriptionsConfig {
  /** Largest DATA answer a partition returns for one fetch. */
  maxFetchBytes: number;
  /** How long a subscription's fetch waits at the partition for new data. */
  longPollMs: number;
}

/** How a session is told of a failed request or subscription (BrokerCore.sendError). */
export type SendError = (session: Session, id: number | undefined, err: unknown, sub?: number) => void;

class Cursor {
  credits = 0;
  /** The log end the partition last reported: commits up to it need no question to the partition. */
  end = 0;
  /** The partition's id of the fetch in flight (0: none): one at a time, cancelled when the cursor stops. */
  fetchId = 0;
  active = true;
  retry: ReturnType<typeof setTimeout> | null = null;
  constructor(
    readonly partition: number,
    public next: number,
  ) {}
}

class Subscription implements GroupMember {
  readonly cursors = new Map<number, Cursor>();
  generation = 0;
  /** The last commit that had to ask a partition for its log end: later commits wait for it (in order). */
  checkingCommit: Promise<void> | null = null;
  /** Opened by the `subscribe` op, so counted in the session's subscriptions (a pattern's topics are not). */
  counted = false;
  constructor(
    readonly id: number,
    readonly session: Session,
    readonly topic: Topic,
    readonly group: string | undefined,
    readonly from: StartPosition,
    readonly credits: number,
    private readonly subscriptions: Subscriptions,
  ) {}
  get memberId(): string {
    return `${this.session.id}.${this.id}`;
  }
  revoke(generation: number): void {
    this.generation = generation;
    this.stopCursors();
    if (!this.session.closed) this.session.port.send({ op: 'revoke', sub: this.id, generation });
  }
  assign(generation: number, partitions: number[]): void {
    this.generation = generation;
    this.stopCursors();
    void this.subscriptions.startDelivery(this, generation, partitions);
  }
  stopCursors(): void {
    for (const c of this.cursors.values()) this.subscriptions.stopCursor(this, c);
    this.cursors.clear();
  }
}

export class Subscriptions {
  /** Each session's subscriptions, by id. */
  private readonly bySession = new Map<Session, Map<number, Subscription>>();
  private readonly unsubscribeListeners: Array<(session: Session, subId: number) => void> = [];
  private consumeQuota: ((session: Session, bytes: number) => number) | null = null;

  constructor(
    private readonly config: SubscriptionsConfig,
    private readonly groups: GroupCoordinator,
    private readonly offsets: OffsetStore,
    private readonly turn: Turn,
    private readonly reads: Reads,
    private readonly flow: FlowControl,
    private readonly sendError: SendError,
  ) {}

  /** The `subscribe` op for a topic (answers with the subscription's id, then `assign` frames follow). */
  subscribe(session: Session, id: number, topic: Topic, options: SubscribeOptions): void {
    session.admitSubscription();
    const subId = session.nextSub++;
    session.port.send({ op: 'result', id, sub: subId });
    this.start(session, subId, topic, options, true);
  }

  /**
   * For feature modules: subscribe `session` to `topic` as the `subscribe` op does, without
   * answering; returns the new subscription's id (its frames carry it).
   */
  subscribeTopic(session: Session, topic: Topic, options: SubscribeOptions): number {
    const subId = session.nextSub++;
    this.start(session, subId, topic, options);
    return subId;
  }

  /** The group of subscription `subId` of `session` (undefined: no such subscription, or none). */
  groupOf(session: Session, subId: unknown): string | undefined {
    return typeof subId === 'number' ? this.bySession.get(session)?.get(subId)?.group : undefined;
  }

  /** End subscription `subId` of `session` (false when it does not exist). */
  unsubscribeById(session: Session, subId: number): boolean {
    const sub = this.bySession.get(session)?.get(subId);
    if (!sub) return false;
    this.drop(sub);
    return true;
  }

  /** For feature modules: the client ended subscription `subId` with the `unsubscribe` op. */
  onUnsubscribed(listener: (session: Session, subId: number) => void): void {
    this.unsubscribeListeners.push(listener);
  }

  /** The `credit` op. */
  credit(session: Session, f: Frame): void {
    const sub = this.subOf(session, f);
    const partition = nonNegInt(f.partition, 'partition');
    const credits = nonNegInt(f.credits, 'credits');
    const c = sub.cursors.get(partition);
    if (!c) return; // not (or no longer) assigned here: the credit lapses with the assignment
    c.credits = Math.min(c.credits + credits, MAX_CREDITS); // clamped: see docs/protocol.md, Flow control
    this.pump(sub, c);
  }

  /** The `commit` op: offsets past a partition's log end are refused (OFFSET_OUT_OF_RANGE). */
  commit(session: Session, id: number, f: Frame): Promise<void> | void {
    const sub = this.subOf(session, f);
    const group = sub.group;
    if (group === undefined) throw badRequest('sub', 'commit needs a subscription with a group');
    if (!Array.isArray(f.offsets)) throw badRequest('offsets', '"offsets" must be an array of [partition, nextOffset]');
    const entries: Array<[number, number]> = [];
    for (const e of f.offsets as unknown[]) {
      if (!Array.isArray(e) || e.length !== 2) throw badRequest('offsets', 'each entry must be [partition, nextOffset]');
      const p = partitionOf(sub.topic, e[0]);
      entries.push([p, nonNegInt(e[1], 'offsets')]);
    }
    this.checkOwned(sub, group, entries);
    // Offsets up to the log end the partition last reported to this subscription are known to be
    // valid (the usual commit: what was delivered); anything past it is checked with the partition.
    let known = true;
    for (const [p, o] of entries) if (o > (sub.cursors.get(p)?.end ?? 0)) known = false;
    if (known && sub.checkingCommit === null) {
      this.offsets.commit(group, sub.topic.name, entries);
      session.port.send({ op: 'result', id });
      return;
    }
    const checked = (sub.checkingCommit ?? Promise.resolve()).catch(() => undefined).then(async () => {
      for (const [p, o] of entries) {
        if (o <= (sub.cursors.get(p)?.end ?? 0)) continue;
        const { start, end } = await this.reads.logRange(sub.topic, p);
        if (o > end) {
          throw new WeirError(ErrorCode.OFFSET_OUT_OF_RANGE, `cannot commit offset ${o} of ${sub.topic.name}/${p}: the log ends at ${end}`, { details: { partition: p, offset: o, start, end } });
        }
      }
      if (this.bySession.get(session)?.get(sub.id) !== sub) throw new WeirError(ErrorCode.UNKNOWN_SUBSCRIPTION, `no subscription ${sub.id} on this connection`, { details: { sub: sub.id } });
      this.checkOwned(sub, group, entries); // the group may have rebalanced meanwhile
      this.offsets.commit(group, sub.topic.name, entries);
      if (!session.closed) session.port.send({ op: 'result', id });
    });
    sub.checkingCommit = checked;
    const done = (): void => {
      if (sub.checkingCommit === checked) sub.checkingCommit = null;
    };
    checked.then(done, done);
    return checked;
  }

  /** The `revoked` op: the member let go of a revoked assignment. */
  revoked(session: Session, f: Frame): void {
    const sub = this.subOf(session, f);
    if (sub.group === undefined) return;
    const generation = nonNegInt(f.generation, 'generation');
    this.groups.revoked(sub.group, sub.topic.name, sub.memberId, generation);
  }

  /** The `unsubscribe` op. */
  unsubscribe(session: Session, id: number, f: Frame): void {
    const sub = this.subOf(session, f);
    this.drop(sub);
    for (const l of this.unsubscribeListeners) l(session, sub.id);
    session.port.send({ op: 'result', id });
  }

  /** The session is gone: its subscriptions end (their cursors stop, their groups rebalance). */
  sessionClosed(session: Session): void {
    if (session.deliveryHold !== null) clearTimeout(session.deliveryHold);
    session.deliveryHold = null;
    const subs = this.bySession.get(session);
    if (!subs) return;
    for (const sub of [...subs.values()]) this.drop(sub);
    this.bySession.delete(session);
  }

  /**
   * Charges the bytes delivered to a session (its principal's consume quota) and answers how long
   * to hold its deliveries back (0: not at all).
   */
  setConsumeQuota(charge: (session: Session, bytes: number) => number): void {
    this.consumeQuota = charge;
  }

  /** Hold every delivery of `session` for `ms`: standing fetches end, and the cursors are pumped again after. */
  private holdDeliveries(session: Session, ms: number): void {
    if (session.deliveryHold !== null) return;
    session.deliveryHold = setTimeout(() => {
      session.deliveryHold = null;
      if (!session.closed) this.pumpAll(session);
    }, ms);
    session.deliveryHold.unref();
  }

  /** The session's client took what was buffered: resume its deliveries if they were paused. */
  resume(session: Session): void {
    if (!session.deliveryPaused) return;
    session.deliveryPaused = false;
    this.pumpAll(session);
  }

  private pumpAll(session: Session): void {
    const subs = this.bySession.get(session);
    if (subs) for (const sub of subs.values()) for (const c of sub.cursors.values()) this.pump(sub, c);
  }

  /** Resolve where each partition starts, tell the client, and start pushing. */
  async startDelivery(sub: Subscription, generation: number, partitions: number[]): Promise<void> {
    const starts = await Promise.all(partitions.map((p) => this.startOffset(sub, p)));
    const session = sub.session;
    if (session.closed || sub.generation !== generation || this.bySession.get(session)?.get(sub.id) !== sub) return;
    const assigned: Array<[number, number]> = partitions.map((p, i) => [p, starts[i]!]);
    session.port.send({ op: 'assign', sub: sub.id, generation, partitions: assigned });
    for (const [p, offset] of assigned) {
      const c = new Cursor(p, offset);
      c.credits = sub.credits;
      sub.cursors.set(p, c);
      this.pump(sub, c);
    }
  }

  /** A cursor is done (unsubscribed, revoked, reassigned, session gone): no more fetches, and its standing one ends. */
  stopCursor(sub: Subscription, c: Cursor): void {
    c.active = false;
    if (c.retry) clearTimeout(c.retry);
    this.cancelFetch(sub, c);
  }

  private start(session: Session, subId: number, topic: Topic, { group, from, credits }: SubscribeOptions, counted = false): void {
    const sub = new Subscription(subId, session, topic, group, from, credits, this);
    sub.counted = counted;
    let subs = this.bySession.get(session);
    if (!subs) this.bySession.set(session, (subs = new Map()));
    subs.set(sub.id, sub);
    if (group !== undefined) this.groups.join(group, topic.name, topic.partitions, sub);
    else sub.assign(0, topic.actors.map((_, p) => p));
  }

  private drop(sub: Subscription): void {
    if (sub.counted) sub.session.releaseSubscription();
    sub.stopCursors();
    this.bySession.get(sub.session)?.delete(sub.id);
    if (sub.group !== undefined) this.groups.leave(sub.group, sub.topic.name, sub.memberId);
  }

  private subOf(session: Session, f: Frame): Subscription {
    const id = nonNegInt(f.sub, 'sub');
    const sub = this.bySession.get(session)?.get(id);
    if (!sub) throw new WeirError(ErrorCode.UNKNOWN_SUBSCRIPTION, `no subscription ${id} on this connection`, { details: { sub: id } });
    return sub;
  }

  private checkOwned(sub: Subscription, group: string, entries: Array<[number, number]>): void {
    for (const [p] of entries) {
      if (!this.groups.owns(group, sub.topic.name, sub.memberId, p)) {
        throw new WeirError(ErrorCode.NOT_ASSIGNED, `partition ${sub.topic.name}/${p} is not assigned to this member (rebalanced)`, { details: { partition: p } });
      }
    }
  }

  private async startOffset(sub: Subscription, partition: number): Promise<number> {
    if (sub.group !== undefined) {
      const committed = this.offsets.get(sub.group, sub.topic.name, partition);
      if (committed !== undefined) return committed;
    }
    const from = sub.from;
    let mode: FetchMode = FetchMode.LATEST;
    let position = 0;
    if (from === 'earliest') mode = FetchMode.EARLIEST;
    else if (typeof from === 'object' && 'offset' in from) return from.offset;
    else if (typeof from === 'object' && 'offsets' in from) {
      const o = from.offsets[String(partition)];
      if (o !== undefined) return o;
    } else if (typeof from === 'object' && 'timestamp' in from) {
      mode = FetchMode.TIMESTAMP;
      position = from.timestamp;
    }
    return this.reads.resolveOffset(sub.topic, partition, mode, position, () => sub.session.closed);
  }

  /** End the cursor's fetch in flight, if any (answers still on their way are dropped by the ref). */
  private cancelFetch(sub: Subscription, c: Cursor): void {
    if (c.fetchId === 0) return;
    const actor = sub.topic.actors[c.partition]!;
    actor.cancelFetch(c.fetchId);
    c.fetchId = 0;
    this.turn.markActor(actor);
  }

  /** A cursor stops because its session is over the bound: resumed (every cursor of the session) once it is not. */
  private pauseDelivery(sub: Subscription, c: Cursor): void {
    sub.session.deliveryPaused = true;
    if (channels.gatewayBackpressure.hasSubscribers) channels.gatewayBackpressure.publish({ conn: sub.session.id, sub: sub.id, partition: c.partition });
  }

  /** Issue the next fetch for a cursor if it has credit, no fetch in flight, and the session keeps up. */
  private pump(sub: Subscription, c: Cursor): void {
    const session = sub.session;
    if (!c.active || c.fetchId !== 0 || c.credits <= 0 || session.closed || session.deliveryHold !== null) return;
    if (this.flow.overBound(session)) {
      this.pauseDelivery(sub, c);
      return; // resumed when the client took what was buffered
    }
    const actor = sub.topic.actors[c.partition]!;
    // Standing: while this cursor keeps up, the partition pushes each commit to it until the
    // credit (or maxFetchBytes, or longPollMs) given here is spent; then the next pump asks again,
    // with the credit and the session's back-pressure as they are by then.
    const fetchId = actor.fetch(FetchMode.OFFSET, c.next, this.config.maxFetchBytes, c.credits, this.config.longPollMs, {
      data: (records, count, next, end, more) => {
        if (!more) c.fetchId = 0;
        if (!c.active) return;
        c.end = end;
        if (count > 0) {
          // Held for the consume quota: this answer is dropped (c.next stays) and read again after.
          if (session.deliveryHold !== null) {
            this.cancelFetch(sub, c);
            return;
          }
          // Checked before every push, not only when a fetch is issued: a standing fetch answers on
          // its own, and many answers can land in one turn, before the front door sends them.
          // Over the bound, this answer is dropped (c.next stays: it is read again on resume) and
          // the standing fetch ends, so the session holds at most one frame past the bound.
          if (this.flow.overBound(session)) {
            this.cancelFetch(sub, c);
            this.pauseDelivery(sub, c);
            return;
          }
          // time: expired records are skipped; only topics with a ttlMs or weir- records can have any.
          // A deliver is sent even when all of them expired (count 0): `next` lets the client
          // commit past them, or a group would re-read them forever. Credit counts delivered ones.
          const topic = sub.topic;
          if (topic.config.ttlMs !== null || topic.hasControlRecords) {
            const live = dropExpired(records, count, topic.config.ttlMs, Date.now());
            if (live !== null) {
              records = live.records;
              count = live.count;
            }
          }
          session.port.deliver(sub.id, topic.name, c.partition, count, next, records);
          c.next = next;
          c.credits -= count;
          if (this.consumeQuota !== null) {
            const holdMs = this.consumeQuota(session, records.length);
            if (holdMs > 0) {
              this.holdDeliveries(session, holdMs);
              if (more) this.cancelFetch(sub, c);
              return;
            }
          }
        }
        if (!more) this.pump(sub, c);
      },
      failed: (code, message, start, end) => {
        c.fetchId = 0;
        if (!c.active) return;
        if (code === ErrorCode.DATA_LOSS && end > c.next) {
          // Damaged on disk: tell the subscriber which offsets it will never get, in order with its
          // deliveries, and go on after them (the SDK reports it, and skips or stops as configured).
          this.sendError(session, undefined, fetchFailure(sub.topic, c.partition, code, message, start, end), sub.id);
          c.next = end;
          this.pump(sub, c);
          return;
        }
        if (code === ErrorCode.OFFSET_OUT_OF_RANGE && c.next < start) c.next = start; // retention deleted it: skip ahead
        else if (code === ErrorCode.OFFSET_OUT_OF_RANGE && c.next > end) {
          // A start (from, or a group's commit) past the log end: said once, then read from the end
          // (Kafka's auto.offset.reset=latest) rather than asking again forever.
          const details = { partition: c.partition, offset: c.next, start, end };
          this.sendError(session, undefined, new WeirError(ErrorCode.OFFSET_OUT_OF_RANGE, `offset ${c.next} of ${sub.topic.name}/${c.partition} is past the log end ${end}; delivery starts at the end`, { details }), sub.id);
          c.next = end;
          c.end = end;
          this.pump(sub, c);
          return;
        }
        this.retryLater(sub, c);
      },
    }, true);
    if (fetchId === 0) {
      this.retryLater(sub, c);
      return;
    }
    c.fetchId = fetchId;
    this.turn.markActor(actor);
  }

  private retryLater(sub: Subscription, c: Cursor): void {
    if (c.retry) return;
    c.retry = setTimeout(() => {
      c.retry = null;
      this.pump(sub, c);
    }, 100);
  }
}
