import { describe, expect, it } from 'vitest';
import { compilePattern, matchesPattern, matchWords, patternProblem } from '../../src/protocol/topic-pattern.js';

const m = (pattern: string, topic: string): boolean => matchesPattern(compilePattern(pattern), topic);

/** Reference matcher: plain recursion over words, for a randomized cross-check. */
function reference(p: readonly string[], t: readonly string[]): boolean {
  if (p.length === 0) return t.length === 0;
  if (p[0] === '#') return reference(p.slice(1), t) || (t.length > 0 && reference(p, t.slice(1)));
  if (t.length === 0) return false;
  return (p[0] === '*' || p[0] === t[0]) && reference(p.slice(1), t.slice(1));
}

describe('topic pattern matching', () => {
  it.each([
    // literal
    ['orders', 'orders', true],
    ['orders', 'orders.eu', false],
    ['orders.eu', 'orders', false],
    ['a.b', 'a.bb', false],
    // '*' is exactly one word
    ['orders.*.paid', 'orders.eu.paid', true],
    ['orders.*.paid', 'orders.paid', false],
    ['orders.*.paid', 'orders.eu.fr.paid', false],
    ['*', 'orders', true],
    ['*', 'orders.eu', false],
    ['*.*', 'a.b', true],
    ['*.*', 'a', false],
    // '#' is zero or more words
    ['#', 'orders', true],
    ['#', 'a.b.c.d', true],
    ['logs.#', 'logs', true],
    ['logs.#', 'logs.app', true],
    ['logs.#', 'logs.app.error', true],
    ['logs.#', 'logsx', false],
    ['logs.#', 'other.logs', false],
    ['#.error', 'error', true],
    ['#.error', 'app.db.error', true],
    ['#.error', 'app.error.x', false],
    ['a.#.b', 'a.b', true],
    ['a.#.b', 'a.x.b', true],
    ['a.#.b', 'a.x.y.b', true],
    ['a.#.b', 'a.b.b', true],
    ['a.#.b', 'a.b.c', false],
    ['a.#.b', 'a', false],
    ['a.#.b.#.c', 'a.b.c', true],
    ['a.#.b.#.c', 'a.x.b.y.z.c', true],
    ['a.#.b.#.c', 'a.x.c.b', false],
    ['#.#', 'a', true],
    ['a.#.#.b', 'a.b', true],
    ['#.*', 'a', true],
    ['#.*', 'a.b.c', true],
    ['*.#', 'a', true],
    ['*.#.*', 'a', false],
    ['*.#.*', 'a.b', true],
    // empty words are words
    ['a.*.b', 'a..b', true],
    ['a..b', 'a..b', true],
    ['a..b', 'a.x.b', false],
    ['*.b', '.b', true],
    ['a.*', 'a.', true],
    ['a.#', 'a.', true],
    ['#', '...', true],
    // case and other characters are literal
    ['Orders', 'orders', false],
    ['a-b_c.*', 'a-b_c.x', true],
  ])('%s vs %s → %s', (pattern, topic, expected) => {
    expect(m(pattern, topic)).toBe(expected);
  });

  it('knows no topic kinds: the bare grammar matches internal names like any other', () => {
    expect(m('#', '__delayed')).toBe(true);
    expect(m('__txn_half', '__txn_half')).toBe(true);
    expect(m('#', '_single.underscore')).toBe(true);
  });

  it('a pattern without wildcards names exactly one name', () => {
    for (const name of ['orders', 'orders.eu', 'a..b', 'a-b_c', '_INBOX.abcdefgh', 'x'.repeat(249)]) {
      const p = compilePattern(name);
      expect(p.literal, name).toBe(true);
      expect(matchesPattern(p, name)).toBe(true);
      expect(matchesPattern(p, `${name}.x`)).toBe(false);
      expect(matchesPattern(p, `x.${name}`)).toBe(false);
      expect(matchesPattern(p, name.slice(0, -1))).toBe(false);
    }
    expect(compilePattern('a.*').literal).toBe(false);
    expect(compilePattern('#').literal).toBe(false);
  });

  it('rejects malformed patterns with a reason', () => {
    expect(patternProblem('')).toMatch(/1-249/);
    expect(patternProblem(7)).toMatch(/string/);
    expect(patternProblem('a*.b')).toMatch(/whole words/);
    expect(patternProblem('a.#b')).toMatch(/whole words/);
    expect(patternProblem('**')).toMatch(/whole words/);
    expect(patternProblem('a b')).toMatch(/characters/);
    expect(patternProblem('a/b')).toMatch(/characters/);
    expect(patternProblem('x'.repeat(250))).toMatch(/1-249/);
    expect(patternProblem('__delayed.#')).toBeNull();
    expect(patternProblem('orders.*.paid')).toBeNull();
    expect(patternProblem('#')).toBeNull();
    expect(() => compilePattern('a#')).toThrow(RangeError);
  });

  it('agrees with a recursive reference on random words and patterns', () => {
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const alphabet = ['a', 'b', ''];
    for (let k = 0; k < 5000; k++) {
      const t = Array.from({ length: rnd(6) + 1 }, () => alphabet[rnd(3)]!);
      const p = Array.from({ length: rnd(6) + 1 }, () => ['a', 'b', '', '*', '#', '#'][rnd(6)]!);
      expect(matchWords(p, t), `${p.join('.')} vs ${t.join('.')}`).toBe(reference(p, t));
      if (!t.includes('') && !p.includes('')) expect(matchesPattern(compilePattern(p.join('.')), t.join('.'))).toBe(reference(p, t));
    }
  });
});
