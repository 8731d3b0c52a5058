/**
 * Limits a front door applies before and around authentication, so that a page cannot guess
 * passwords or tokens quickly, nor hold the broker's connections:
 *
 * - `AuthFailureLimiter`: per address, after `freeFailures` failed authentications within a
 *   window each further attempt is delayed (doubling), and after `refuseAfter` failures attempts are
 *   refused (AUTH_RATE_LIMITED) until the window has passed. It tracks at most
 *   `maxTrackedAddresses` addresses (the oldest window is forgotten first): memory stays bounded
 *   whatever the number of addresses, at the price that a flood of addresses can make it forget.
 * - `ConnectionLimits`: live connections per address and per principal, each with a maximum.
 *
 * Pure: the caller passes the time and does the waiting. Key addresses with `addressKey`, so that a
 * client cannot escape the per-address limits by hopping within its IPv6 /64.
 */
import { isIPv6 } from 'node:net';
import { WeirError } from '../common/errors.js';
import { WeirCode } from '../protocol/error-codes.js';

/**
 * The key an address is limited by: an IPv4 address as it is (also when IPv4-mapped, `::ffff:a.b.c.d`),
 * an IPv6 address as its /64 (one host usually has a whole /64), anything else as it is.
 */
export function addressKey(address: string): string {
  if (!isIPv6(address)) return address;
  const g = expandIPv6(address);
  if (g === null) return address;
  if (g.slice(0, 5).every((x) => x === '0') && g[5] === 'ffff') {
    const hi = parseInt(g[6]!, 16);
    const lo = parseInt(g[7]!, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return `${g.slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address, lower-case without leading zeros; null if not IPv6. */
function expandIPv6(address: string): string[] | null {
  let text = address.toLowerCase();
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  // An embedded IPv4 tail counts as two groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4 !== null) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = text.slice(0, v4.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const head = halves[0] === '' ? [] : halves[0]!.split(':');
  const tail = halves.length === 2 && halves[1] !== '' ? halves[1]!.split(':') : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const groups = [...head, ...Array.from({ length: halves.length === 2 ? missing : 0 }, () => '0'), ...tail];
  return groups.map((g) => parseInt(g, 16).toString(16));
}

export interface AuthFailureLimits {
  /** Failures within a window that cost nothing. Default 5. */
  readonly freeFailures: number;
  /** Failures within a window after which attempts are refused until it ends. Default 20. */
  readonly refuseAfter: number;
  /** The window, from an address's first failure. Default 60 s. */
  readonly windowMs: number;
  /** The delay after `freeFailures` failures; it doubles with each further one. Default 500 ms. */
  readonly delayMs: number;
  /** The longest delay. Default 10 s. */
  readonly maxDelayMs: number;
  /** Addresses tracked at once. Default 10 000. */
  readonly maxTrackedAddresses: number;
}

export const DEFAULT_AUTH_FAILURE_LIMITS: AuthFailureLimits = Object.freeze({
  freeFailures: 5,
  refuseAfter: 20,
  windowMs: 60_000,
  delayMs: 500,
  maxDelayMs: 10_000,
  maxTrackedAddresses: 10_000,
});

/** What to do with an authentication attempt: go ahead after `delayMs` (0: at once), or refuse it. */
export type AuthAttemptVerdict = { readonly verdict: 'allow'; readonly delayMs: number } | { readonly verdict: 'refuse'; readonly retryAfterMs: number };

interface FailureWindow {
  readonly startMs: number;
  failures: number;
}

export class AuthFailureLimiter {
  private readonly limits: AuthFailureLimits;
  private readonly windows = new Map<string, FailureWindow>();

  constructor(limits: Partial<AuthFailureLimits> = {}) {
    this.limits = { ...DEFAULT_AUTH_FAILURE_LIMITS, ...limits };
    const l = this.limits;
    if (!(l.freeFailures >= 0 && l.refuseAfter > l.freeFailures && l.windowMs > 0 && l.delayMs >= 0 && l.maxDelayMs >= l.delayMs && l.maxTrackedAddresses >= 1)) {
      throw new RangeError('auth failure limits: need 0 ≤ freeFailures < refuseAfter, windowMs > 0, 0 ≤ delayMs ≤ maxDelayMs, maxTrackedAddresses ≥ 1');
    }
  }

  /** Before an attempt from `address` is authenticated. */
  check(address: string, nowMs: number): AuthAttemptVerdict {
    const w = this.current(address, nowMs);
    if (w === undefined || w.failures < this.limits.freeFailures) return { verdict: 'allow', delayMs: 0 };
    if (w.failures >= this.limits.refuseAfter) return { verdict: 'refuse', retryAfterMs: w.startMs + this.limits.windowMs - nowMs };
    const doublings = w.failures - this.limits.freeFailures;
    return { verdict: 'allow', delayMs: Math.min(this.limits.maxDelayMs, this.limits.delayMs * 2 ** Math.min(doublings, 30)) };
  }

  /** After an attempt from `address` failed to authenticate. */
  recordFailure(address: string, nowMs: number): void {
    const w = this.current(address, nowMs);
    if (w !== undefined) {
      w.failures++;
      return;
    }
    while (this.windows.size >= this.limits.maxTrackedAddresses) this.windows.delete(this.windows.keys().next().value!);
    this.windows.set(address, { startMs: nowMs, failures: 1 });
  }

  get trackedAddresses(): number {
    return this.windows.size;
  }

  private current(address: string, nowMs: number): FailureWindow | undefined {
    const w = this.windows.get(address);
    if (w !== undefined && nowMs - w.startMs >= this.limits.windowMs) {
      this.windows.delete(address);
      return undefined;
    }
    return w;
  }
}

/** AUTH_RATE_LIMITED with `details.retryAfterMs`. */
export function authRateLimited(retryAfterMs: number): WeirError {
  return new WeirError(WeirCode.AUTH_RATE_LIMITED, `too many failed authentication attempts from this address; retry in ${Math.ceil(retryAfterMs / 1000)} s`, {
    retryable: true,
    details: { retryAfterMs },
  });
}

/** Live counts per key with a maximum; a key at zero is forgotten, so memory follows live use. */
export class KeyedCounter {
  private readonly counts = new Map<string, number>();

  constructor(readonly max: number) {
    if (!(Number.isInteger(max) && max >= 1)) throw new RangeError('a maximum is an integer ≥ 1');
  }

  /** Counts one more for `key`, or returns false (and counts nothing) when it is at its maximum. */
  tryAcquire(key: string): boolean {
    const n = this.counts.get(key) ?? 0;
    if (n >= this.max) return false;
    this.counts.set(key, n + 1);
    return true;
  }

  release(key: string): void {
    const n = this.counts.get(key);
    if (n === undefined) throw new RangeError(`release of ${JSON.stringify(key)} that holds nothing`);
    if (n <= 1) this.counts.delete(key);
    else this.counts.set(key, n - 1);
  }

  count(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  /** Keys with a live count. */
  get size(): number {
    return this.counts.size;
  }
}

export type ConnectionScope = 'principal' | 'address';

export interface ConnectionRefusal {
  readonly scope: ConnectionScope;
  readonly limit: number;
}

export interface ConnectionLimitsConfig {
  /** Default 1000. */
  readonly maxPerPrincipal?: number;
  /** Default 100. */
  readonly maxPerAddress?: number;
}

/**
 * Live connections per address (count at upgrade, before authentication) and per principal (count
 * once authenticated). Every successful `admit…` is paired with one `release…` when the connection
 * closes.
 */
export class ConnectionLimits {
  private readonly byPrincipal: KeyedCounter;
  private readonly byAddress: KeyedCounter;

  constructor(config: ConnectionLimitsConfig = {}) {
    this.byPrincipal = new KeyedCounter(config.maxPerPrincipal ?? 1000);
    this.byAddress = new KeyedCounter(config.maxPerAddress ?? 100);
  }

  /** Counts a connection from `address` (an addressKey), or says why not. */
  admitAddress(address: string): ConnectionRefusal | null {
    return this.byAddress.tryAcquire(address) ? null : { scope: 'address', limit: this.byAddress.max };
  }

  releaseAddress(address: string): void {
    this.byAddress.release(address);
  }

  /** Counts a connection of the principal named `name`, or says why not. */
  admitPrincipal(name: string): ConnectionRefusal | null {
    return this.byPrincipal.tryAcquire(name) ? null : { scope: 'principal', limit: this.byPrincipal.max };
  }

  releasePrincipal(name: string): void {
    this.byPrincipal.release(name);
  }

  connectionsOf(scope: ConnectionScope, key: string): number {
    return (scope === 'address' ? this.byAddress : this.byPrincipal).count(key);
  }
}

/** TOO_MANY_CONNECTIONS with `details.scope` and `details.limit`. */
export function tooManyConnections(refusal: ConnectionRefusal): WeirError {
  return new WeirError(WeirCode.TOO_MANY_CONNECTIONS, `at most ${refusal.limit} connections per ${refusal.scope}`, {
    retryable: true,
    details: { scope: refusal.scope, limit: refusal.limit },
  });
}
