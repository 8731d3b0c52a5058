import { describe, expect, it } from 'vitest';
import { compilePattern } from '../../../src/protocol/topic-pattern.js';
import { matchesDeadLetterTopic, matchesTopic, subscriptionPatternProblem } from '../../../src/features/routing/subscription-pattern.js';

const m = (pattern: string, topic: string): boolean => matchesTopic(compilePattern(pattern), topic);

describe('subscription patterns', () => {
  it('never match internal topics, not even with #', () => {
    expect(m('#', '__delayed')).toBe(false);
    expect(m('*', '__txn')).toBe(false);
    expect(m('#', '_single.underscore')).toBe(true);
    expect(m('orders.*', 'orders.eu')).toBe(true);
  });

  it('cannot name internal topics, and keep the grammar rules', () => {
    expect(subscriptionPatternProblem('__delayed.#')).toMatch(/internal/);
    expect(subscriptionPatternProblem('__txn_half')).toMatch(/internal/);
    expect(subscriptionPatternProblem('a*.b')).toMatch(/whole words/);
    expect(subscriptionPatternProblem(7)).toMatch(/string/);
    expect(subscriptionPatternProblem('orders.*.paid')).toBeNull();
    expect(subscriptionPatternProblem('_single.#')).toBeNull();
  });
});

describe('dead-letter topics', () => {
  const dl = (pattern: string, topic: string): boolean => matchesDeadLetterTopic(compilePattern(pattern), topic);
  it.each([
    ['orders.#', 'orders.dlq', false],
    ['#', 'orders.dlq', false],
    ['orders.*', 'orders.dlq', false],
    ['*.dlq', 'orders.dlq', true],
    ['#.dlq', 'orders.dlq', true],
    ['orders.dlq', 'orders.dlq', true],
    ['#.dlq', 'orders.eu.dlq', true],
    ['*.dlq', 'orders.eu.dlq', false],
    ['dead-orders', 'dead-orders', true],
    ['#', 'dead-orders', false],
    ['#.dlq', '__x.dlq', false],
  ])('%s on dead-letter topic %s → %s', (pattern, topic, expected) => {
    expect(dl(pattern, topic)).toBe(expected);
  });
});
