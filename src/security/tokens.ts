/**
 * JSON Web Token verification (with `jose`), so that an application's backend can mint short-lived
 * browser tokens whose claims carry the permissions. Keys are configured, never taken from a token:
 * HS256 secrets, PEM public keys or certificates (RS256, ES256, EdDSA) and a JWKS document. A token
 * must name an allowed algorithm (never `none`), be signed by a configured key, carry `sub` and (by
 * default) `exp`, and pass `exp`, `nbf`, `iss` and `aud` with a clock-skew allowance. Its
 * permission claim (default `weir`: `{ roles?, allow?, tenant? }`) is checked strictly: a claim
 * that is wrong refuses the token rather than being ignored.
 *
 * `verify` never throws and never echoes the token: it answers a principal or a refusal with a
 * stable code (UNAUTHORIZED, or TOKEN_EXPIRED) and a reason for the audit log. Oversized input is
 * refused before any parsing.
 */
import { createLocalJWKSet, decodeProtectedHeader, importSPKI, importX509, jwtVerify, type CryptoKey, type JWTPayload, type JWTVerifyOptions } from 'jose';
import { WeirError } from '../common/errors.js';
import { WeirCode } from '../protocol/error-codes.js';
import { MAX_ROLES, roleNameProblem, rulesProblem, type Rule } from './permissions.js';
import { principalNameProblem, tenantNameProblem, type Principal } from './principal.js';

export const TOKEN_ALGORITHMS = ['HS256', 'RS256', 'ES256', 'EdDSA'] as const;
export type TokenAlgorithm = (typeof TOKEN_ALGORITHMS)[number];
export type PublicKeyAlgorithm = Exclude<TokenAlgorithm, 'HS256'>;

export interface TokenKeys {
  /** Shared secrets, at least 32 bytes each (a string is taken as its UTF-8 bytes). */
  readonly hs256?: readonly { readonly secret: string | Uint8Array; readonly kid?: string }[];
  /** PEM public keys (`BEGIN PUBLIC KEY`) or certificates (`BEGIN CERTIFICATE`). */
  readonly publicKeys?: readonly { readonly pem: string; readonly alg: PublicKeyAlgorithm; readonly kid?: string }[];
  /** A JSON Web Key Set (the parsed content of a JWKS file) of public keys. */
  readonly jwks?: unknown;
}

export interface TokenVerifierOptions {
  readonly keys: TokenKeys;
  /** Accepted `iss` values; when set, a token without one of them is refused. */
  readonly issuer?: string | readonly string[];
  /** Accepted `aud` values; when set, a token without one of them is refused. */
  readonly audience?: string | readonly string[];
  /** The allowed algorithms (default: all of TOKEN_ALGORITHMS). */
  readonly algorithms?: readonly TokenAlgorithm[];
  /** How far the issuer's clock may be from ours, for `exp` and `nbf`. Default 30 s. */
  readonly clockSkewMs?: number;
  /** Longer tokens are refused unparsed. Default 8 KiB. */
  readonly maxTokenLength?: number;
  /** The claim that carries the permissions. Default `weir`. */
  readonly claim?: string;
  /** Refuse tokens without `exp` (default true: browser tokens should be short-lived). */
  readonly requireExpiry?: boolean;
  /** Refuse tokens whose `exp` is further than this from now (a leaked token's worth). */
  readonly maxLifetimeMs?: number;
  /** When given, a role the claim names that is not here refuses the token. */
  readonly knownRoles?: ReadonlySet<string>;
  /** The clock (ms since the epoch). Default Date.now. */
  readonly now?: () => number;
}

export type TokenRefusalReason =
  | 'malformed'
  | 'too-large'
  | 'algorithm'
  | 'no-key'
  | 'signature'
  | 'expired'
  | 'not-yet-valid'
  | 'audience'
  | 'issuer'
  | 'claims'
  | 'lifetime';

export type TokenRefusal = {
  readonly ok: false;
  readonly code: typeof WeirCode.UNAUTHORIZED | typeof WeirCode.TOKEN_EXPIRED;
  readonly reason: TokenRefusalReason;
  readonly message: string;
};

export type TokenResult = { readonly ok: true; readonly principal: Principal } | TokenRefusal;

/** The refusal as the error a front door answers or closes with (`details.reason`). */
export function tokenRefusalError(refusal: TokenRefusal): WeirError {
  return new WeirError(refusal.code, refusal.message, { details: { reason: refusal.reason } });
}

export const DEFAULT_MAX_TOKEN_LENGTH = 8192;
export const DEFAULT_CLOCK_SKEW_MS = 30_000;
const MIN_HS256_SECRET_BYTES = 32;
/** Keys tried for one token (same algorithm, no `kid` to choose): bounds the work a token causes. */
const MAX_CANDIDATE_KEYS = 8;
const COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/;
const CLAIM_KEYS = new Set(['roles', 'allow', 'tenant']);

interface ConfiguredKey {
  readonly alg: TokenAlgorithm;
  readonly kid?: string;
  readonly key: CryptoKey | Uint8Array;
}

type Jwks = ReturnType<typeof createLocalJWKSet>;

function refuse(reason: TokenRefusalReason, message: string): TokenRefusal {
  return { ok: false, code: reason === 'expired' ? WeirCode.TOKEN_EXPIRED : WeirCode.UNAUTHORIZED, reason, message };
}

function badConfig(message: string, cause?: unknown): WeirError {
  return new WeirError(WeirCode.BAD_CONFIG, `tokens: ${message}`, cause !== undefined ? { cause } : {});
}

/** The refusal for an error jose threw while verifying. */
function refusalOf(e: unknown): TokenRefusal {
  const err = e as { code?: unknown; claim?: unknown };
  switch (err.code) {
    case 'ERR_JWT_EXPIRED':
      return refuse('expired', 'the token has expired');
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (err.claim === 'nbf') return refuse('not-yet-valid', 'the token is not valid yet (nbf)');
      if (err.claim === 'aud') return refuse('audience', 'the token is not for this audience (aud)');
      if (err.claim === 'iss') return refuse('issuer', 'the token is not from an accepted issuer (iss)');
      return refuse('claims', `the token's "${typeof err.claim === 'string' ? err.claim : '?'}" claim is missing or invalid`);
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return refuse('signature', 'the token signature does not verify with any configured key');
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return refuse('algorithm', 'the token algorithm is not allowed');
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return refuse('no-key', 'no configured key matches the token (alg, kid)');
    default:
      return refuse('malformed', 'the token is malformed');
  }
}

function isSignatureFailure(e: unknown): boolean {
  return (e as { code?: unknown }).code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED';
}

/** Makes a verifier; throws BAD_CONFIG when a key or an option is unusable. */
export async function createTokenVerifier(options: TokenVerifierOptions): Promise<TokenVerifier> {
  const algorithms = options.algorithms ?? TOKEN_ALGORITHMS;
  for (const a of algorithms) {
    if (!(TOKEN_ALGORITHMS as readonly string[]).includes(a)) throw badConfig(`algorithm ${JSON.stringify(a)} is not one of ${TOKEN_ALGORITHMS.join(', ')}`);
  }
  const keys: ConfiguredKey[] = [];
  for (const [i, k] of (options.keys.hs256 ?? []).entries()) {
    const secret = typeof k.secret === 'string' ? new TextEncoder().encode(k.secret) : k.secret;
    if (!(secret instanceof Uint8Array) || secret.length < MIN_HS256_SECRET_BYTES) throw badConfig(`HS256 secret ${i} is shorter than ${MIN_HS256_SECRET_BYTES} bytes`);
    keys.push({ alg: 'HS256', key: new Uint8Array(secret), ...(k.kid !== undefined ? { kid: k.kid } : {}) });
  }
  for (const [i, k] of (options.keys.publicKeys ?? []).entries()) {
    if (!(['RS256', 'ES256', 'EdDSA'] as const).includes(k.alg)) throw badConfig(`public key ${i}: algorithm ${JSON.stringify(k.alg)} is not RS256, ES256 or EdDSA`);
    const pem = typeof k.pem === 'string' ? k.pem.trim() : '';
    let key: CryptoKey;
    try {
      if (pem.startsWith('-----BEGIN CERTIFICATE-----')) key = await importX509(pem, k.alg);
      else if (pem.startsWith('-----BEGIN PUBLIC KEY-----')) key = await importSPKI(pem, k.alg);
      else throw new Error('not a PEM public key ("BEGIN PUBLIC KEY") or certificate ("BEGIN CERTIFICATE")');
    } catch (e) {
      throw badConfig(`public key ${i} (${k.alg}): ${(e as Error).message}`, e);
    }
    keys.push({ alg: k.alg, key, ...(k.kid !== undefined ? { kid: k.kid } : {}) });
  }
  let jwks: Jwks | undefined;
  if (options.keys.jwks !== undefined) {
    const set = options.keys.jwks as { keys?: unknown };
    if (typeof set !== 'object' || set === null || !Array.isArray(set.keys)) throw badConfig('the JWKS must be an object with a "keys" list');
    for (const [i, jwk] of set.keys.entries()) {
      if (typeof jwk !== 'object' || jwk === null) throw badConfig(`JWKS key ${i} is not an object`);
      if ('d' in jwk || 'k' in jwk) throw badConfig(`JWKS key ${i} holds a private or secret key: a JWKS here lists public keys only`);
    }
    try {
      jwks = createLocalJWKSet(set as Parameters<typeof createLocalJWKSet>[0]);
    } catch (e) {
      throw badConfig(`the JWKS is malformed: ${(e as Error).message}`, e);
    }
  }
  if (keys.length === 0 && jwks === undefined) throw badConfig('no keys configured');
  const skew = options.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS;
  if (!(skew >= 0 && skew <= 3_600_000)) throw badConfig('clockSkewMs must be 0-3600000');
  const claim = options.claim ?? 'weir';
  if (['sub', 'exp', 'nbf', 'iat', 'iss', 'aud', 'jti'].includes(claim)) throw badConfig(`the permission claim cannot be the registered claim "${claim}"`);
  return new TokenVerifier(options, new Set(algorithms), keys, jwks, skew, claim);
}

export class TokenVerifier {
  private readonly now: () => number;
  private readonly maxLength: number;
  private readonly requireExpiry: boolean;

  /** Use createTokenVerifier (it imports the keys). */
  constructor(
    private readonly options: TokenVerifierOptions,
    private readonly algorithms: ReadonlySet<string>,
    private readonly keys: readonly ConfiguredKey[],
    private readonly jwks: Jwks | undefined,
    private readonly skewMs: number,
    private readonly claim: string,
  ) {
    this.now = options.now ?? Date.now;
    this.maxLength = options.maxTokenLength ?? DEFAULT_MAX_TOKEN_LENGTH;
    this.requireExpiry = options.requireExpiry ?? true;
  }

  /** The principal a token proves, or why it is refused. Never throws. */
  async verify(token: unknown): Promise<TokenResult> {
    try {
      return await this.verifyOrThrow(token);
    } catch (e) {
      return refusalOf(e);
    }
  }

  private async verifyOrThrow(token: unknown): Promise<TokenResult> {
    if (typeof token !== 'string') return refuse('malformed', 'a token is a string');
    if (token.length > this.maxLength) return refuse('too-large', `the token is longer than ${this.maxLength} characters`);
    if (!COMPACT.test(token)) return refuse('malformed', 'the token is not a compact JWS (three base64url parts)');
    const header = decodeProtectedHeader(token);
    const alg = header.alg;
    if (typeof alg !== 'string' || !this.algorithms.has(alg)) return refuse('algorithm', `the token algorithm ${JSON.stringify(alg ?? null)} is not allowed`);
    const [, payload, signature] = token.split('.');
    if (payload === '' || signature === '') return refuse('malformed', 'the token has no payload or no signature');
    const kid = typeof header.kid === 'string' ? header.kid : undefined;

    const now = this.now();
    const verifyOptions: JWTVerifyOptions = {
      algorithms: [alg],
      clockTolerance: this.skewMs / 1000,
      currentDate: new Date(now),
      requiredClaims: this.requireExpiry ? ['sub', 'exp'] : ['sub'],
      ...(this.options.issuer !== undefined ? { issuer: typeof this.options.issuer === 'string' ? this.options.issuer : [...this.options.issuer] } : {}),
      ...(this.options.audience !== undefined ? { audience: typeof this.options.audience === 'string' ? this.options.audience : [...this.options.audience] } : {}),
    };

    const candidates = this.keys.filter((k) => k.alg === alg && (kid === undefined || k.kid === undefined || k.kid === kid));
    let tried = 0;
    for (const k of candidates) {
      if (tried++ >= MAX_CANDIDATE_KEYS) break;
      try {
        const { payload: claims } = await jwtVerify(token, k.key, verifyOptions);
        return this.principalOf(claims, now);
      } catch (e) {
        if (!isSignatureFailure(e)) return refusalOf(e);
      }
    }
    if (this.jwks !== undefined && alg !== 'HS256' && tried < MAX_CANDIDATE_KEYS) {
      try {
        const { payload: claims } = await jwtVerify(token, this.jwks, verifyOptions);
        return this.principalOf(claims, now);
      } catch (e) {
        const code = (e as { code?: unknown }).code;
        if (code === 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') {
          // Several keys of the set fit (the token names no kid): try each, within the same bound.
          for await (const key of e as AsyncIterable<CryptoKey>) {
            if (tried++ >= MAX_CANDIDATE_KEYS) break;
            try {
              const { payload: claims } = await jwtVerify(token, key, verifyOptions);
              return this.principalOf(claims, now);
            } catch (inner) {
              if (!isSignatureFailure(inner)) return refusalOf(inner);
            }
          }
        } else if (isSignatureFailure(e)) tried++;
        else if (code !== 'ERR_JWKS_NO_MATCHING_KEY') return refusalOf(e);
      }
    }
    if (tried === 0) return refuse('no-key', `no configured key for ${alg}${kid !== undefined ? ` with kid ${JSON.stringify(kid)}` : ''}`);
    return refuse('signature', 'the token signature does not verify with any configured key');
  }

  /** A verified token's claims as a principal, checked strictly. */
  private principalOf(claims: JWTPayload, now: number): TokenResult {
    const nameProblem = principalNameProblem(claims.sub);
    if (nameProblem !== null) return refuse('claims', `"sub": ${nameProblem}`);
    const expiresAtMs = claims.exp !== undefined ? claims.exp * 1000 : undefined;
    const max = this.options.maxLifetimeMs;
    if (max !== undefined && (expiresAtMs === undefined || expiresAtMs - now > max + this.skewMs)) return refuse('lifetime', `the token lives longer than the allowed ${max} ms`);
    const perms = this.permissionsOf(claims[this.claim]);
    if (typeof perms === 'string') return refuse('claims', `"${this.claim}": ${perms}`);
    const principal: Principal = {
      name: claims.sub as string,
      roles: perms.roles,
      rules: perms.rules,
      source: 'jwt',
      ...(perms.tenant !== undefined ? { tenant: perms.tenant } : {}),
      ...(expiresAtMs !== undefined ? { expiresAtMs } : {}),
    };
    return { ok: true, principal };
  }

  /** The permission claim, or what is wrong with it. */
  private permissionsOf(value: unknown): { roles: string[]; rules: Rule[]; tenant?: string } | string {
    if (value === undefined) return { roles: [], rules: [] };
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'must be an object';
    const o = value as Record<string, unknown>;
    for (const key of Object.keys(o)) if (!CLAIM_KEYS.has(key)) return `unknown field ${JSON.stringify(key)} (roles, allow, tenant)`;
    const roles = o['roles'] ?? [];
    if (!Array.isArray(roles) || roles.length > MAX_ROLES) return `"roles" must be a list of at most ${MAX_ROLES} role names`;
    for (const r of roles) {
      const problem = roleNameProblem(r);
      if (problem !== null) return `"roles": ${problem}`;
      if (this.options.knownRoles !== undefined && !this.options.knownRoles.has(r as string)) return `"roles": unknown role ${JSON.stringify(r)}`;
    }
    const rules = o['allow'] ?? [];
    const problem = rulesProblem(rules);
    if (problem !== null) return `"allow": ${problem}`;
    if (o['tenant'] !== undefined && tenantNameProblem(o['tenant']) !== null) return `"tenant": ${tenantNameProblem(o['tenant'])}`;
    return { roles: roles as string[], rules: rules as Rule[], ...(o['tenant'] !== undefined ? { tenant: o['tenant'] as string } : {}) };
  }
}
