/**
 * The broker's name-pattern grammar (AMQP topic-exchange style), shared by wildcard subscriptions
 * (features/routing) and permission rules (security/): names are words separated by `.`; in a
 * pattern `*` matches exactly one word (which may be empty, as in `a..b`) and `#` matches zero or
 * more words; any other word matches itself, so a pattern without wildcards names exactly one name.
 * The bare grammar knows no topic kinds: what a pattern may not reach (internal topics, dead-letter
 * topics for subscriptions) is its user's rule. Pure: no IO.
 */

/** A validated pattern, split into words once. */
export interface TopicPattern {
  readonly source: string;
  readonly words: readonly string[];
  /** No `*` or `#`: the pattern matches exactly the name `source`. */
  readonly literal: boolean;
}

const PATTERN_CHARS = /^[A-Za-z0-9._*#-]{1,249}$/;

/** Why `source` is not a pattern of the grammar, or null. */
export function patternProblem(source: unknown): string | null {
  if (typeof source !== 'string') return 'pattern must be a string';
  if (!PATTERN_CHARS.test(source)) return 'pattern must be 1-249 characters of A-Z a-z 0-9 . _ - * #';
  for (const w of source.split('.')) {
    if (w.length > 1 && (w.includes('*') || w.includes('#'))) return `"*" and "#" must be whole words (between dots), not part of ${JSON.stringify(w)}`;
  }
  return null;
}

/** Parse a pattern; throws RangeError with the problem when it is invalid. */
export function compilePattern(source: string): TopicPattern {
  const problem = patternProblem(source);
  if (problem !== null) throw new RangeError(problem);
  // Adjacent `#`s mean the same as one; collapsing them keeps matching linear in practice.
  const words: string[] = [];
  for (const w of source.split('.')) if (!(w === '#' && words[words.length - 1] === '#')) words.push(w);
  return { source, words, literal: !words.some((w) => w === '*' || w === '#') };
}

/** True when `name` is a word-for-word match of `pattern`. */
export function matchesPattern(pattern: TopicPattern, name: string): boolean {
  if (pattern.literal) return name === pattern.source;
  return matchWords(pattern.words, name.split('.'));
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
