/**
 * The routing feature's shell (docs/routing.md): wildcard subscriptions, reply inboxes and the
 * `reply` push for request-reply, and replay (`reset_offsets`). Its state is bound to connections
 * (pattern subscriptions, inboxes) or lives in the group offset store (resets), so there is nothing
 * of its own to persist: a reconnecting client re-subscribes and re-claims its inbox.
 */
import { randomBytes } from 'node:crypto';
import { WeirError } from '../../common/errors.js';
import { ErrorCode } from '../../protocol/codes.js';
import type { ResetTarget } from '../../protocol/frames.js';
import { RecordIndex } from '../../protocol/record.js';
import { Header, hasControlHeaders, headerText } from '../../protocol/headers.js';
import { FetchMode } from '../../partition/protocol.js';
import type { Feature, FeatureContext, FeatureHost, Frame, Session } from '../../core/feature-host.js';
import { badRequest, groupNameOf, publicTopicOf, subscribeOptionsOf, type SubscribeOptions } from '../../core/validate.js';
import type { Topic } from '../../core/topics/registry.js';
import { InboxRegistry } from './inbox.js';
import { compilePattern, type TopicPattern } from '../../protocol/topic-pattern.js';
import { matchesDeadLetterTopic, matchesTopic, subscriptionPatternProblem } from './subscription-pattern.js';

/** Pattern subscriptions one connection may hold (each may open a subscription per topic). */
const MAX_PATTERNS_PER_CONNECTION = 64;
/** Records in one `reply` (a reply is a message or a few, not a stream). */
const MAX_REPLY_RECORDS = 1000;

interface PatternSubscription {
  readonly id: number;
  readonly conn: Session;
  readonly pattern: TopicPattern;
  readonly options: SubscribeOptions;
  /** Per topic: partition → offset to start from instead of `from` (a resubscription's positions). */
  readonly resume: Map<string, Record<string, number>>;
  /** Topic name → the ordinary subscription opened for it. */
  readonly children: Map<string, number>;
  /** Topics the client stopped (it unsubscribed their child, or `exclude`d them): never covered again. */
  readonly excluded: Set<string>;
}

export function installRouting({ host }: FeatureContext): Feature {
  const patterns = new Map<Session, Map<number, PatternSubscription>>();
  let nextPatternId = 1;
  const inboxes = new InboxRegistry<Session>(() => randomBytes(16).toString('base64url'));
  const replyIndex = new RecordIndex();
  let closed = false;

  /** Names some topic's config gives as its deadLetterTopic now (whether or not that topic exists yet). */
  const deadLetterTopics = (): ReadonlySet<string> => {
    const names = new Set<string>();
    for (const t of host.topics.all()) if (t.config.deadLetterTopic !== null) names.add(t.config.deadLetterTopic);
    return names;
  };

  /**
   * `created`: the topic did not exist when the subscription started, so all of it is new to it.
   * `deadLetters`: deadLetterTopics(), computed once per batch of cover calls.
   */
  const cover = (ps: PatternSubscription, topic: Topic, created: boolean, deadLetters: ReadonlySet<string>): void => {
    if (topic.internal || ps.conn.closed || ps.children.has(topic.name) || ps.excluded.has(topic.name)) return;
    if (!(deadLetters.has(topic.name) ? matchesDeadLetterTopic(ps.pattern, topic.name) : matchesTopic(ps.pattern, topic.name))) return;
    // Only what the session may read: checked per topic as it is covered, now or when created later.
    if (!host.may(ps.conn, 'consume', topic.name)) return;
    const resume = ps.resume.get(topic.name);
    // A topic created after the subscription started is read from its beginning: with 'latest',
    // messages produced right after the creation could land before the start offset is resolved.
    const options: SubscribeOptions = resume ? { ...ps.options, from: { offsets: resume } } : created ? { ...ps.options, from: 'earliest' } : ps.options;
    const sub = host.subscribeTopic(ps.conn, topic, options);
    ps.children.set(topic.name, sub);
    // Queued before the subscription's first `assign`, which needs at least one partition round trip.
    host.send(ps.conn, { op: 'matched', patternSub: ps.id, topic: topic.name, sub });
  };

  host.setPatternSubscribeHandler((conn, id, f) => {
    const problem = subscriptionPatternProblem(f.pattern);
    if (problem !== null) throw badRequest('pattern', problem);
    const options = subscribeOptionsOf(f);
    let mine = patterns.get(conn);
    if (!mine) patterns.set(conn, (mine = new Map()));
    if (mine.size >= MAX_PATTERNS_PER_CONNECTION) throw badRequest('pattern', `at most ${MAX_PATTERNS_PER_CONNECTION} pattern subscriptions per connection`);
    conn.admitSubscription();
    const ps: PatternSubscription = { id: nextPatternId++, conn, pattern: compilePattern(f.pattern as string), options, resume: resumeOf(f.resume), children: new Map(), excluded: excludeOf(f.exclude) };
    mine.set(ps.id, ps);
    host.send(conn, { op: 'result', id, patternSub: ps.id });
    const deadLetters = deadLetterTopics();
    for (const topic of [...host.topics.all()]) cover(ps, topic, false, deadLetters);
  });

  // A pattern subscription that started before a matching topic existed gets it too.
  host.topics.onCreated((topic) => {
    if (closed || topic.internal || patterns.size === 0) return;
    const deadLetters = deadLetterTopics();
    for (const mine of patterns.values()) for (const ps of mine.values()) cover(ps, topic, true, deadLetters);
  });

  // A request (a record with weir-reply-to) needs `request` on its topic, and its reply-to must be an
  // inbox of the requesting session: replies go only to the requester that asked for them.
  host.addControlGuard((session, topic, records, index) => {
    let requests = false;
    for (let i = 0; i < index.count; i++) {
      const at = index.start[i]!;
      if (!hasControlHeaders(records, at)) continue;
      const replyTo = headerText(records, at, Header.REPLY_TO);
      if (replyTo === null) continue;
      if (inboxes.owner(replyTo) !== session) {
        throw new WeirError(ErrorCode.FORBIDDEN, `record ${i}: weir-reply-to ${JSON.stringify(replyTo.slice(0, 80))} is not an inbox of this connection (claim one with the inbox op)`, {
          details: { action: 'request', resource: `inbox:${replyTo.slice(0, 80)}`, record: i },
        });
      }
      requests = true;
    }
    if (requests) host.check(session, 'request', topic.name);
  });

  host.registerOp({
    op: 'unsubscribe_pattern', requestId: 'optional', whenStopping: 'serve', access: 'session',
    handler: (conn, id, f: Frame) => {
      const pid = f.patternSub;
      if (!isNonNegInt(pid)) throw badRequest('patternSub', '"patternSub" must be the id a pattern subscribe answered with');
      const ps = patterns.get(conn)?.get(pid);
      if (!ps) throw new WeirError(ErrorCode.UNKNOWN_SUBSCRIPTION, `no pattern subscription ${pid} on this connection`, { details: { patternSub: pid } });
      patterns.get(conn)!.delete(ps.id);
      conn.releaseSubscription();
      for (const sub of ps.children.values()) host.unsubscribeById(conn, sub);
      if (id !== undefined) host.send(conn, { op: 'result', id });
    },
  });

  host.registerOp({
    // An inbox is bound to its connection: only its holder receives what is sent to it.
    op: 'inbox', requestId: 'required', whenStopping: 'serve', access: 'session',
    handler: (conn, id, f: Frame) => {
      if (f.name !== undefined && typeof f.name !== 'string') throw badRequest('name', '"name" must be a string');
      const claim = inboxes.claim(conn, f.name as string | undefined);
      if (!claim.ok) {
        const why = claim.reason === 'INVALID_NAME' ? 'must be "_INBOX." and 8-64 of A-Z a-z 0-9 _ -' : claim.reason === 'TAKEN' ? 'is bound to another connection' : 'cannot be claimed: this connection holds the most inboxes allowed';
        throw badRequest('name', `inbox ${JSON.stringify(String(f.name ?? '').slice(0, 80))} ${why}`);
      }
      host.send(conn, { op: 'result', id, inbox: claim.name });
    },
  });

  host.registerOp({
    // A reply names the topic its request came from (the SDK fills it in), on which it needs `respond`.
    op: 'reply', requestId: 'optional', whenStopping: 'serve', access: [{ action: 'respond', from: 'topic', ifAbsent: 'deny' }],
    handler: (conn, id, f: Frame) => {
      if (typeof f.to !== 'string') throw badRequest('to', '"to" must be the inbox name from the request\'s weir-reply-to header');
      const records = f.records;
      if (!(records instanceof Uint8Array)) throw badRequest('records', '"records" must be a byte string holding a record batch');
      host.scanBatch(records, replyIndex, MAX_REPLY_RECORDS); // same checks and codes as produce
      const owner = inboxes.owner(f.to);
      if (owner === undefined || owner.closed) {
        throw new WeirError(ErrorCode.NO_REPLY_INBOX, `no connection holds inbox ${JSON.stringify(f.to.slice(0, 80))}: the requester disconnected (its request may have timed out)`, { details: { to: f.to } });
      }
      host.send(owner, { op: 'reply', inbox: f.to, records });
      if (id !== undefined) host.send(conn, { op: 'result', id });
    },
  });

  host.registerOp({
    op: 'reset_offsets', requestId: 'required', whenStopping: 'serve', access: [{ action: 'reset', from: 'group' }, { action: 'consume', from: 'topic' }],
    handler: async (conn, id, f: Frame) => {
      const group = groupNameOf(f.group);
      const topic = publicTopicOf(host.topics, f);
      const to = resetTargetOf(f.to);
      const offsets = await Promise.all(topic.actors.map((_, p) => resolveTarget(host, topic, p, to, () => conn.closed)));
      const entries = offsets.map((o, p) => [p, o] as [number, number]);
      await new Promise<void>((resolve, reject) => {
        const apply = (): void => {
          try {
            host.offsets.commit(group, topic.name, entries);
            resolve();
          } catch (err) {
            reject(err);
          }
        };
        // Live members first stop (committing what they processed), then the reset overrides that,
        // then they are assigned again and start from the new offsets.
        if (!host.groups.reset(group, topic.name, apply)) apply();
      });
      host.send(conn, { op: 'result', id, group, topic: topic.name, offsets: entries });
    },
  });

  // The client closed one topic's subscription of a pattern: that topic is no longer covered
  // (a stale entry would also keep the id of a subscription that no longer exists).
  host.onUnsubscribed((conn, subId) => {
    const mine = patterns.get(conn);
    if (!mine) return;
    for (const ps of mine.values()) {
      for (const [topic, sub] of ps.children) {
        if (sub !== subId) continue;
        ps.children.delete(topic);
        ps.excluded.add(topic);
        return;
      }
    }
  });

  host.onConnectionClosed((conn) => {
    patterns.delete(conn); // the gateway already dropped the connection's subscriptions
    inboxes.dropOwner(conn);
  });

  return {
    name: 'routing',
    close() {
      closed = true;
      patterns.clear();
    },
  };
}

/** `resume`: {topic: {partition: offset}}, bounded like the rest of a frame. */
function resumeOf(v: unknown): Map<string, Record<string, number>> {
  const out = new Map<string, Record<string, number>>();
  if (v === undefined) return out;
  const bad = (): WeirError => badRequest('resume', '"resume" must map topic names to {partition: offset} maps of non-negative integers');
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad();
  for (const [topic, offsets] of Object.entries(v as Record<string, unknown>)) {
    if (typeof offsets !== 'object' || offsets === null || Array.isArray(offsets)) throw bad();
    const o: Record<string, number> = {};
    for (const [p, off] of Object.entries(offsets as Record<string, unknown>)) {
      if (!/^\d{1,4}$/.test(p) || !isNonNegInt(off)) throw bad();
      o[p] = off;
    }
    out.set(topic, o);
  }
  return out;
}

/** Topics a pattern subscription must not cover (one the client closed before a reconnect). */
const MAX_EXCLUDED_TOPICS = 10_000;
function excludeOf(v: unknown): Set<string> {
  if (v === undefined) return new Set();
  if (!Array.isArray(v) || v.length > MAX_EXCLUDED_TOPICS || !v.every((t) => typeof t === 'string' && t.length <= 249)) {
    throw badRequest('exclude', `"exclude" must be an array of at most ${MAX_EXCLUDED_TOPICS} topic names`);
  }
  return new Set(v as string[]);
}

function resetTargetOf(v: unknown): ResetTarget {
  if (v === 'earliest' || v === 'latest') return v;
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    if ('offset' in o && isNonNegInt(o.offset)) return { offset: o.offset };
    if ('timestamp' in o && isNonNegInt(o.timestamp)) return { timestamp: o.timestamp };
  }
  throw badRequest('to', '"to" must be "earliest", "latest", {offset: N} or {timestamp: ms}');
}

/** The offset `to` means for one partition; an explicit offset is clamped into the log's range. */
async function resolveTarget(host: FeatureHost, topic: Topic, partition: number, to: ResetTarget, abandon: () => boolean): Promise<number> {
  if (to === 'earliest') return host.resolveOffset(topic, partition, FetchMode.EARLIEST, 0, abandon);
  if (to === 'latest') return host.resolveOffset(topic, partition, FetchMode.LATEST, 0, abandon);
  if ('timestamp' in to) return host.resolveOffset(topic, partition, FetchMode.TIMESTAMP, to.timestamp, abandon);
  const start = await host.resolveOffset(topic, partition, FetchMode.EARLIEST, 0, abandon);
  const end = await host.resolveOffset(topic, partition, FetchMode.LATEST, 0, abandon);
  return Math.min(Math.max(to.offset, start), end);
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}
