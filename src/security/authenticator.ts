/**
 * Authentication of a connection's `hello`: which principal its credentials prove, or why none.
 * Credentials are a `token` (a JSON Web Token, an API key `weir_…` of the users file, or the
 * broker's one shared token) or a `user` and `password` of the users file. Failed attempts are
 * limited per client address (limits.ts AuthFailureLimiter: delayed, then refused). Secrets are
 * compared in constant time and never echoed. Transport-free: the caller passes the address.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { WeirError } from '../common/errors.js';
import { WeirCode } from '../protocol/error-codes.js';
import { AuthFailureLimiter, addressKey, authRateLimited } from './limits.js';
import { EMPTY_ROLES, Grants, type RoleTable, type Rule } from './permissions.js';
import { anonymousPrincipal, type Principal } from './principal.js';
import { tokenRefusalError, type TokenVerifier } from './tokens.js';
import type { Users } from './users.js';

/** What a `hello` may carry to authenticate. */
export interface Credentials {
  readonly token?: unknown;
  readonly user?: unknown;
  readonly password?: unknown;
}

/** Every action on every resource (internal topics still excepted: no rule reaches them). */
export const ALLOW_ALL: Rule = Object.freeze({ allow: ['*'] as const, topics: ['#'], groups: ['#'], txns: ['#'] });

/** The principal of a broker without authentication: allowed everything but internal topics. */
export const OPEN_PRINCIPAL: Principal = Object.freeze({ ...anonymousPrincipal(), rules: [ALLOW_ALL] });

/** Who presents the broker's shared token (BrokerOptions.security.token): allowed everything. */
export const SHARED_TOKEN_PRINCIPAL: Principal = Object.freeze({ name: 'token', roles: [], source: 'token', rules: [ALLOW_ALL] });

export interface AuthenticatorOptions {
  /** The users file: passwords and API keys. */
  readonly users?: Users;
  /** Roles the principals name (users file, token claims). */
  readonly roles?: RoleTable;
  /** JSON Web Token verification. */
  readonly tokens?: TokenVerifier;
  /** The token verifier's clock-skew allowance: a connection closes that long after its token's `exp`. */
  readonly clockSkewMs?: number;
  /** One token shared by every client (the broker's older, single-secret authentication). */
  readonly sharedToken?: string;
  readonly limiter?: AuthFailureLimiter;
  /** Waits out a limiter's delay. Default: a timer. */
  readonly sleep?: (ms: number) => Promise<void>;
  readonly now?: () => number;
}

export class Authenticator {
  readonly limiter: AuthFailureLimiter;
  private users: Users | undefined;
  private readonly roles: RoleTable;
  private readonly sharedDigest: Buffer | undefined;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly options: AuthenticatorOptions) {
    if (options.users === undefined && options.tokens === undefined && options.sharedToken === undefined) {
      throw new RangeError('an authenticator needs a users file, token keys or a shared token');
    }
    this.users = options.users;
    this.roles = options.roles ?? EMPTY_ROLES;
    this.sharedDigest = options.sharedToken === undefined ? undefined : digest(options.sharedToken);
    this.limiter = options.limiter ?? new AuthFailureLimiter();
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /** Serve logins from another users file content from now on (a reloaded file). */
  setUsers(users: Users): void {
    this.users = users;
  }

  /**
   * The principal `credentials` prove for a client at `address`. Throws AUTH_RATE_LIMITED (too many
   * failures from the address), UNAUTHORIZED (missing or wrong credentials; `details.reason`) or
   * TOKEN_EXPIRED. A wrong credential counts against the address; a missing or expired one does not
   * (a client that reconnects with an old token is not guessing).
   */
  async authenticate(credentials: Credentials, address: string): Promise<Principal> {
    const key = addressKey(address);
    const verdict = this.limiter.check(key, this.now());
    if (verdict.verdict === 'refuse') throw authRateLimited(verdict.retryAfterMs);
    if (verdict.delayMs > 0) await this.sleep(verdict.delayMs);
    const { token, user, password } = credentials;
    if (token === undefined && user === undefined) throw unauthorized('missing', 'this broker requires authentication: send "token", or "user" and "password", in hello');
    let failure: WeirError;
    if (token !== undefined) {
      if (user !== undefined) throw unauthorized('malformed', 'send either "token" or "user" and "password", not both');
      const outcome = await this.byToken(token);
      if (!WeirError.isWeirError(outcome)) return outcome;
      failure = outcome;
    } else {
      const principal = this.users === undefined ? null : await this.users.verifyPassword(user, password);
      if (principal !== null) return principal;
      failure = unauthorized('password', 'unknown user or wrong password');
    }
    if (failure.code !== WeirCode.TOKEN_EXPIRED) this.limiter.recordFailure(key, this.now());
    throw failure;
  }

  /** The principal's compiled permissions (its rules and its roles'). */
  grantsOf(principal: Principal): Grants {
    return new Grants(principal, this.roles);
  }

  /** When a connection of `principal` must close (its credential's expiry, plus the clock-skew allowance); undefined: never. */
  closesAt(principal: Principal): number | undefined {
    return principal.expiresAtMs === undefined ? undefined : principal.expiresAtMs + (this.options.clockSkewMs ?? 0);
  }

  private async byToken(token: unknown): Promise<Principal | WeirError> {
    if (typeof token !== 'string') return unauthorized('malformed', '"token" must be a string');
    if (this.sharedDigest !== undefined && timingSafeEqual(digest(token), this.sharedDigest)) return SHARED_TOKEN_PRINCIPAL;
    if (token.startsWith('weir_')) {
      const principal = this.users?.verifyApiKey(token) ?? null;
      return principal ?? unauthorized('api-key', 'the API key is not valid');
    }
    if (this.options.tokens !== undefined) {
      const result = await this.options.tokens.verify(token);
      return result.ok ? result.principal : tokenRefusalError(result);
    }
    return unauthorized('token', 'the token is not valid');
  }
}

/** A fixed-length digest: constant-time comparison of secrets of any length. */
function digest(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

function unauthorized(reason: string, message: string): WeirError {
  return new WeirError(WeirCode.UNAUTHORIZED, message, { details: { reason } });
}
