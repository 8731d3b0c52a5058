/**
 * The broker's security configuration (BrokerOptions.security, `weir start --users … --jwt-…`) read
 * into an Authenticator: the users file, the role table, the JSON Web Token keys and the shared
 * token. Every file is read once, at start; a file that is missing, unreadable or wrong is
 * BAD_CONFIG naming the file and what is wrong, so the broker does not start half-secured.
 */
import fs from 'node:fs';
import { X509Certificate, createPublicKey, type KeyObject } from 'node:crypto';
import { WeirError } from '../common/errors.js';
import { WeirCode } from '../protocol/error-codes.js';
import { Authenticator } from './authenticator.js';
import { AuthFailureLimiter, type AuthFailureLimits } from './limits.js';
import { ByteRateQuotas, Tenants, type ByteRate, type PrincipalByteRates, type TenantConfig } from './quota.js';
import { parseRoleTable, type RoleTable, type Rule } from './permissions.js';
import { DEFAULT_CLOCK_SKEW_MS, createTokenVerifier, type PublicKeyAlgorithm, type TokenVerifier } from './tokens.js';
import { Users } from './users.js';

/** JSON Web Token verification (tokens.ts): keys from files, and the claims checked. */
export interface JwtOptions {
  /** A file holding an HS256 secret (its bytes, without a trailing newline; at least 32 bytes). */
  readonly secretFile?: string;
  /** PEM public keys or certificates, one per file. */
  readonly publicKeyFiles?: readonly string[];
  /** The algorithm of `publicKeyFiles` (default: from each key: RSA RS256, P-256 ES256, Ed25519 EdDSA). */
  readonly alg?: PublicKeyAlgorithm;
  /** A JSON Web Key Set file of public keys. */
  readonly jwksFile?: string;
  readonly issuer?: string | readonly string[];
  readonly audience?: string | readonly string[];
  /** Allowance for the issuer's clock, on `exp` and `nbf` (default 30 s). */
  readonly clockSkewMs?: number;
  /** Refuse tokens that live longer than this. */
  readonly maxLifetimeMs?: number;
  /** The claim carrying the permissions (default `weir`). */
  readonly claim?: string;
}

export interface SecurityOptions {
  /** The users file (`weir users add …` writes it). */
  readonly usersFile?: string;
  /** Role name → rules. */
  readonly roles?: Readonly<Record<string, readonly Rule[]>>;
  /** A JSON file `{ "roles": { name: [rule, …] } }`. */
  readonly rolesFile?: string;
  readonly jwt?: JwtOptions;
  /** One token shared by every client: who presents it may do everything. */
  readonly token?: string;
  /** Failed authentications per client address (defaults: DEFAULT_AUTH_FAILURE_LIMITS). */
  readonly authFailureLimits?: Partial<AuthFailureLimits>;
  /** Byte rates per principal (`--produce-quota`, `--consume-quota`). */
  readonly quotas?: QuotaOptions;
  /** Tenants: topic-name prefixes with a topic count and storage size (QUOTA_EXCEEDED beyond them). */
  readonly tenants?: readonly TenantConfig[];
  /** Live connections of one authenticated principal (`--max-connections-per-principal`; default 1000). */
  readonly maxConnectionsPerPrincipal?: number;
}

/** A principal's byte rates: bytes per second it may produce and be delivered (absent: no limit). */
export interface PrincipalQuota {
  readonly produceBytesPerSec?: number;
  readonly consumeBytesPerSec?: number;
}

/**
 * Byte-rate quotas: the default of every principal (each has its own budget of that size, shared
 * by its connections), and overrides that replace the default: by principal name, else by role (a
 * principal with several such roles gets the highest rate of each direction). A rate of 0 in an
 * override: no limit for that direction.
 */
export interface QuotaOptions extends PrincipalQuota {
  readonly perPrincipal?: Readonly<Record<string, PrincipalQuota>>;
  readonly perRole?: Readonly<Record<string, PrincipalQuota>>;
}

/** The ByteRateQuotas `options` describe; null when no rate is configured. Throws BAD_CONFIG. */
export function loadQuotas(options: QuotaOptions | undefined): ByteRateQuotas | null {
  if (options === undefined) return null;
  const rateOf = (value: unknown, what: string): ByteRate | undefined => {
    if (value === undefined || value === 0) return undefined;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw badConfig(`quotas: ${what} must be a positive number of bytes per second (0: no limit)`);
    return { bytesPerSec: value };
  };
  const ratesOf = (q: PrincipalQuota, who: string): PrincipalByteRates => {
    if (typeof q !== 'object' || q === null) throw badConfig(`quotas: ${who} must be an object`);
    const produce = rateOf(q.produceBytesPerSec, `${who} produceBytesPerSec`);
    const consume = rateOf(q.consumeBytesPerSec, `${who} consumeBytesPerSec`);
    return { ...(produce !== undefined ? { produce } : {}), ...(consume !== undefined ? { consume } : {}) };
  };
  const overridesOf = (table: Readonly<Record<string, PrincipalQuota>> | undefined, kind: string): Map<string, PrincipalByteRates> => {
    if (table !== undefined && (typeof table !== 'object' || table === null)) throw badConfig(`quotas: ${kind} must be an object`);
    return new Map(Object.entries(table ?? {}).map(([name, q]) => [name, ratesOf(q, `${kind} ${JSON.stringify(name)}`)]));
  };
  const defaults = ratesOf(options, 'the default');
  const byName = overridesOf(options.perPrincipal, 'perPrincipal');
  const byRole = overridesOf(options.perRole, 'perRole');
  const any = (r: PrincipalByteRates): boolean => r.produce !== undefined || r.consume !== undefined;
  if (!any(defaults) && ![...byName.values(), ...byRole.values()].some(any)) return null;
  return new ByteRateQuotas({
    ratesOf: (principal, roles) => {
      const own = byName.get(principal);
      if (own !== undefined) return own;
      const ofRoles = roles.filter((r) => byRole.has(r)).map((r) => byRole.get(r)!);
      if (ofRoles.length === 0) return defaults;
      // The highest rate of its roles; no limit (absent) beats any rate.
      const highest = (direction: 'produce' | 'consume'): ByteRate | undefined => {
        let best: ByteRate | undefined;
        for (const r of ofRoles) {
          const rate = r[direction];
          if (rate === undefined) return undefined;
          if (best === undefined || rate.bytesPerSec > best.bytesPerSec) best = rate;
        }
        return best;
      };
      const produce = highest('produce');
      const consume = highest('consume');
      return { ...(produce !== undefined ? { produce } : {}), ...(consume !== undefined ? { consume } : {}) };
    },
  });
}

/** The Tenants `tenants` describe; null when none is configured. Throws BAD_CONFIG. */
export function loadTenants(tenants: unknown): Tenants | null {
  if (tenants === undefined) return null;
  const parsed = Tenants.parse(tenants);
  return parsed.all.length === 0 ? null : parsed;
}

/** `--max-connections-per-principal`, checked; undefined: the default. Throws BAD_CONFIG. */
export function maxConnectionsPerPrincipalOf(options: SecurityOptions | undefined): number | undefined {
  const n = options?.maxConnectionsPerPrincipal;
  if (n !== undefined && !(Number.isSafeInteger(n) && n >= 1)) throw badConfig(`--max-connections-per-principal must be a whole number, at least 1 (got ${JSON.stringify(n)})`);
  return n;
}

/** Whether `options` turn authentication on (a users file, token keys or a shared token). */
export function authenticationConfigured(options: SecurityOptions | undefined): boolean {
  const jwt = options?.jwt;
  return options !== undefined && (options.usersFile !== undefined || options.token !== undefined || jwt?.secretFile !== undefined || (jwt?.publicKeyFiles?.length ?? 0) > 0 || jwt?.jwksFile !== undefined);
}

/** The Authenticator `options` describe; null when they turn authentication off. Throws BAD_CONFIG. */
export async function loadAuthenticator(options: SecurityOptions | undefined): Promise<Authenticator | null> {
  const roles = loadRoles(options);
  if (!authenticationConfigured(options)) {
    if (roles.size > 0) throw badConfig('roles are configured but authentication is not: add a users file, JWT keys or a token');
    return null;
  }
  const o = options!;
  if (o.token !== undefined && (typeof o.token !== 'string' || o.token.length === 0)) throw badConfig('the shared token must be a non-empty string');
  const users = o.usersFile === undefined ? undefined : loadUsers(o.usersFile);
  let tokens: TokenVerifier | undefined;
  const jwt = o.jwt;
  if (jwt !== undefined && (jwt.secretFile !== undefined || (jwt.publicKeyFiles?.length ?? 0) > 0 || jwt.jwksFile !== undefined)) {
    tokens = await createTokenVerifier({
      keys: {
        ...(jwt.secretFile !== undefined ? { hs256: [{ secret: secretOf(jwt.secretFile) }] } : {}),
        ...(jwt.publicKeyFiles !== undefined ? { publicKeys: jwt.publicKeyFiles.map((file) => publicKeyOf(file, jwt.alg)) } : {}),
        ...(jwt.jwksFile !== undefined ? { jwks: jsonOf(jwt.jwksFile, '--jwt-jwks') } : {}),
      },
      knownRoles: new Set(roles.keys()),
      ...(jwt.issuer !== undefined ? { issuer: jwt.issuer } : {}),
      ...(jwt.audience !== undefined ? { audience: jwt.audience } : {}),
      ...(jwt.clockSkewMs !== undefined ? { clockSkewMs: jwt.clockSkewMs } : {}),
      ...(jwt.maxLifetimeMs !== undefined ? { maxLifetimeMs: jwt.maxLifetimeMs } : {}),
      ...(jwt.claim !== undefined ? { claim: jwt.claim } : {}),
    });
  }
  let limiter: AuthFailureLimiter;
  try {
    limiter = new AuthFailureLimiter(o.authFailureLimits);
  } catch (e) {
    throw badConfig((e as Error).message);
  }
  return new Authenticator({
    roles,
    limiter,
    ...(users !== undefined ? { users } : {}),
    ...(tokens !== undefined ? { tokens, clockSkewMs: jwt?.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS } : {}),
    ...(o.token !== undefined ? { sharedToken: o.token } : {}),
  });
}

/** Reads the users file again (a running broker picks up `weir users` changes); throws BAD_CONFIG. */
export function loadUsers(file: string): Users {
  const text = readText(file, '--users');
  try {
    return Users.parse(text);
  } catch (e) {
    throw badConfig(`--users ${file}: ${(e as Error).message}`);
  }
}

function loadRoles(options: SecurityOptions | undefined): RoleTable {
  const table = new Map<string, readonly Rule[]>();
  if (options?.rolesFile !== undefined) {
    const json = jsonOf(options.rolesFile, '--roles');
    if (typeof json !== 'object' || json === null || !('roles' in json)) throw badConfig(`--roles ${options.rolesFile}: must be a JSON object { "roles": { "<role>": [rule, …] } }`);
    try {
      for (const [name, rules] of parseRoleTable((json as { roles: unknown }).roles)) table.set(name, rules);
    } catch (e) {
      throw badConfig(`--roles ${options.rolesFile}: ${(e as Error).message}`);
    }
  }
  if (options?.roles !== undefined) {
    for (const [name, rules] of parseRoleTable(options.roles)) {
      if (table.has(name)) throw badConfig(`role ${JSON.stringify(name)} is defined both in the roles file and in the options`);
      table.set(name, rules);
    }
  }
  return table;
}

function secretOf(file: string): Uint8Array {
  const bytes = readBytes(file, '--jwt-secret-file');
  let end = bytes.length;
  while (end > 0 && (bytes[end - 1] === 0x0a || bytes[end - 1] === 0x0d)) end--;
  return bytes.subarray(0, end);
}

function publicKeyOf(file: string, alg: PublicKeyAlgorithm | undefined): { pem: string; alg: PublicKeyAlgorithm } {
  const pem = readText(file, '--jwt-public-key').trim();
  let key: KeyObject;
  try {
    key = pem.startsWith('-----BEGIN CERTIFICATE-----') ? new X509Certificate(pem).publicKey : createPublicKey(pem);
  } catch (e) {
    throw badConfig(`--jwt-public-key ${file}: not a PEM public key or certificate (${(e as Error).message})`);
  }
  if (key.type !== 'public') throw badConfig(`--jwt-public-key ${file}: holds a ${key.type} key; give the public key only`);
  if (alg !== undefined) return { pem, alg };
  const type = key.asymmetricKeyType;
  if (type === 'rsa') return { pem, alg: 'RS256' };
  if (type === 'ed25519') return { pem, alg: 'EdDSA' };
  if (type === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return { pem, alg: 'ES256' };
  throw badConfig(`--jwt-public-key ${file}: a ${type ?? 'unknown'} key${type === 'ec' ? ` on ${key.asymmetricKeyDetails?.namedCurve ?? '?'}` : ''} is not one of RSA (RS256), P-256 (ES256), Ed25519 (EdDSA)`);
}

function jsonOf(file: string, flag: string): unknown {
  try {
    return JSON.parse(readText(file, flag));
  } catch (e) {
    if (WeirError.isWeirError(e)) throw e;
    throw badConfig(`${flag} ${file}: not JSON (${(e as Error).message})`);
  }
}

function readText(file: string, flag: string): string {
  return Buffer.from(readBytes(file, flag)).toString('utf8');
}

function readBytes(file: string, flag: string): Uint8Array {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw badConfig(`${flag} ${file}: ${code === 'ENOENT' ? 'no such file' : `cannot be read (${code ?? (e as Error).message})`}`);
  }
}

function badConfig(message: string): WeirError {
  return new WeirError(WeirCode.BAD_CONFIG, message);
}
