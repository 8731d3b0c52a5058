/**
 * Work queues on the gateway's main thread (the shell around ShareWindow): queue groups and their
 * consumers, reading the log ahead per partition, fair dispatch under each consumer's prefetch,
 * acks/nacks in offset ranges, visibility timeouts and retries (one sweep timer for everything),
 * dead letters and redrive, and the journal that makes it all survive a restart.
 *
 * Protocol (docs/protocol.md, "Queues"): `queue_subscribe`, `ack`, `nack`, `queue_unsubscribe`,
 * `dlq_redrive`; deliveries are `deliver` frames with a `deliveries` byte string (u16 LE per record)
 * when some record was delivered before. Queue subscription ids start at QUEUE_SUB_BASE so they never
 * collide with the gateway's own (per-connection, from 1). The ops are registered by installQueues
 * (feature.ts).
 */
import { join } from 'node:path';
import { WeirError, badRequest, lostRange } from '../../common/errors.js';
import { BatchBuilder } from '../../protocol/batch-builder.js';
import { ErrorCode } from '../../protocol/codes.js';
import { Header, findHeader, hasControlHeaders, headerInteger, headerText, recordExpiresAt } from '../../protocol/headers.js';
import { readU32 } from '../../protocol/record.js';
import type { Feature, FeatureContext, FeatureHost, Frame, Session } from '../../core/feature-host.js';
import type { Topic } from '../../core/topics/registry.js';
import { groupNameOf, topicOf } from '../../core/validate.js';
import { addDeadLetter, addRedriven, retryDelay, type DeadLetterReason } from './dead-letter.js';
import { QueueJournal, type JournalEntry } from './journal.js';
import { ShareWindow } from './window.js';

export const QUEUE_SUB_BASE = 0x40000000;
export const DEFAULT_PREFETCH = 100;
const MAX_PREFETCH = 10_000;
const SWEEP_MS = 20;
const LONG_POLL_MS = 1_000;
const RETRY_READ_MS = 100;
/** Records read per partition beyond what consumers hold; more waits in the log. */
const MIN_READ_AHEAD = 1_000;
const MAX_LOADED_BYTES = 64 << 20;
const MAX_PER_DELIVERY = 1_000;

interface PartitionWindow {
  readonly id: number;
  readonly partition: number;
  window: ShareWindow;
  reading: boolean;
  retryTimer: ReturnType<typeof setTimeout> | null;
}

interface QueueConsumer {
  readonly id: number;
  readonly sub: number;
  readonly conn: Session;
  readonly group: QueueGroup;
  readonly prefetch: number;
  /** Messages delivered and not yet acked/nacked/timed out. */
  held: number;
}

class QueueGroup {
  readonly windows: Array<PartitionWindow | undefined> = [];
  readonly initializing = new Set<number>();
  consumers: QueueConsumer[] = [];
  nextWindow = 0;
  nextConsumer = 0;
  constructor(
    readonly name: string,
    readonly topicName: string,
  ) {}
}


export class QueueService implements Feature {
  readonly name = 'queues';
  private readonly host: FeatureHost;
  private readonly groups = new Map<string, QueueGroup>();
  private readonly windowsById = new Map<number, { group: QueueGroup; pw: PartitionWindow }>();
  private readonly consumers = new Map<number, QueueConsumer>();
  /** Redrive cursors: `${topic}\0${partition}` → next dead-letter offset to redrive. */
  private readonly cursors = new Map<string, number>();
  private readonly redriving = new Map<string, Promise<unknown>>();
  private readonly dirty = new Set<QueueGroup>();
  private dispatchScheduled = false;
  private nextWindowId = 1;
  private nextConsumerId = 1;
  private closed = false;
  /** Messages skipped because their offsets were lost to damage on disk (DATA_LOSS). */
  lostToDamage = 0;
  private readonly journal: QueueJournal;
  /** Started with the first queue group: a broker without queues has no timer. */
  private sweepTimer: ReturnType<typeof setInterval> | null = null;
  /** Dead-letter appends waiting to be tried again; cleared on close. */
  private readonly deadLetterTimers = new Set<ReturnType<typeof setTimeout>>();

  /** Replays the journal; the ops are registered by installQueues (feature.ts). */
  constructor(ctx: FeatureContext) {
    this.host = ctx.host;
    const dir = join(ctx.dataDir, 'queues');
    this.replay(QueueJournal.read(dir));
    this.journal = new QueueJournal(dir, ctx.fsync, () => this.snapshotLines());
  }

  /** The session is gone: its consumers leave their groups (what they held is delivered again). */
  connectionClosed(conn: Session): void {
    for (const c of [...this.consumers.values()]) if (c.conn === conn) this.removeConsumer(c);
  }

  close(): void {
    this.closed = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    for (const { pw } of this.windowsById.values()) if (pw.retryTimer) clearTimeout(pw.retryTimer);
    for (const t of this.deadLetterTimers) clearTimeout(t);
    this.deadLetterTimers.clear();
    this.journal.close();
  }

  // ------------------------------------------------------------------ state rebuild

  private replay(entries: JournalEntry[]): void {
    for (const e of entries) {
      if (typeof e.rd === 'string' && typeof e.p === 'number' && typeof e.o === 'number') {
        this.cursors.set(`${e.rd}\0${e.p}`, e.o);
        continue;
      }
      if (typeof e.w !== 'number') continue;
      if (typeof e.g === 'string' && typeof e.t === 'string' && typeof e.p === 'number' && typeof e.s === 'number') {
        const group = this.groupOf(e.g, e.t);
        const pw: PartitionWindow = { id: e.w, partition: e.p, window: new ShareWindow(e.s), reading: false, retryTimer: null };
        group.windows[e.p] = pw;
        this.windowsById.set(e.w, { group, pw });
        if (e.w >= this.nextWindowId) this.nextWindowId = e.w + 1;
        continue;
      }
      const found = this.windowsById.get(e.w);
      if (!found) continue;
      const pw = found.pw;
      if (e.snap === 1 && typeof e.s === 'number') {
        const w = new ShareWindow(e.s);
        pairs(e.d, (a, b) => w.restoreDone(a, b));
        pairs(e.c, (o, n) => w.restoreCount(o, n));
        pairs(e.r, (o, due) => w.restoreRetry(o, due));
        pw.window = w;
        continue;
      }
      pairs(e.v, (a, b) => pw.window.restoreDelivered(a, b));
      pairs(e.u, (a, b) => pw.window.restoreUndelivered(a, b));
      pairs(e.r, (o, due) => pw.window.restoreRetry(o, due));
      pairs(e.d, (a, b) => pw.window.restoreDone(a, b));
    }
  }

  private snapshotLines(): string[] {
    const lines: string[] = [];
    for (const [id, { group, pw }] of this.windowsById) {
      const s = pw.window.snapshot();
      lines.push(JSON.stringify({ w: id, g: group.name, t: group.topicName, p: pw.partition, s: s.start }));
      lines.push(JSON.stringify({ w: id, snap: 1, s: s.start, d: s.done, c: s.counts, r: s.retries }));
    }
    for (const [key, o] of this.cursors) {
      const [rd, p] = key.split('\0');
      lines.push(JSON.stringify({ rd, p: Number(p), o }));
    }
    return lines;
  }

  private groupOf(name: string, topic: string): QueueGroup {
    const key = `${name}\0${topic}`;
    let g = this.groups.get(key);
    if (!g) {
      g = new QueueGroup(name, topic);
      this.groups.set(key, g);
      if (!this.sweepTimer) {
        this.sweepTimer = setInterval(() => this.sweep(), SWEEP_MS);
        this.sweepTimer.unref();
      }
    }
    return g;
  }

  // ------------------------------------------------------------------ requests

  private consumerOf(conn: Session, f: Frame): QueueConsumer {
    const sub = f.sub;
    const c = typeof sub === 'number' ? this.consumers.get(sub) : undefined;
    if (!c || c.conn !== conn) {
      throw new WeirError(ErrorCode.UNKNOWN_SUBSCRIPTION, `no queue subscription ${String(sub)} on this connection`, { details: { sub } });
    }
    return c;
  }

  /** The topic of queue subscription `sub` of `conn` (undefined: it holds no such subscription). */
  topicOf(conn: Session, sub: unknown): string | undefined {
    const c = typeof sub === 'number' ? this.consumers.get(sub) : undefined;
    return c !== undefined && c.conn === conn ? c.group.topicName : undefined;
  }

  /** The `queue_subscribe` op: join (or start) a queue group; answers {sub}, deliveries follow. */
  subscribe(conn: Session, id: number, f: Frame): void {
    const topic = topicOf(this.host.topics, f);
    const groupName = groupNameOf(f.group);
    const prefetch = f.prefetch === undefined ? DEFAULT_PREFETCH : f.prefetch;
    if (typeof prefetch !== 'number' || !Number.isInteger(prefetch) || prefetch < 1 || prefetch > MAX_PREFETCH) {
      throw badRequest('prefetch', `"prefetch" must be an integer from 1 to ${MAX_PREFETCH}`);
    }
    const from = f.from === undefined ? 'earliest' : f.from;
    if (from !== 'earliest' && from !== 'latest') throw badRequest('from', 'queue mode starts a new group at "earliest" (default) or "latest"');
    if (this.closed) throw new WeirError(ErrorCode.SHUTTING_DOWN, 'broker is stopping', { retryable: true });
    conn.admitSubscription();
    const group = this.groupOf(groupName, topic.name);
    const cid = this.nextConsumerId++;
    const consumer: QueueConsumer = { id: cid, sub: QUEUE_SUB_BASE + cid, conn, group, prefetch, held: 0 };
    this.consumers.set(consumer.sub, consumer);
    group.consumers.push(consumer);
    this.host.send(conn, { op: 'result', id, sub: consumer.sub });
    for (let p = 0; p < topic.partitions; p++) {
      const pw = group.windows[p];
      if (pw) this.pumpRead(group, pw);
      else this.initWindow(group, topic, p, from).catch((err: unknown) => console.error(`weir queues: starting ${group.name} on ${topic.name}/${p} failed:`, err));
    }
    this.markDirty(group);
  }

  private async initWindow(group: QueueGroup, topic: Topic, p: number, from: 'earliest' | 'latest'): Promise<void> {
    if (group.initializing.has(p)) return;
    group.initializing.add(p);
    try {
      const { start, end } = await topic.actors[p]!.describe();
      if (this.closed || group.windows[p]) return;
      const first = from === 'earliest' ? start : end;
      const pw: PartitionWindow = { id: this.nextWindowId++, partition: p, window: new ShareWindow(first), reading: false, retryTimer: null };
      group.windows[p] = pw;
      this.windowsById.set(pw.id, { group, pw });
      this.journal.line({ w: pw.id, g: group.name, t: group.topicName, p, s: first });
      this.pumpRead(group, pw);
    } finally {
      group.initializing.delete(p);
    }
  }

  private ranges(f: Frame): number[] {
    const r = f.ranges;
    if (!Array.isArray(r) || r.length % 2 !== 0) throw badRequest('ranges', '"ranges" must be a flat array of [from, to) offset pairs');
    // Ascending and disjoint (as the SDK sends them): applying a frame then costs at most one pass
    // over the window, not (number of ranges × window) for overlapping ones.
    let previousEnd = 0;
    for (let i = 0; i < r.length; i += 2) {
      const from: unknown = r[i];
      const to: unknown = r[i + 1];
      if (typeof from !== 'number' || typeof to !== 'number' || !Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < previousEnd || to <= from) {
        throw badRequest('ranges', '"ranges" must be ascending, disjoint [from, to) pairs of non-negative integer offsets');
      }
      previousEnd = to;
    }
    return r as number[];
  }

  private partitionWindow(c: QueueConsumer, f: Frame): PartitionWindow | undefined {
    const p = f.partition;
    if (typeof p !== 'number' || !Number.isInteger(p) || p < 0) throw badRequest('partition', '"partition" must be a non-negative integer');
    return c.group.windows[p];
  }

  /** The `ack` op: offset ranges done; answered {count} (when it has an id) once durable. */
  ack(conn: Session, id: number | undefined, f: Frame): void {
    const c = this.consumerOf(conn, f);
    const pw = this.partitionWindow(c, f);
    const ranges = this.ranges(f);
    let n = 0;
    if (pw) {
      const applied: number[] = [];
      for (let i = 0; i < ranges.length; i += 2) n += pw.window.ack(c.id, ranges[i]!, ranges[i + 1]!, applied);
      for (let i = 0; i < applied.length; i += 2) this.journal.done(pw.id, applied[i]!, applied[i + 1]!);
      c.held -= n;
      // Refill at once (not on the next turn): the consumer's pipeline is only `prefetch` deep.
      if (n > 0) this.dispatch(c.group);
    }
    if (id !== undefined) this.answerWhenDurable(conn, id, n);
  }

  /** An ack/nack answer means its journal line is durable when the policy says `always`. */
  private answerWhenDurable(conn: Session, id: number, count: number): void {
    this.journal.whenDurable((err) => {
      if (err) this.host.sendError(conn, id, err);
      else this.host.send(conn, { op: 'result', id, count });
    });
  }

  /** The `nack` op: offset ranges to retry later, or (`fatal`) to dead-letter now. */
  nack(conn: Session, id: number | undefined, f: Frame): void {
    const c = this.consumerOf(conn, f);
    const pw = this.partitionWindow(c, f);
    const ranges = this.ranges(f);
    if (f.action !== 'retry' && f.action !== 'fatal') throw badRequest('action', '"action" must be "retry" or "fatal"');
    const fatal = f.action === 'fatal';
    const reason = typeof f.reason === 'string' ? f.reason : undefined;
    let n = 0;
    const topic = this.host.topics.get(c.group.topicName);
    if (pw && topic) {
      const cfg = topic.config;
      const dead: number[] = [];
      const retried: number[] = [];
      const now = Date.now();
      const delayOf = (deliveries: number): number => retryDelay(cfg.retryBackoff, deliveries, Math.random());
      for (let i = 0; i < ranges.length; i += 2) {
        n += pw.window.nack(c.id, ranges[i]!, ranges[i + 1]!, fatal, now, cfg.maxDeliveries, delayOf, dead, retried);
      }
      for (let i = 0; i < retried.length; i += 2) this.journal.retry(pw.id, retried[i]!, retried[i + 1]!);
      c.held -= n;
      if (dead.length > 0) {
        // fatal: rejected by the consumer; retry after the last allowed delivery: exhausted.
        this.deadLetter(c.group, topic, pw, dead, fatal ? 'rejected' : 'max-deliveries', reason);
      }
      if (n > 0) this.markDirty(c.group);
    }
    if (id !== undefined) this.answerWhenDurable(conn, id, n);
  }

  /** The `queue_unsubscribe` op. */
  unsubscribe(conn: Session, id: number, f: Frame): void {
    const c = this.consumerOf(conn, f);
    // Graceful: the SDK settled everything it handled, so what it still holds was never handled.
    this.removeConsumer(c, true);
    this.host.send(conn, { op: 'result', id });
  }

  private removeConsumer(c: QueueConsumer, unhandled = false): void {
    if (!this.consumers.delete(c.sub)) return;
    c.conn.releaseSubscription();
    const g = c.group;
    g.consumers = g.consumers.filter((x) => x !== c);
    const topic = this.host.topics.get(g.topicName);
    if (!topic) return;
    for (const pw of g.windows) {
      if (!pw) continue;
      const exhausted: number[] = [];
      const undone: number[] = [];
      pw.window.releaseOwner(c.id, topic.config.maxDeliveries, exhausted, unhandled, undone);
      for (const o of undone) this.journal.undelivered(pw.id, o, o + 1);
      if (exhausted.length > 0) this.deadLetter(g, topic, pw, exhausted, 'max-deliveries');
      // The last consumer left: an idle group must not keep up to MAX_LOADED_BYTES per partition.
      if (g.consumers.length === 0) pw.window.unload();
    }
    this.markDirty(g);
  }

  // ------------------------------------------------------------------ reading and dispatch

  private pumpRead(g: QueueGroup, pw: PartitionWindow): void {
    if (this.closed || pw.reading || pw.retryTimer || g.consumers.length === 0) return;
    const topic = this.host.topics.get(g.topicName);
    if (!topic) return;
    const w = pw.window;
    const room = w.room();
    let prefetch = 0;
    for (const c of g.consumers) prefetch += c.prefetch;
    if (room === 0 || w.availableLoaded >= Math.max(MIN_READ_AHEAD, 2 * prefetch) || w.loadedBytes > MAX_LOADED_BYTES) return;
    pw.reading = true;
    const offset = w.readNext;
    this.host
      .readView(topic, pw.partition, offset, { maxRecords: Math.min(room, 10_000), maxWaitMs: LONG_POLL_MS }, (records, count, next) => {
        // Stale (the window was unloaded while this read was out): dropped; read again from where it is now.
        if (this.closed || w !== pw.window || w.readNext !== offset || next <= offset) return;
        w.load(records, count, next); // copies: `records` is a view of the partition's ring
        this.markDirty(g);
      })
      .then(() => {
        pw.reading = false;
        if (!this.closed) this.pumpRead(g, pw);
      })
      .catch((err: unknown) => {
        pw.reading = false;
        if (this.closed) return;
        const details = WeirError.isWeirError(err) ? err.details : undefined;
        const start = details?.start;
        const lost = lostRange(err);
        if (WeirError.isWeirError(err) && err.code === ErrorCode.OFFSET_OUT_OF_RANGE && typeof start === 'number' && start > w.readNext) {
          // Retention removed them before this group got to them.
          const [from, to] = w.skipTo(start);
          if (to > from) this.journal.done(pw.id, from, to);
        } else if (lost !== null && lost.to > w.readNext && w === pw.window) {
          // Damaged on disk (reported by the partition's log): those messages can never be delivered.
          const [from, to] = w.skipTo(lost.to);
          if (to > from) this.journal.done(pw.id, from, to);
          this.lostToDamage += to - from;
          pw.reading = false;
          this.pumpRead(g, pw);
          return;
        }
        // Partition restarting: try again shortly (the window's state lives here, nothing is lost).
        pw.retryTimer = setTimeout(() => {
          pw.retryTimer = null;
          this.pumpRead(g, pw);
        }, RETRY_READ_MS);
      });
  }

  private markDirty(g: QueueGroup): void {
    this.dirty.add(g);
    if (this.dispatchScheduled) return;
    this.dispatchScheduled = true;
    setImmediate(() => {
      this.dispatchScheduled = false;
      const groups = [...this.dirty];
      this.dirty.clear();
      for (const group of groups) this.dispatch(group);
    });
  }

  /** The next consumer (round-robin) with room under its prefetch, or undefined. */
  private nextConsumer(g: QueueGroup): QueueConsumer | undefined {
    const n = g.consumers.length;
    for (let k = 0; k < n; k++) {
      const c = g.consumers[(g.nextConsumer + k) % n]!;
      if (c.held < c.prefetch) {
        g.nextConsumer = (g.nextConsumer + k + 1) % n;
        return c;
      }
    }
    return undefined;
  }

  private dispatch(g: QueueGroup): void {
    if (this.closed) return;
    const topic = this.host.topics.get(g.topicName);
    if (!topic || g.consumers.length === 0) return;
    const cfg = topic.config;
    const now = Date.now();
    const ttl = cfg.ttlMs;
    const expiresAt = (b: Uint8Array, at: number): number => recordExpiresAt(b, at, ttl);
    const groupName = g.name;
    // A redriven dead letter keeps weir-dlq-group: only that group gets it again.
    const foreign = (b: Uint8Array, at: number): boolean => {
      if (!hasControlHeaders(b, at)) return false;
      const owner = headerText(b, at, Header.DLQ_GROUP);
      return owner !== null && owner !== groupName && findHeader(b, at, Header.DLQ_TOPIC) === null;
    };
    const n = g.windows.length;
    let full = false;
    for (let k = 0; k < n && !full; k++) {
      const pw = g.windows[(g.nextWindow + k) % n];
      if (!pw) continue;
      const w = pw.window;
      while (w.availableLoaded > 0) {
        const c = this.nextConsumer(g);
        if (!c) {
          full = true;
          break;
        }
        // A consumer with room gets as much of this window as fits, in one frame: splitting each
        // window's messages over every consumer made many more (small) deliver frames, and per
        // frame costs dominate at prefetch 100. Fairness comes from rotating consumers and windows.
        const r = w.take(c.id, Math.min(c.prefetch - c.held, MAX_PER_DELIVERY), now, cfg.visibilityTimeoutMs, cfg.maxDeliveries, cfg.orderedKeys, expiresAt, foreign);
        for (const o of r.skipped) this.journal.done(pw.id, o, o + 1);
        if (r.expired.length > 0) {
          if (cfg.deadLetterExpired) this.deadLetter(g, topic, pw, r.expired, 'expired');
          else for (const o of r.expired) this.finish(pw, o);
        }
        if (r.exhausted.length > 0) this.deadLetter(g, topic, pw, r.exhausted, 'max-deliveries');
        if (r.offsets.length > 0) this.deliver(c, topic, pw, r.offsets);
        else if (r.expired.length + r.exhausted.length + r.skipped.length === 0) break; // the rest waits for its key
      }
    }
    g.nextWindow = n > 0 ? (g.nextWindow + 1) % n : 0;
    for (const pw of g.windows) if (pw) this.pumpRead(g, pw);
  }

  private deliver(c: QueueConsumer, topic: Topic, pw: PartitionWindow, offsets: number[]): void {
    const w = pw.window;
    const count = offsets.length;
    const records = w.batchOf(offsets);
    const frame: Frame = { op: 'deliver', sub: c.sub, topic: topic.name, partition: pw.partition, records, count, next: offsets[count - 1]! + 1 };
    let redelivered = false;
    for (const o of offsets) if (w.deliveries(o) > 1) redelivered = true;
    if (redelivered) {
      const d = new Uint8Array(count * 2);
      for (let i = 0; i < count; i++) {
        const v = w.deliveries(offsets[i]!);
        d[2 * i] = v & 0xff;
        d[2 * i + 1] = v >>> 8;
      }
      frame.deliveries = d;
    }
    let runStart = offsets[0]!;
    for (let i = 1; i <= count; i++) {
      if (i === count || offsets[i] !== offsets[i - 1]! + 1) {
        this.journal.delivered(pw.id, runStart, offsets[i - 1]! + 1);
        if (i < count) runStart = offsets[i]!;
      }
    }
    c.held += count;
    this.host.sendNow(c.conn, frame);
  }

  private finish(pw: PartitionWindow, o: number): void {
    pw.window.finish(o);
    this.journal.done(pw.id, o, o + 1);
  }

  /** Visibility timeouts and due retries of every window, once per SWEEP_MS. */
  private sweep(): void {
    if (this.closed) return;
    const now = Date.now();
    for (const g of this.groups.values()) {
      const topic = this.host.topics.get(g.topicName);
      if (!topic) continue;
      for (const pw of g.windows) {
        if (!pw) continue;
        const timedOut: number[] = [];
        const exhausted: number[] = [];
        const made = pw.window.expire(now, topic.config.maxDeliveries, timedOut, exhausted);
        for (let i = 1; i < timedOut.length; i += 2) {
          const owner = this.consumers.get(QUEUE_SUB_BASE + timedOut[i]!);
          if (owner) owner.held--;
        }
        if (exhausted.length > 0) this.deadLetter(g, topic, pw, exhausted, 'max-deliveries');
        if (made > 0 || exhausted.length > 0) this.markDirty(g);
      }
    }
  }

  // ------------------------------------------------------------------ dead letters

  /** Move DEAD_LETTERING offsets to the topic's dead-letter topic (or drop them), then mark them done. */
  private deadLetter(g: QueueGroup, topic: Topic, pw: PartitionWindow, offsets: number[], reason: DeadLetterReason, reasonText?: string): void {
    const target = topic.config.deadLetterTopic;
    if (target === null) {
      for (const o of offsets) this.finish(pw, o);
      return;
    }
    const w = pw.window;
    const batch = new BatchBuilder();
    const time = Date.now();
    for (const o of offsets) {
      const [b, at] = w.record(o);
      addDeadLetter(batch, b, at, { topic: topic.name, partition: pw.partition, offset: o, group: g.name, deliveries: w.deliveries(o), reason, reasonText, time });
    }
    const records = batch.take();
    const attempt = (): void => {
      if (this.closed) return;
      this.host
        .ensureTopic(target, topic.partitions)
        .then((dlq) => this.host.append(dlq, records, pw.partition % dlq.partitions))
        .then(() => {
          if (this.closed || w !== pw.window) return;
          for (const o of offsets) this.finish(pw, o);
          this.markDirty(g);
        })
        .catch((err: unknown) => {
          // Not appended (partition restarting, disk full…): the messages stay in the window; retry.
          if (!this.closed) console.error(`weir queues: dead-lettering to ${target} failed, retrying:`, (err as Error).message);
          const timer = setTimeout(() => {
            this.deadLetterTimers.delete(timer);
            attempt();
          }, 500);
          this.deadLetterTimers.add(timer);
        });
    };
    attempt();
  }

  /** The `dlq_redrive` op: move the dead letters of `topic` (not yet redriven) back to it. Answers {moved}. */
  async redrive(conn: Session, id: number, f: Frame): Promise<void> {
    const topic = topicOf(this.host.topics, f);
    const dlqName = topic.config.deadLetterTopic;
    if (dlqName === null) throw badRequest('topic', `topic ${topic.name} has no dead-letter topic (config.deadLetterTopic is null)`);
    const previous = this.redriving.get(topic.name) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(() => this.redriveAll(topic, dlqName));
    this.redriving.set(topic.name, run);
    const moved = await run;
    this.host.send(conn, { op: 'result', id, topic: topic.name, deadLetterTopic: dlqName, moved });
  }

  private async redriveAll(topic: Topic, dlqName: string): Promise<number> {
    const dlq = this.host.topics.get(dlqName);
    if (!dlq) return 0;
    let moved = 0;
    for (let p = 0; p < dlq.partitions; p++) {
      const key = `${topic.name}\0${p}`;
      const { start, end } = await dlq.actors[p]!.describe();
      let from = Math.max(this.cursors.get(key) ?? 0, start);
      while (from < end) {
        let r;
        try {
          r = await this.host.read(dlq, p, from, { maxRecords: Math.min(1000, end - from) });
        } catch (err) {
          const lost = lostRange(err);
          if (lost === null) throw err;
          from = lost.to; // dead letters damaged on disk: lost (reported by the log)
          this.cursors.set(key, from);
          continue;
        }
        if (r.count === 0) break;
        const byPartition = new Map<number, BatchBuilder>();
        for (let at = 0; at + 4 <= r.records.length; at += 4 + readU32(r.records, at)) {
          const source = headerText(r.records, at, Header.DLQ_TOPIC);
          if (source !== null && source !== topic.name) continue; // another topic's letter in a shared dead-letter topic
          const sp = headerInteger(r.records, at, Header.DLQ_PARTITION);
          const target = sp !== null && sp === sp && sp < topic.partitions ? sp : -1;
          let batch = byPartition.get(target);
          if (!batch) byPartition.set(target, (batch = new BatchBuilder()));
          addRedriven(batch, r.records, at);
          moved++;
        }
        for (const [target, batch] of byPartition) {
          await this.host.append(topic, batch.take(), target < 0 ? undefined : target);
        }
        from = r.next;
        this.cursors.set(key, from);
        this.journal.line({ rd: topic.name, p, o: from });
      }
    }
    return moved;
  }
}

function pairs(v: unknown, f: (a: number, b: number) => void): void {
  if (!Array.isArray(v)) return;
  for (let i = 0; i + 1 < v.length; i += 2) {
    const a = v[i];
    const b = v[i + 1];
    if (typeof a === 'number' && typeof b === 'number') f(a, b);
  }
}

