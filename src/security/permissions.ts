/**
 * Who may do what: the one registry of actions, allow rules over resource-name patterns, roles, and
 * the decision. Deny by default: an action on a resource is allowed only when a rule of the
 * principal (its own, or one of its roles') allows that action and names the resource in the list
 * of the action's resource kind. Patterns are the broker's grammar (protocol/topic-pattern.ts: `*`
 * one word, `#` zero or more; a pattern without wildcards names one exact name). Internal topics
 * (`__…`) are reachable by no rule: only the broker itself uses them.
 *
 * `authorize` is the plain pure decision; `Grants` is the same decision with the rules compiled
 * once and a bounded per-principal cache, so that a check on the request path is one Map lookup
 * after the first time a name is seen. Pure: no IO.
 */
import { WeirError } from '../common/errors.js';
import { WeirCode } from '../protocol/error-codes.js';
import { INTERNAL_TOPIC_PREFIX } from '../protocol/frames.js';
import { compilePattern, matchesPattern, patternProblem, type TopicPattern } from '../protocol/topic-pattern.js';

export type ResourceKind = 'topic' | 'group' | 'txn' | 'broker';

/**
 * Every action a permission can allow, with the kind of resource it acts on. A new operation of the
 * broker maps to one of these (or adds one here).
 */
export const ACTIONS = {
  // a topic, by its name
  produce: 'topic',
  consume: 'topic',
  describe: 'topic',
  create: 'topic',
  alter: 'topic',
  delete: 'topic',
  /** queue mode: ack, nack and settle messages of the topic */
  ack: 'topic',
  /** append the topic's dead letters back to it */
  redrive: 'topic',
  /** read the topic's dead letters */
  read_dead_letters: 'topic',
  /** send requests to the topic (request-reply) */
  request: 'topic',
  /** serve the topic's requests: read them and reply */
  respond: 'topic',
  // a consumer group, by its name
  join: 'group',
  commit: 'group',
  reset: 'group',
  /** begin, produce in and decide transactions of a producer group (transactional id) */
  txn: 'txn',
  /** anything broker-wide (the resource name is ignored) */
  admin: 'broker',
} as const satisfies Record<string, ResourceKind>;

export type Action = keyof typeof ACTIONS;

export const ALL_ACTIONS: readonly Action[] = Object.freeze(Object.keys(ACTIONS) as Action[]);

export function isAction(value: unknown): value is Action {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ACTIONS, value);
}

/** The resource list of a rule that names resources of each kind (`broker` needs none). */
export const RULE_LIST = { topic: 'topics', group: 'groups', txn: 'txns' } as const;
type ListKey = (typeof RULE_LIST)[keyof typeof RULE_LIST];

/**
 * One allow rule: the actions it allows (`['*']`: every action), and for each resource kind the
 * patterns of the names it allows them on. A missing list names nothing of its kind, so
 * `{ allow: ['*'] }` alone allows only the broker-wide `admin`; a superuser is
 * `{ allow: ['*'], topics: ['#'], groups: ['#'], txns: ['#'] }` (internal topics still excepted).
 */
export interface Rule {
  readonly allow: readonly Action[] | readonly ['*'];
  readonly topics?: readonly string[];
  readonly groups?: readonly string[];
  readonly txns?: readonly string[];
}

/** Role name → its rules (from the broker's configuration). */
export type RoleTable = ReadonlyMap<string, readonly Rule[]>;

export const EMPTY_ROLES: RoleTable = new Map();

/** What a decision needs of a principal (principal.ts's Principal is one). */
export interface Grantee {
  readonly name: string;
  readonly roles: readonly string[];
  readonly rules: readonly Rule[];
}

/** Bounds on rules from untrusted places (token claims): a claim cannot make a check expensive. */
export const MAX_RULES = 64;
export const MAX_PATTERNS_PER_LIST = 256;
export const MAX_ROLES = 64;
const ROLE_NAME = /^[A-Za-z0-9._-]{1,64}$/;

export function roleNameProblem(name: unknown): string | null {
  return typeof name === 'string' && ROLE_NAME.test(name) ? null : 'a role name is 1-64 characters of A-Z a-z 0-9 . _ -';
}

const RULE_KEYS = new Set(['allow', 'topics', 'groups', 'txns']);

/**
 * Why `value` is not a valid rule, or null. Strict: unknown keys, unknown actions, an action whose
 * resource list is missing (it would grant nothing) and topic patterns that name internal topics
 * are all problems, so that a typo in a permission is an error and not a silent denial or grant.
 */
export function ruleProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'a rule must be an object';
  const rule = value as Record<string, unknown>;
  for (const key of Object.keys(rule)) if (!RULE_KEYS.has(key)) return `unknown rule field ${JSON.stringify(key)} (allow, topics, groups, txns)`;
  const allow = rule['allow'];
  if (!Array.isArray(allow) || allow.length === 0 || allow.length > ALL_ACTIONS.length) return '"allow" must be a non-empty list of actions, or ["*"]';
  const everything = allow.length === 1 && allow[0] === '*';
  if (!everything) {
    for (const a of allow) if (!isAction(a)) return `unknown action ${JSON.stringify(a)} (${ALL_ACTIONS.join(', ')}, or "*" alone)`;
  }
  for (const [kind, key] of Object.entries(RULE_LIST) as [Exclude<ResourceKind, 'broker'>, ListKey][]) {
    const list = rule[key];
    if (list === undefined) {
      if (!everything) {
        const needs = (allow as Action[]).find((a) => ACTIONS[a] === kind);
        if (needs !== undefined) return `"${needs}" acts on ${kind}s but the rule has no "${key}" list`;
      }
      continue;
    }
    if (!Array.isArray(list) || list.length === 0 || list.length > MAX_PATTERNS_PER_LIST) return `"${key}" must be a list of 1-${MAX_PATTERNS_PER_LIST} patterns`;
    for (const p of list) {
      const problem = patternProblem(p);
      if (problem !== null) return `"${key}": ${problem}`;
      if (kind === 'topic' && (p as string).startsWith(INTERNAL_TOPIC_PREFIX)) return `"${key}": internal topics ("__" prefix) are reachable only by the broker itself`;
    }
  }
  return null;
}

/** Why `value` is not a list of valid rules, or null. */
export function rulesProblem(value: unknown): string | null {
  if (!Array.isArray(value)) return 'rules must be a list';
  if (value.length > MAX_RULES) return `at most ${MAX_RULES} rules`;
  for (let i = 0; i < value.length; i++) {
    const problem = ruleProblem(value[i]);
    if (problem !== null) return `rule ${i}: ${problem}`;
  }
  return null;
}

/**
 * The role table of the configuration, `{ "<role>": [rule, …], … }`; throws BAD_CONFIG naming the
 * role and the rule at fault.
 */
export function parseRoleTable(value: unknown): RoleTable {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badConfig('roles must be an object of role name → rules');
  const roles = new Map<string, readonly Rule[]>();
  for (const [name, rules] of Object.entries(value as Record<string, unknown>)) {
    if (roleNameProblem(name) !== null) throw badConfig(`role ${JSON.stringify(name)}: ${roleNameProblem(name)}`);
    const problem = rulesProblem(rules);
    if (problem !== null) throw badConfig(`role ${JSON.stringify(name)}: ${problem}`);
    roles.set(name, rules as Rule[]);
  }
  return roles;
}

function badConfig(message: string): WeirError {
  return new WeirError(WeirCode.BAD_CONFIG, message);
}

/** `topic:orders`, `group:billing`, `broker`: how a resource is named in errors and the audit log. */
export function resourceLabel(kind: ResourceKind, name: string): string {
  return kind === 'broker' ? 'broker' : `${kind}:${name}`;
}

/** FORBIDDEN for `action` on a resource (docs/protocol.md, Security). */
export function forbidden(action: Action, resourceName: string): WeirError {
  const resource = resourceLabel(ACTIONS[action], resourceName);
  return new WeirError(WeirCode.FORBIDDEN, `not allowed to ${action} ${resource}`, { details: { action, resource } });
}

/** The rules of a principal: its own, then its roles' (unknown roles grant nothing). */
export function effectiveRules(grantee: Grantee, roles: RoleTable): Rule[] {
  const out = [...grantee.rules];
  for (const role of grantee.roles) {
    const rs = roles.get(role);
    if (rs !== undefined) out.push(...rs);
  }
  return out;
}

function listOf(rule: Rule, kind: ResourceKind): readonly string[] | undefined {
  return kind === 'broker' ? undefined : rule[RULE_LIST[kind]];
}

function ruleAllowsAction(rule: Rule, action: Action): boolean {
  return (rule.allow as readonly string[]).includes('*') || (rule.allow as readonly string[]).includes(action);
}

function checkKind(action: Action, kind: ResourceKind): void {
  if (!isAction(action)) throw new RangeError(`unknown action ${JSON.stringify(action)}`);
  if (ACTIONS[action] !== kind) throw new RangeError(`"${action}" acts on a ${ACTIONS[action]}, not a ${kind}`);
}

/**
 * May `grantee` do `action` on the resource of kind `resourceKind` named `resourceName`? Pure and
 * uncached (compiles the patterns each call): the reference decision. Throws RangeError when the
 * action does not act on that kind of resource (a wiring bug, not a denial).
 */
export function authorize(grantee: Grantee, action: Action, resourceKind: ResourceKind, resourceName: string, roles: RoleTable = EMPTY_ROLES): boolean {
  checkKind(action, resourceKind);
  if (resourceKind === 'topic' && resourceName.startsWith(INTERNAL_TOPIC_PREFIX)) return false;
  for (const rule of effectiveRules(grantee, roles)) {
    if (!ruleAllowsAction(rule, action)) continue;
    if (resourceKind === 'broker') return true;
    const list = listOf(rule, resourceKind);
    if (list !== undefined && list.some((p) => matchesPattern(compilePattern(p), resourceName))) return true;
  }
  return false;
}

/** The names one action is allowed on: exact names in a Set, wildcard patterns in a list. */
interface ActionGrant {
  readonly exact: Set<string>;
  readonly patterns: TopicPattern[];
  /** `broker` actions: allowed at all. */
  any: boolean;
}

export interface GrantsOptions {
  /** Decisions kept before the cache is cleared (bounds its memory). Default 4096. */
  readonly maxCachedDecisions?: number;
}

/**
 * A principal's compiled permissions with a decision cache: make one when a connection
 * authenticates, ask `allows` (or `check`) per request and per subscription. The cache is a Map per
 * action, cleared whole when it holds more than `maxCachedDecisions` (a principal touching an
 * unbounded number of names costs recompilation, never memory).
 */
export class Grants {
  private readonly byAction = new Map<Action, ActionGrant>();
  private readonly decisions = new Map<Action, Map<string, boolean>>();
  private cached = 0;
  private readonly maxCached: number;

  constructor(
    readonly principal: Grantee,
    roles: RoleTable = EMPTY_ROLES,
    options: GrantsOptions = {},
  ) {
    this.maxCached = options.maxCachedDecisions ?? 4096;
    for (const a of ALL_ACTIONS) {
      this.byAction.set(a, { exact: new Set(), patterns: [], any: false });
      this.decisions.set(a, new Map());
    }
    for (const rule of effectiveRules(principal, roles)) {
      const actions = (rule.allow as readonly string[]).includes('*') ? ALL_ACTIONS : (rule.allow as readonly Action[]);
      for (const a of actions) {
        const grant = this.byAction.get(a)!;
        const kind = ACTIONS[a];
        if (kind === 'broker') {
          grant.any = true;
          continue;
        }
        for (const p of listOf(rule, kind) ?? []) {
          const compiled = compilePattern(p);
          if (compiled.literal) grant.exact.add(p);
          else grant.patterns.push(compiled);
        }
      }
    }
  }

  /** May the principal do `action` on the resource named `resourceName` (of the action's kind)? */
  allows(action: Action, resourceName: string): boolean {
    const decisions = this.decisions.get(action);
    if (decisions === undefined) throw new RangeError(`unknown action ${JSON.stringify(action)}`);
    const known = decisions.get(resourceName);
    if (known !== undefined) return known;
    const decision = this.decide(action, resourceName);
    if (this.cached >= this.maxCached) {
      for (const m of this.decisions.values()) m.clear();
      this.cached = 0;
    }
    decisions.set(resourceName, decision);
    this.cached++;
    return decision;
  }

  /** `allows`, or throws FORBIDDEN naming the action and the resource. */
  check(action: Action, resourceName: string): void {
    if (!this.allows(action, resourceName)) throw forbidden(action, resourceName);
  }

  /** Decisions held in the cache now. */
  get cachedDecisions(): number {
    return this.cached;
  }

  private decide(action: Action, name: string): boolean {
    const kind = ACTIONS[action];
    if (kind === 'topic' && name.startsWith(INTERNAL_TOPIC_PREFIX)) return false;
    const grant = this.byAction.get(action)!;
    if (kind === 'broker') return grant.any;
    if (grant.exact.has(name)) return true;
    for (const p of grant.patterns) if (matchesPattern(p, name)) return true;
    return false;
  }
}
