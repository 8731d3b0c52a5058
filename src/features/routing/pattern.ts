/**
 * Topic patterns for wildcard subscriptions (AMQP topic-exchange style): names are words separated
 * by `.`; in a pattern `*` matches exactly one word (which may be empty, as in `a..b`) and `#`
 * matches zero or more words. Internal topics (`__…`) never match, and dead-letter topics only match
 * a pattern that names their last word (matchesDeadLetterTopic). Pure: no IO.
 */
import { INTERNAL_TOPIC_PREFIX } from '../../protocol/frames.js';

/** A validated pattern, split into words once. */
export interface TopicPattern {
  readonly source: string;
  readonly words: readonly string[];
}

const PATTERN_CHARS = /^[A-Za-z0-9._*#-]{1,249}$/;

/** Why `source` is not a valid pattern, or null. */
export function patternProblem(source: unknown): string | null {
  if (typeof source !== 'string') return 'pattern must be a string';
  if (!PATTERN_CHARS.test(source)) return 'pattern must be 1-249 characters of A-Z a-z 0-9 . _ - * #';
  for (const w of source.split('.')) {
    if (w.length > 1 && (w.includes('*') || w.includes('#'))) return `"*" and "#" must be whole words (between dots), not part of ${JSON.stringify(w)}`;
  }
  if (source.startsWith(INTERNAL_TOPIC_PREFIX)) return 'patterns cannot name internal topics ("__" prefix)';
  return null;
}

/** Parse a pattern; throws RangeError with the problem when it is invalid. */
export function compilePattern(source: string): TopicPattern {
  const problem = patternProblem(source);
  if (problem !== null) throw new RangeError(problem);
  // Adjacent `#`s mean the same as one; collapsing them keeps matching linear in practice.
  const words: string[] = [];
  for (const w of source.split('.')) if (!(w === '#' && words[words.length - 1] === '#')) words.push(w);
  return { source, words };
}

/** True when `topic` is a word-for-word match of `pattern`. */
export function matchesTopic(pattern: TopicPattern, topic: string): boolean {
  if (topic.startsWith(INTERNAL_TOPIC_PREFIX)) return false;
  return matchWords(pattern.words, topic.split('.'));
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

/**
 * Wildcard matching over words with single-backtrack-point search (the classic glob algorithm, with
 * `#` for `*` and `*` for `?`): on a mismatch, retry from the latest `#` letting it eat one more
 * word. Correct for several `#`s, O(p·t) worst case.
 */
export function matchWords(p: readonly string[], t: readonly string[]): boolean {
  let i = 0; // pattern position
  let j = 0; // topic position
  let star = -1; // pattern position after the latest '#'
  let mark = 0; // topic position that '#' currently extends to
  while (j < t.length) {
    if (i < p.length && p[i] !== '#' && (p[i] === '*' || p[i] === t[j])) {
      i++;
      j++;
    } else if (i < p.length && p[i] === '#') {
      star = ++i;
      mark = j;
    } else if (star >= 0) {
      i = star;
      j = ++mark;
    } else return false;
  }
  while (i < p.length && p[i] === '#') i++;
  return i === p.length;
}
