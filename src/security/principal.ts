/**
 * A principal: who a connection is once it has authenticated (a user of the users file, one of its
 * API keys, a JSON Web Token's subject, the broker's shared token), or the anonymous principal of a
 * broker without auth. Its permissions are its own rules (a token's claim) plus those of its roles
 * (the configuration's role table); permissions.ts decides. Front doors make principals, the core checks them. Pure: no IO.
 */
import type { Grantee, Rule } from './permissions.js';

export type PrincipalSource = 'user' | 'api-key' | 'jwt' | 'token' | 'anonymous';

export interface Principal extends Grantee {
  /** The user name, or the token's `sub`. */
  readonly name: string;
  readonly roles: readonly string[];
  /** The tenant (quota.ts) whose topic prefix and quotas this principal's use counts against. */
  readonly tenant?: string;
  readonly source: PrincipalSource;
  /** When the credential stops being valid (a token's `exp`): the connection closes then. */
  readonly expiresAtMs?: number;
  /** Rules of the principal itself, besides its roles' (a token's claim may carry some). */
  readonly rules: readonly Rule[];
}

export const MAX_PRINCIPAL_NAME = 256;
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Why `name` cannot name a principal, or null: 1-256 characters without control characters (it is
 * written to logs and error messages as it is).
 */
export function principalNameProblem(name: unknown): string | null {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_PRINCIPAL_NAME) return `a principal name is a string of 1-${MAX_PRINCIPAL_NAME} characters`;
  if (CONTROL.test(name)) return 'a principal name has no control characters';
  return null;
}

/** The principal of a connection that did not authenticate; `roles` come from the configuration. */
export function anonymousPrincipal(roles: readonly string[] = []): Principal {
  return { name: 'anonymous', roles, source: 'anonymous', rules: [] };
}

/** Milliseconds until the principal's credential expires (≤ 0: expired); Infinity when it never does. */
export function msUntilExpiry(principal: Principal, nowMs: number): number {
  return principal.expiresAtMs === undefined ? Infinity : principal.expiresAtMs - nowMs;
}

export function isExpired(principal: Principal, nowMs: number): boolean {
  return msUntilExpiry(principal, nowMs) <= 0;
}

const TENANT_NAME = /^[A-Za-z0-9._-]{1,64}$/;

export function tenantNameProblem(name: unknown): string | null {
  return typeof name === 'string' && TENANT_NAME.test(name) ? null : 'a tenant name is 1-64 characters of A-Z a-z 0-9 . _ -';
}
