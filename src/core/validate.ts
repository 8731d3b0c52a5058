/**
 * Validators of request fields shared by the core's operations and the features' (pure): each
 * throws BAD_REQUEST naming the field (details.field).
 */
import { WeirError, badRequest } from '../common/errors.js';
import { ErrorCode } from '../protocol/codes.js';
import { topicNotFound, type Topic, type TopicRegistry } from './topics/registry.js';
import { GROUP_NAME, MAX_CREDITS, type StartPosition } from '../protocol/frames.js';

export { badRequest } from '../common/errors.js';

/** A non-negative integer field. */
export function nonNegInt(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw badRequest(field, `"${field}" must be a non-negative integer`);
  return v;
}

/** A consumer group's (or producer group's) name from a frame's `field`. */
export function groupNameOf(v: unknown, field = 'group'): string {
  if (typeof v !== 'string' || !GROUP_NAME.test(v)) throw badRequest(field, `"${field}" must be 1-249 characters of A-Z a-z 0-9 . _ -`);
  return v;
}

/** What a subscription asks for besides its topic (or pattern). */
export interface SubscribeOptions {
  group: string | undefined;
  from: StartPosition;
  credits: number;
}

/** `group`, `from` and `credits` of a subscribe frame. */
export function subscribeOptionsOf(f: Record<string, unknown>): SubscribeOptions {
  let group: string | undefined;
  if (f.group !== undefined) group = groupNameOf(f.group);
  const from = parseFrom(f.from);
  const credits = f.credits === undefined ? 1000 : nonNegInt(f.credits, 'credits');
  if (credits < 1) throw badRequest('credits', 'credits must be at least 1');
  return { group, from, credits: Math.min(credits, MAX_CREDITS) };
}

function parseFrom(v: unknown): StartPosition {
  if (v === undefined || v === 'latest') return 'latest';
  if (v === 'earliest') return 'earliest';
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    if ('offset' in o) return { offset: nonNegInt(o.offset, 'from.offset') };
    if ('timestamp' in o) return { timestamp: nonNegInt(o.timestamp, 'from.timestamp') };
    if ('offsets' in o && typeof o.offsets === 'object' && o.offsets !== null) {
      const offsets: Record<string, number> = {};
      for (const [k, x] of Object.entries(o.offsets as Record<string, unknown>)) offsets[k] = nonNegInt(x, 'from.offsets');
      return { offsets };
    }
  }
  throw badRequest('from', '"from" must be "earliest", "latest", {offset}, {offsets} or {timestamp}');
}

/** The topic a frame names (BAD_REQUEST when `topic` is not a string, TOPIC_NOT_FOUND when it does not exist). */
export function topicOf(topics: TopicRegistry, f: Record<string, unknown>): Topic {
  const name = f.topic;
  if (typeof name !== 'string') throw badRequest('topic', '"topic" must be a string');
  const topic = topics.get(name);
  if (!topic) throw topicNotFound(name);
  return topic;
}

/** topicOf for the operations that serve no internal topic: to them, one does not exist. */
export function publicTopicOf(topics: TopicRegistry, f: Record<string, unknown>): Topic {
  const topic = topicOf(topics, f);
  if (topic.internal) throw topicNotFound(topic.name);
  return topic;
}

/** A partition number of `topic` (BAD_REQUEST when not an integer, PARTITION_NOT_FOUND when out of range). */
export function partitionOf(topic: Topic, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw badRequest('partition', '"partition" must be an integer');
  if (v < 0 || v >= topic.partitions) {
    throw new WeirError(ErrorCode.PARTITION_NOT_FOUND, `topic ${topic.name} has partitions 0..${topic.partitions - 1}, not ${v}`);
  }
  return v;
}
