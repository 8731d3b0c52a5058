import { describe, expect, it } from 'vitest';
import { WeirError } from '../../src/common/errors.js';
import {
  ACTIONS,
  ALL_ACTIONS,
  Grants,
  authorize,
  forbidden,
  parseRoleTable,
  ruleProblem,
  rulesProblem,
  type Action,
  type ResourceKind,
  type RoleTable,
  type Rule,
} from '../../src/security/permissions.js';
import { anonymousPrincipal, isExpired, msUntilExpiry, principalNameProblem, type Principal } from '../../src/security/principal.js';
import { mulberry32, testSeed } from '../support/seeded-prng.js';

const principal = (rules: Rule[], roles: string[] = []): Principal => ({ name: 'p', roles, rules, source: 'jwt' });

const ROLES: RoleTable = parseRoleTable({
  'chat-reader': [{ allow: ['consume', 'describe'], topics: ['rooms.42.*'] }, { allow: ['join', 'commit'], groups: ['chat.*'] }],
  dashboard: [{ allow: ['consume'], topics: ['metrics.#'] }],
  service: [{ allow: ['*'], topics: ['orders', 'orders.#'], groups: ['orders-svc'], txns: ['orders-svc.#'] }],
  ops: [{ allow: ['admin'] }],
});

describe('authorize', () => {
  const chat = principal([], ['chat-reader']);
  const svc = principal([], ['service']);
  const own = principal([{ allow: ['produce'], topics: ['rooms.42.chat'] }]);
  const cases: [string, Principal, Action, ResourceKind, string, boolean][] = [
    // deny by default
    ['no rules at all', principal([]), 'consume', 'topic', 'orders', false],
    ['anonymous', anonymousPrincipal(), 'describe', 'topic', 'orders', false],
    ['anonymous with a role', anonymousPrincipal(['dashboard']), 'consume', 'topic', 'metrics.cpu', true],
    // exact names
    ['exact name', own, 'produce', 'topic', 'rooms.42.chat', true],
    ['exact name, other topic', own, 'produce', 'topic', 'rooms.42.chatx', false],
    ['exact name, prefix of it', own, 'produce', 'topic', 'rooms.42', false],
    ['exact name, other action', own, 'consume', 'topic', 'rooms.42.chat', false],
    // '*' is one word
    ['* one word', chat, 'consume', 'topic', 'rooms.42.general', true],
    ['* not two words', chat, 'consume', 'topic', 'rooms.42.a.b', false],
    ['* not zero words', chat, 'consume', 'topic', 'rooms.42', false],
    ['other room', chat, 'consume', 'topic', 'rooms.43.x', false],
    ['role: not produce', chat, 'produce', 'topic', 'rooms.42.general', false],
    ['role: describe', chat, 'describe', 'topic', 'rooms.42.general', true],
    // '#' is zero or more words
    ['# zero words', principal([], ['dashboard']), 'consume', 'topic', 'metrics', true],
    ['# many words', principal([], ['dashboard']), 'consume', 'topic', 'metrics.a.b.c', true],
    ['# is word-aligned', principal([], ['dashboard']), 'consume', 'topic', 'metricsx', false],
    // groups and transactions
    ['group pattern', chat, 'join', 'group', 'chat.ui', true],
    ['group pattern, other group', chat, 'join', 'group', 'billing', false],
    ['group: reset not allowed', chat, 'reset', 'group', 'chat.ui', false],
    ['star rule: group', svc, 'reset', 'group', 'orders-svc', true],
    ['star rule: txn', svc, 'txn', 'txn', 'orders-svc.eu', true],
    ['star rule: other txn', svc, 'txn', 'txn', 'billing', false],
    ['star rule: topic actions', svc, 'delete', 'topic', 'orders', true],
    ['star rule: queue actions', svc, 'redrive', 'topic', 'orders.eu', true],
    ['star rule names no broker list: admin', svc, 'admin', 'broker', '', true],
    ['admin only from a rule that allows it', chat, 'admin', 'broker', '', false],
    ['ops role', principal([], ['ops']), 'admin', 'broker', 'anything', true],
    ['ops role is not topic access', principal([], ['ops']), 'consume', 'topic', 'orders', false],
    // own rules and roles add up; unknown roles grant nothing
    ['own rules + roles', principal([{ allow: ['produce'], topics: ['x'] }], ['dashboard']), 'consume', 'topic', 'metrics.cpu', true],
    ['unknown role', principal([], ['nope']), 'consume', 'topic', 'metrics.cpu', false],
    // internal topics: never by rules
    ['internal topic, #', principal([{ allow: ['*'], topics: ['#'] }]), 'consume', 'topic', '__txn_half', false],
    ['internal topic, *', principal([{ allow: ['*'], topics: ['*'] }]), 'produce', 'topic', '__delay.orders', false],
    ['# covers the rest', principal([{ allow: ['*'], topics: ['#'] }]), 'produce', 'topic', '_one.underscore', true],
    ['internal-looking group is a group', principal([{ allow: ['join'], groups: ['#'] }]), 'join', 'group', '__g', true],
  ];
  it.each(cases)('%s', (_label, p, action, kind, name, expected) => {
    expect(authorize(p, action, kind, name, ROLES)).toBe(expected);
    expect(new Grants(p, ROLES).allows(action, name)).toBe(expected);
  });

  it('throws on an action used with the wrong kind of resource (a wiring bug, not a denial)', () => {
    expect(() => authorize(principal([]), 'produce', 'group', 'g')).toThrow(RangeError);
    expect(() => authorize(principal([]), 'nope' as Action, 'topic', 'g')).toThrow(RangeError);
    expect(() => new Grants(principal([])).allows('nope' as Action, 'x')).toThrow(RangeError);
  });

  it('every action has a resource kind, and a rule list for it unless broker-wide', () => {
    expect(ALL_ACTIONS.length).toBe(16);
    for (const a of ALL_ACTIONS) expect(['topic', 'group', 'txn', 'broker']).toContain(ACTIONS[a]);
  });
});

describe('Grants.check and FORBIDDEN', () => {
  it('throws FORBIDDEN naming the action and the resource, not retryable', () => {
    const g = new Grants(principal([{ allow: ['consume'], topics: ['rooms.42.*'] }]));
    expect(() => g.check('consume', 'rooms.42.a')).not.toThrow();
    let err: unknown;
    try {
      g.check('consume', 'rooms.43.a');
    } catch (e) {
      err = e;
    }
    expect(WeirError.isWeirError(err)).toBe(true);
    expect(err).toMatchObject({ code: 'FORBIDDEN', retryable: false, details: { action: 'consume', resource: 'topic:rooms.43.a' } });
    expect(forbidden('admin', 'x').details).toEqual({ action: 'admin', resource: 'broker' });
    expect(forbidden('join', 'billing').details).toEqual({ action: 'join', resource: 'group:billing' });
  });
});

describe('rules are validated strictly', () => {
  it.each([
    [{ allow: ['consume'], topics: ['a.*'] }, null],
    [{ allow: ['*'] }, null],
    [{ allow: ['admin'] }, null],
    [{ allow: ['*'], topics: ['#'], groups: ['#'], txns: ['#'] }, null],
    [null, /object/],
    [[], /object/],
    [{ allow: [] }, /non-empty/],
    [{ allow: 'consume', topics: ['a'] }, /list of actions/],
    [{ allow: ['consume', '*'], topics: ['a'] }, /unknown action "\*"/],
    [{ allow: ['eat'], topics: ['a'] }, /unknown action "eat"/],
    [{ allow: ['consume'] }, /"consume" acts on topics but the rule has no "topics" list/],
    [{ allow: ['join'], topics: ['a'] }, /"join" acts on groups/],
    [{ allow: ['txn'], topics: ['a'] }, /"txn" acts on txns/],
    [{ allow: ['consume'], topics: [] }, /1-256 patterns/],
    [{ allow: ['consume'], topics: 'a' }, /1-256 patterns/],
    [{ allow: ['consume'], topics: ['a*'] }, /whole words/],
    [{ allow: ['consume'], topics: [7] }, /string/],
    [{ allow: ['consume'], topics: ['__txn_half'] }, /internal topics/],
    [{ allow: ['consume'], topics: ['a'], deny: ['x'] }, /unknown rule field "deny"/],
    [{ allow: ['consume'], topics: Array.from({ length: 257 }, (_, i) => `t${i}`) }, /1-256 patterns/],
  ])('%j → %s', (rule, expected) => {
    const problem = ruleProblem(rule);
    if (expected === null) expect(problem).toBeNull();
    else expect(problem).toMatch(expected);
  });

  it('bounds the number of rules and names the bad one', () => {
    expect(rulesProblem('x')).toMatch(/list/);
    expect(rulesProblem(Array.from({ length: 65 }, () => ({ allow: ['admin'] })))).toMatch(/at most 64/);
    expect(rulesProblem([{ allow: ['admin'] }, { allow: ['x'] }])).toMatch(/^rule 1: /);
  });

  it('a bad role table is BAD_CONFIG naming the role', () => {
    expect(() => parseRoleTable([])).toThrow(expect.objectContaining({ code: 'BAD_CONFIG' }));
    expect(() => parseRoleTable({ 'bad role': [] })).toThrow(/role "bad role"/);
    expect(() => parseRoleTable({ r: [{ allow: ['consume'] }] })).toThrow(expect.objectContaining({ code: 'BAD_CONFIG', message: expect.stringMatching(/role "r": rule 0/) }));
  });
});

describe('the decision cache', () => {
  it('answers exactly what the uncached decision answers, across cache clears (seeded random)', () => {
    const seed = testSeed(2023);
    const rnd = mulberry32(seed);
    const words = ['a', 'b', 'c', '__x', 'rooms', '42'];
    const pick = <T>(xs: readonly T[]): T => xs[rnd.int(0, xs.length - 1)]!;
    const name = (): string => Array.from({ length: rnd.int(1, 4) }, () => pick(words)).join('.');
    const pattern = (): string => {
      const p = Array.from({ length: rnd.int(1, 4) }, () => pick([...words.slice(0, 2), 'rooms', '*', '#']));
      return p.join('.');
    };
    const outcomes = { true: 0, false: 0 };
    for (let round = 0; round < 40; round++) {
      const rules: Rule[] = Array.from({ length: rnd.int(0, 4) }, () => {
        const allow = rnd.float() < 0.2 ? (['*'] as const) : Array.from({ length: rnd.int(1, 3) }, () => pick(ALL_ACTIONS));
        return { allow, topics: [pattern(), pattern()], groups: [pattern()], txns: [pattern()] };
      });
      const p = principal(rules, rnd.float() < 0.5 ? ['dashboard'] : []);
      const grants = new Grants(p, ROLES, { maxCachedDecisions: 16 });
      for (let k = 0; k < 300; k++) {
        const action = pick(ALL_ACTIONS);
        const n = name();
        const expected = authorize(p, action, ACTIONS[action], n, ROLES);
        outcomes[`${expected}`]++;
        expect(grants.allows(action, n), `seed ${seed} round ${round}: ${action} ${n} with ${JSON.stringify(rules)}`).toBe(expected);
        expect(grants.cachedDecisions).toBeLessThanOrEqual(16);
      }
    }
    // Both answers are common, so the comparison means something.
    expect(Math.min(outcomes.true, outcomes.false)).toBeGreaterThan(1000);
  });

  it('remembers a decision per action and name, bounded by maxCachedDecisions', () => {
    const g = new Grants(principal([{ allow: ['consume', 'produce'], topics: ['a.#'] }]), ROLES, { maxCachedDecisions: 3 });
    expect(g.allows('consume', 'a.1')).toBe(true);
    expect(g.allows('consume', 'a.1')).toBe(true);
    expect(g.cachedDecisions).toBe(1);
    expect(g.allows('produce', 'a.1')).toBe(true);
    expect(g.allows('produce', 'b')).toBe(false);
    expect(g.cachedDecisions).toBe(3);
    expect(g.allows('produce', 'b')).toBe(false);
    expect(g.allows('consume', 'a.2')).toBe(true); // over the bound: cleared, then this one kept
    expect(g.cachedDecisions).toBe(1);
  });
});

describe('principal', () => {
  it('names: 1-256 characters, no control characters', () => {
    expect(principalNameProblem('alice@example.com')).toBeNull();
    expect(principalNameProblem('üser 1')).toBeNull();
    expect(principalNameProblem('')).not.toBeNull();
    expect(principalNameProblem('x'.repeat(257))).not.toBeNull();
    expect(principalNameProblem('a\nb')).toMatch(/control/);
    expect(principalNameProblem(5)).not.toBeNull();
  });

  it('expiry', () => {
    const p: Principal = { ...principal([]), expiresAtMs: 1000 };
    expect(msUntilExpiry(p, 400)).toBe(600);
    expect(isExpired(p, 999)).toBe(false);
    expect(isExpired(p, 1000)).toBe(true);
    expect(msUntilExpiry(anonymousPrincipal(), 1e15)).toBe(Infinity);
    expect(isExpired(anonymousPrincipal(), 1e15)).toBe(false);
  });
});
