/**
 * A wildcard subscription (`orders.*.paid`, `logs.#`): the broker opens one ordinary subscription
 * per matching topic (now, and whenever a matching topic is created) and announces each with a
 * `matched` push; this object holds one `Subscription` per topic, all calling the same handler
 * (`message.topic` says which). With a group, it is one member of the group for every topic.
 *
 * After a reconnect it subscribes again; the broker announces the topics anew and each topic's
 * Subscription is rebound to its new id (a group resumes from its committed offsets).
 */
import { ErrorCode } from '../protocol/codes.js';
import { isMatchedFrame, type MatchedFrame, type PatternSubscribeResult, type StartPosition } from '../protocol/frames.js';
import { asClientError, type Connection } from './connection.js';
import { Emitter } from './emitter.js';
import { WeirClientError, badResponse } from './errors.js';
import { Subscription, creditsOf } from './subscription.js';
import type { MessageHandler, SubscribeOptions } from './types.js';

export interface PatternSubscriptionEvents extends Record<string, unknown> {
  error: WeirClientError;
  /** A topic (existing or newly created) now matches and is being consumed. */
  topic: { topic: string; subscription: Subscription };
}

export class PatternSubscription extends Emitter<PatternSubscriptionEvents> {
  readonly pattern: string;
  readonly group: string | undefined;
  private id: number | null = null;
  private state: 'subscribing' | 'active' | 'closing' | 'closed' = 'subscribing';
  private readonly children = new Map<string, Subscription>();
  /** Topics whose subscription ended while this one went on: not consumed again, even after a reconnect. */
  private readonly excluded = new Set<string>();
  private closing: Promise<void> | null = null;
  private readonly unlisten: Array<() => void> = [];

  private constructor(
    private readonly conn: Connection,
    pattern: string,
    private readonly opts: SubscribeOptions,
    private readonly handler: MessageHandler,
    private readonly onClosed: (sub: PatternSubscription) => void,
  ) {
    super();
    this.pattern = pattern;
    this.group = opts.group;
    this.unlisten.push(
      conn.onPush('matched', (f) => {
        if (isMatchedFrame(f)) this.onMatched(f);
      }),
      conn.on('disconnect', () => this.onDisconnect()),
      conn.on('reconnect', () => void this.onReconnect()),
    );
  }

  static async start(conn: Connection, pattern: string, opts: SubscribeOptions, handler: MessageHandler, onClosed: (sub: PatternSubscription) => void): Promise<PatternSubscription> {
    creditsOf(opts); // refused here, not when the first topic's subscription is attached
    const sub = new PatternSubscription(conn, pattern, opts, handler, onClosed);
    try {
      await sub.subscribe(opts.from);
    } catch (err) {
      sub.stopListening();
      throw err;
    }
    sub.state = 'active';
    return sub;
  }

  /** Topics this subscription consumes now, sorted. */
  topics(): string[] {
    return [...this.children.keys()].sort();
  }

  /** The per-topic subscription, e.g. for its assignment or stats. */
  subscription(topic: string): Subscription | undefined {
    return this.children.get(topic);
  }

  /** Stop every topic's subscription (waiting for handlers, committing for a group), then the pattern. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  /** Stop at once (the connection is going away). */
  destroy(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    for (const c of this.children.values()) c.destroy();
    this.stopListening();
    this.onClosed(this);
  }

  private async subscribe(from: StartPosition | undefined, resume?: Record<string, Record<string, number>>): Promise<void> {
    await this.conn.request<PatternSubscribeResult>(
      { op: 'subscribe', pattern: this.pattern, group: this.group, from, credits: this.opts.credits ?? 1000, resume, exclude: this.excluded.size > 0 ? [...this.excluded] : undefined },
      {
        // Synchronous: the `matched` pushes follow the result in the same read.
        onResult: (r) => {
          if (typeof r.patternSub !== 'number') throw badResponse('pattern subscribe result has no "patternSub" id');
          this.id = r.patternSub;
        },
      },
    );
  }

  private onMatched(f: MatchedFrame): void {
    if (this.id === null || f.patternSub !== this.id) return;
    if (this.state === 'closing' || this.state === 'closed') return; // unsubscribe_pattern ends it on the broker
    const existing = this.children.get(f.topic);
    if (existing) {
      existing.rebind(f.sub);
      return;
    }
    const child = Subscription.attach(this.conn, f.topic, f.sub, this.opts, this.handler, (s) => {
      if (this.children.get(s.topic) !== s) return;
      this.children.delete(s.topic);
      // Closed on its own (not as part of closing the pattern): the broker stopped covering the
      // topic on `unsubscribe`; the resubscription after a reconnect must not bring it back.
      if (this.state === 'active' || this.state === 'subscribing') this.excluded.add(s.topic);
    });
    child.on('error', (e) => this.emit('error', e));
    this.children.set(f.topic, child);
    this.emit('topic', { topic: f.topic, subscription: child });
  }

  private onDisconnect(): void {
    if (this.state !== 'active') return;
    this.id = null;
    for (const c of this.children.values()) c.onDisconnect();
  }

  private async onReconnect(): Promise<void> {
    if (this.state !== 'active') return;
    try {
      // Without a group, each topic resumes where its handling stopped (a group has its commits).
      let resume: Record<string, Record<string, number>> | undefined;
      if (!this.group) {
        resume = {};
        for (const [topic, c] of this.children) resume[topic] = c.resumeOffsets();
      }
      await this.subscribe(this.opts.from, resume);
    } catch (err) {
      const e = asClientError(err, 'resubscribe');
      if (!e.retryable) {
        const error = new WeirClientError(e.code, `resubscribing to pattern ${this.pattern} failed: ${e.message}`, { retryable: false, details: e.details, cause: e });
        this.opts.onError?.(error);
        this.emit('error', error);
        this.destroy();
      }
    }
  }

  private async doClose(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closing';
    await Promise.all([...this.children.values()].map((c) => c.close()));
    const id = this.id;
    if (id !== null) {
      try {
        await this.conn.request({ op: 'unsubscribe_pattern', patternSub: id });
      } catch (err) {
        const e = asClientError(err, 'unsubscribe_pattern');
        if (e.code !== ErrorCode.CONNECTION_CLOSED && e.code !== ErrorCode.UNKNOWN_SUBSCRIPTION) this.emit('error', e);
      }
    }
    this.id = null;
    this.state = 'closed';
    this.stopListening();
    this.onClosed(this);
  }

  private stopListening(): void {
    for (const u of this.unlisten.splice(0)) u();
  }
}
