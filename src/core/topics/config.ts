/**
 * Per-topic settings of the messaging features (queues, dead letters, time, transactions). Stored
 * with the topic in topics.json; every field has a default, so a topic created without a config
 * (or by an older broker) behaves as documented in docs/protocol.md, "Topic config".
 */
import { badRequest } from '../../common/errors.js';
import { INTERNAL_TOPIC_PREFIX, topicNameProblem, type TopicConfig } from '../../protocol/frames.js';
import { MAX_TOPIC_NAME, defaultDeadLetterTopic } from './names.js';

export interface RetryBackoff {
  /** First redelivery delay after a `nack` with retry. */
  initialMs: number;
  /** Cap of the exponential growth. */
  maxMs: number;
  multiplier: number;
  /** 0–1: each delay is scaled by a random factor in [1 - jitter, 1]. */
  jitter: number;
}

/** TopicConfig with every default filled in. */
export interface ResolvedTopicConfig {
  visibilityTimeoutMs: number;
  maxDeliveries: number;
  retryBackoff: RetryBackoff;
  orderedKeys: boolean;
  /** null: rejected and exhausted messages are dropped (counted), not dead-lettered. */
  deadLetterTopic: string | null;
  /** null: messages do not expire unless they carry their own expiry. */
  ttlMs: number | null;
  deadLetterExpired: boolean;
  transactionCheckMs: number;
  transactionTimeoutMs: number;
}

export const DEFAULT_TOPIC_CONFIG: Omit<ResolvedTopicConfig, 'deadLetterTopic'> = {
  visibilityTimeoutMs: 30_000,
  maxDeliveries: 5,
  retryBackoff: { initialMs: 100, maxMs: 30_000, multiplier: 2, jitter: 0.2 },
  orderedKeys: false,
  ttlMs: null,
  deadLetterExpired: false,
  transactionCheckMs: 5_000,
  transactionTimeoutMs: 60_000,
};

/**
 * Validate a config from the wire (or topics.json) and fill the defaults. Throws BAD_REQUEST.
 * `maxTopic`: the longest topic name the data directory holds (names.ts): a dead-letter topic is
 * held to it, and a topic whose `<topic>.dlq` would be longer has none by default.
 */
export function resolveTopicConfig(topic: string, raw: unknown, base?: ResolvedTopicConfig, maxTopic = MAX_TOPIC_NAME): ResolvedTopicConfig {
  const out: ResolvedTopicConfig = base ? { ...base, retryBackoff: { ...base.retryBackoff } } : { ...DEFAULT_TOPIC_CONFIG, retryBackoff: { ...DEFAULT_TOPIC_CONFIG.retryBackoff }, deadLetterTopic: topic.startsWith(INTERNAL_TOPIC_PREFIX) ? null : defaultDeadLetterTopic(topic, maxTopic) };
  if (raw === undefined || raw === null) return out;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw badRequest('config', '"config" must be a map');
  const c = raw as Record<string, unknown>;
  const known = new Set(['visibilityTimeoutMs', 'maxDeliveries', 'retryBackoff', 'orderedKeys', 'deadLetterTopic', 'ttlMs', 'deadLetterExpired', 'transactionCheckMs', 'transactionTimeoutMs']);
  for (const k of Object.keys(c)) if (!known.has(k)) throw badRequest(`config.${k}`, `unknown topic setting ${JSON.stringify(k.slice(0, 40))}`);
  if (c.visibilityTimeoutMs !== undefined) out.visibilityTimeoutMs = int(c.visibilityTimeoutMs, 'config.visibilityTimeoutMs', 10, 24 * 3_600_000);
  if (c.maxDeliveries !== undefined) out.maxDeliveries = int(c.maxDeliveries, 'config.maxDeliveries', 1, 1_000_000);
  if (c.retryBackoff !== undefined) {
    const r = c.retryBackoff;
    if (typeof r !== 'object' || r === null || Array.isArray(r)) throw badRequest('config.retryBackoff', '"retryBackoff" must be a map of initialMs, maxMs, multiplier, jitter');
    const rb = r as Record<string, unknown>;
    if (rb.initialMs !== undefined) out.retryBackoff.initialMs = int(rb.initialMs, 'config.retryBackoff.initialMs', 0, 24 * 3_600_000);
    if (rb.maxMs !== undefined) out.retryBackoff.maxMs = int(rb.maxMs, 'config.retryBackoff.maxMs', 0, 24 * 3_600_000);
    if (rb.multiplier !== undefined) out.retryBackoff.multiplier = num(rb.multiplier, 'config.retryBackoff.multiplier', 1, 100);
    if (rb.jitter !== undefined) out.retryBackoff.jitter = num(rb.jitter, 'config.retryBackoff.jitter', 0, 1);
    if (out.retryBackoff.maxMs < out.retryBackoff.initialMs) throw badRequest('config.retryBackoff.maxMs', 'retryBackoff.maxMs must be ≥ initialMs');
  }
  if (c.orderedKeys !== undefined) out.orderedKeys = bool(c.orderedKeys, 'config.orderedKeys');
  if (c.deadLetterTopic !== undefined) {
    if (c.deadLetterTopic === null) out.deadLetterTopic = null;
    else {
      const problem = topicNameProblem(c.deadLetterTopic, maxTopic);
      if (problem) throw badRequest('config.deadLetterTopic', `deadLetterTopic: ${problem}`);
      if (c.deadLetterTopic === topic) throw badRequest('config.deadLetterTopic', 'a topic cannot be its own dead-letter topic');
      out.deadLetterTopic = c.deadLetterTopic as string;
    }
  }
  if (c.ttlMs !== undefined) out.ttlMs = c.ttlMs === null ? null : int(c.ttlMs, 'config.ttlMs', 1, 2 ** 42);
  if (c.deadLetterExpired !== undefined) out.deadLetterExpired = bool(c.deadLetterExpired, 'config.deadLetterExpired');
  if (c.transactionCheckMs !== undefined) out.transactionCheckMs = int(c.transactionCheckMs, 'config.transactionCheckMs', 10, 24 * 3_600_000);
  if (c.transactionTimeoutMs !== undefined) out.transactionTimeoutMs = int(c.transactionTimeoutMs, 'config.transactionTimeoutMs', 10, 7 * 24 * 3_600_000);
  return out;
}

/** The wire/disk form (every field explicit, so a reader needs no defaults). */
export function topicConfigToWire(c: ResolvedTopicConfig): TopicConfig {
  return { ...c, retryBackoff: { ...c.retryBackoff } };
}

function int(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw badRequest(field, `"${field}" must be an integer from ${min} to ${max}`);
  return v;
}
function num(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw badRequest(field, `"${field}" must be a number from ${min} to ${max}`);
  return v;
}
function bool(v: unknown, field: string): boolean {
  if (typeof v !== 'boolean') throw badRequest(field, `"${field}" must be true or false`);
  return v;
}
