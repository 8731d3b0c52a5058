/**
 * What a wildcard subscription's pattern may reach, on top of the grammar (protocol/topic-pattern.ts):
 * internal topics (`__…`) never match and cannot be named, and dead-letter topics only match a
 * pattern that names their last word (matchesDeadLetterTopic). Pure: no IO.
 */
import { INTERNAL_TOPIC_PREFIX } from '../../protocol/frames.js';
import { matchesPattern, patternProblem, type TopicPattern } from '../../protocol/topic-pattern.js';

/** Why `source` is not a valid subscription pattern, or null. */
export function subscriptionPatternProblem(source: unknown): string | null {
  const problem = patternProblem(source);
  if (problem !== null) return problem;
  if ((source as string).startsWith(INTERNAL_TOPIC_PREFIX)) return 'patterns cannot name internal topics ("__" prefix)';
  return null;
}

/** True when a subscription to `pattern` covers `topic` (never an internal topic). */
export function matchesTopic(pattern: TopicPattern, topic: string): boolean {
  if (topic.startsWith(INTERNAL_TOPIC_PREFIX)) return false;
  return matchesPattern(pattern, topic);
}

/**
 * Matching for a topic that is some topic's dead-letter topic (e.g. `orders.dlq`): only a pattern
 * whose last word is literally the topic's last word matches it (`*.dlq`, `#.dlq`, `orders.dlq`),
 * never one ending in a wildcard (`orders.#`, `#`). Dead letters are failures to look at on
 * purpose, not more of the same messages: a consumer of `orders.#` must not read them as orders.
 */
export function matchesDeadLetterTopic(pattern: TopicPattern, topic: string): boolean {
  return pattern.words[pattern.words.length - 1] === topic.slice(topic.lastIndexOf('.') + 1) && matchesTopic(pattern, topic);
}
