import { exportJWK, exportPKCS8, exportSPKI, generateKeyPair, generateSecret, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTokenVerifier, tokenRefusalError, type TokenResult, type TokenVerifier, type TokenVerifierOptions } from '../../src/security/tokens.js';
import { mulberry32, testSeed } from '../support/seeded-prng.js';

const NOW = 1_700_000_000_000;
const SEC = Math.floor(NOW / 1000);
const b64url = (s: string): string => Buffer.from(s).toString('base64url');

interface Pair {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  pem: string;
}
let hsSecret: Uint8Array;
let rs: Pair;
let es: Pair;
let ed: Pair;
let jwksKey: Pair;
let jwksOther: Pair;
let stranger: Pair;

async function pair(alg: 'RS256' | 'ES256' | 'EdDSA'): Promise<Pair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { privateKey, publicKey, pem: await exportSPKI(publicKey) };
}

beforeAll(async () => {
  const secret = await generateSecret('HS256', { extractable: true });
  hsSecret = Buffer.from((await exportJWK(secret)).k!, 'base64url');
  [rs, es, ed, jwksKey, jwksOther, stranger] = await Promise.all([pair('RS256'), pair('ES256'), pair('EdDSA'), pair('ES256'), pair('RS256'), pair('RS256')]);
});

function claims(extra: JWTPayload = {}): JWTPayload {
  return { sub: 'alice', iss: 'https://app.example', aud: 'weir', iat: SEC, exp: SEC + 300, ...extra };
}

async function sign(alg: string, key: CryptoKey | Uint8Array, payload: JWTPayload = claims(), kid?: string): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg, ...(kid !== undefined ? { kid } : {}) }).sign(key);
}

async function verifier(overrides: Partial<TokenVerifierOptions> = {}): Promise<TokenVerifier> {
  const jwks = {
    keys: [
      { ...(await exportJWK(jwksKey.publicKey)), kid: 'set-1', alg: 'ES256' },
      { ...(await exportJWK(jwksOther.publicKey)), alg: 'RS256' },
      { ...(await exportJWK(rs.publicKey)), alg: 'RS256' },
    ],
  };
  return createTokenVerifier({
    keys: { hs256: [{ secret: hsSecret }], publicKeys: [{ pem: rs.pem, alg: 'RS256' }, { pem: es.pem, alg: 'ES256' }, { pem: ed.pem, alg: 'EdDSA' }], jwks },
    issuer: 'https://app.example',
    audience: 'weir',
    clockSkewMs: 30_000,
    now: () => NOW,
    ...overrides,
  });
}

function refused(result: TokenResult): { code: string; reason: string } {
  expect(result.ok).toBe(false);
  if (result.ok) throw new Error('unreachable');
  expect(result.message).not.toMatch(/eyJ/);
  return { code: result.code, reason: result.reason };
}

describe('valid tokens', () => {
  it.each(['HS256', 'RS256', 'ES256', 'EdDSA'] as const)('%s', async (alg) => {
    const key = { HS256: () => hsSecret, RS256: () => rs.privateKey, ES256: () => es.privateKey, EdDSA: () => ed.privateKey }[alg]();
    const v = await verifier();
    const result = await v.verify(await sign(alg, key));
    expect(result).toEqual({ ok: true, principal: { name: 'alice', roles: [], rules: [], source: 'jwt', expiresAtMs: (SEC + 300) * 1000 } });
  });

  it('a JWKS key chosen by kid, and one of several matching keys without a kid', async () => {
    const v = await verifier();
    expect((await v.verify(await sign('ES256', jwksKey.privateKey, claims(), 'set-1'))).ok).toBe(true);
    expect((await v.verify(await sign('RS256', jwksOther.privateKey))).ok).toBe(true);
    // A kid the set does not have: only the configured ES256 key without a kid is tried.
    expect(refused(await v.verify(await sign('ES256', jwksKey.privateKey, claims(), 'set-9')))).toEqual({ code: 'UNAUTHORIZED', reason: 'signature' });
  });

  it('a JWKS alone, read from its file content', async () => {
    const v = await createTokenVerifier({ keys: { jwks: { keys: [{ ...(await exportJWK(jwksKey.publicKey)), kid: 'k' }] } }, now: () => NOW });
    expect((await v.verify(await sign('ES256', jwksKey.privateKey, claims(), 'k'))).ok).toBe(true);
    expect((await v.verify(await sign('ES256', jwksKey.privateKey, claims()))).ok).toBe(true);
    expect(refused(await v.verify(await sign('ES256', es.privateKey, claims(), 'k')))).toEqual({ code: 'UNAUTHORIZED', reason: 'signature' });
    expect(refused(await v.verify(await sign('ES256', jwksKey.privateKey, claims(), 'other')))).toEqual({ code: 'UNAUTHORIZED', reason: 'no-key' });
    expect(refused(await v.verify(await sign('EdDSA', ed.privateKey)))).toEqual({ code: 'UNAUTHORIZED', reason: 'no-key' });
  });

  it('several HS256 secrets: the kid picks one, or each is tried', async () => {
    const other = new Uint8Array(32).fill(7);
    const v = await createTokenVerifier({ keys: { hs256: [{ secret: hsSecret, kid: 'a' }, { secret: other, kid: 'b' }] }, now: () => NOW });
    expect((await v.verify(await sign('HS256', other, claims(), 'b'))).ok).toBe(true);
    expect((await v.verify(await sign('HS256', other))).ok).toBe(true);
    expect(refused(await v.verify(await sign('HS256', other, claims(), 'a')))).toEqual({ code: 'UNAUTHORIZED', reason: 'signature' });
  });

  it('maps the permission claim to the principal', async () => {
    const v = await verifier({ knownRoles: new Set(['chat']) });
    const weir = { roles: ['chat'], allow: [{ allow: ['consume'], topics: ['rooms.42.*'] }], tenant: 'acme' };
    const result = await v.verify(await sign('ES256', es.privateKey, claims({ weir, sub: 'user-7' })));
    expect(result).toEqual({
      ok: true,
      principal: { name: 'user-7', roles: ['chat'], rules: weir.allow, tenant: 'acme', source: 'jwt', expiresAtMs: (SEC + 300) * 1000 },
    });
  });

  it('another claim name', async () => {
    const v = await verifier({ claim: 'perm' });
    const result = await v.verify(await sign('HS256', hsSecret, claims({ perm: { roles: ['x'] } })));
    expect(result.ok && result.principal.roles).toEqual(['x']);
  });
});

describe('refused tokens', () => {
  const cases: [string, () => Promise<string>, string, string, (() => Partial<TokenVerifierOptions>)?][] = [
    ['expired', () => sign('HS256', hsSecret, claims({ exp: SEC - 31 })), 'TOKEN_EXPIRED', 'expired'],
    ['not yet valid', () => sign('HS256', hsSecret, claims({ nbf: SEC + 31 })), 'UNAUTHORIZED', 'not-yet-valid'],
    ['wrong audience', () => sign('HS256', hsSecret, claims({ aud: 'other' })), 'UNAUTHORIZED', 'audience'],
    ['no audience', () => sign('HS256', hsSecret, claims({ aud: undefined })), 'UNAUTHORIZED', 'audience'],
    ['wrong issuer', () => sign('HS256', hsSecret, claims({ iss: 'https://evil.example' })), 'UNAUTHORIZED', 'issuer'],
    ['wrong signature (another key)', () => sign('RS256', stranger.privateKey), 'UNAUTHORIZED', 'signature'],
    ['wrong signature (another secret)', () => sign('HS256', new Uint8Array(32).fill(1)), 'UNAUTHORIZED', 'signature'],
    ['alg none', async () => `${b64url('{"alg":"none","typ":"JWT"}')}.${b64url(JSON.stringify(claims()))}.`, 'UNAUTHORIZED', 'algorithm'],
    ['alg none with a signature', async () => `${b64url('{"alg":"none"}')}.${b64url(JSON.stringify(claims()))}.c2ln`, 'UNAUTHORIZED', 'algorithm'],
    ['alg None', async () => `${b64url('{"alg":"None"}')}.${b64url(JSON.stringify(claims()))}.c2ln`, 'UNAUTHORIZED', 'algorithm'],
    ['an algorithm not configured', () => sign('HS512', new Uint8Array(64).fill(2)), 'UNAUTHORIZED', 'algorithm'],
    ['an algorithm not allowed', () => sign('HS256', hsSecret), 'UNAUTHORIZED', 'algorithm', () => ({ algorithms: ['RS256'] })],
    ['the RSA public key as an HMAC secret (alg confusion)', async () => sign('HS256', new TextEncoder().encode(rs.pem)), 'UNAUTHORIZED', 'no-key', () => ({ keys: { publicKeys: [{ pem: rs.pem, alg: 'RS256' }] } })],
    ['truncated', async () => (await sign('RS256', rs.privateKey)).slice(0, -10), 'UNAUTHORIZED', 'signature'],
    ['truncated to two parts', async () => (await sign('RS256', rs.privateKey)).split('.').slice(0, 2).join('.'), 'UNAUTHORIZED', 'malformed'],
    ['garbage', async () => 'not a token at all', 'UNAUTHORIZED', 'malformed'],
    ['garbage in base64url', async () => 'AAAA.BBBB.CCCC', 'UNAUTHORIZED', 'malformed'],
    ['header not JSON', async () => `${b64url('{alg')}.${b64url('{}')}.AAAA`, 'UNAUTHORIZED', 'malformed'],
    ['oversized', async () => 'a'.repeat(8193), 'UNAUTHORIZED', 'too-large'],
    ['oversized but valid', () => sign('HS256', hsSecret, claims({ pad: 'x'.repeat(9000) })), 'UNAUTHORIZED', 'too-large'],
    ['no sub', () => sign('HS256', hsSecret, claims({ sub: undefined })), 'UNAUTHORIZED', 'claims'],
    ['sub with a newline', () => sign('HS256', hsSecret, claims({ sub: 'a\nb' })), 'UNAUTHORIZED', 'claims'],
    ['no exp', () => sign('HS256', hsSecret, claims({ exp: undefined })), 'UNAUTHORIZED', 'claims'],
    ['claim not an object', () => sign('HS256', hsSecret, claims({ weir: 'admin' })), 'UNAUTHORIZED', 'claims'],
    ['claim with an unknown field', () => sign('HS256', hsSecret, claims({ weir: { roles: [], superuser: true } })), 'UNAUTHORIZED', 'claims'],
    ['claim roles not a list', () => sign('HS256', hsSecret, claims({ weir: { roles: 'chat' } })), 'UNAUTHORIZED', 'claims'],
    ['claim with an unknown role', () => sign('HS256', hsSecret, claims({ weir: { roles: ['root'] } })), 'UNAUTHORIZED', 'claims', () => ({ knownRoles: new Set(['chat']) })],
    ['claim with a bad rule', () => sign('HS256', hsSecret, claims({ weir: { allow: [{ allow: ['eat'], topics: ['#'] }] } })), 'UNAUTHORIZED', 'claims'],
    ['claim naming an internal topic', () => sign('HS256', hsSecret, claims({ weir: { allow: [{ allow: ['consume'], topics: ['__txn_half'] }] } })), 'UNAUTHORIZED', 'claims'],
    ['claim with a bad tenant', () => sign('HS256', hsSecret, claims({ weir: { tenant: 'a/b' } })), 'UNAUTHORIZED', 'claims'],
    ['too long a life', () => sign('HS256', hsSecret, claims({ exp: SEC + 3600 })), 'UNAUTHORIZED', 'lifetime', () => ({ maxLifetimeMs: 600_000 })],
    ['no exp with a maximum life', () => sign('HS256', hsSecret, claims({ exp: undefined })), 'UNAUTHORIZED', 'lifetime', () => ({ maxLifetimeMs: 600_000, requireExpiry: false })],
  ];
  it.each(cases)('%s', async (_label, make, code, reason, overrides) => {
    const token = await make();
    const v = await verifier(overrides?.() ?? {});
    expect(refused(await v.verify(token))).toEqual({ code, reason });
  });

  it('a payload that is not JSON', async () => {
    const { createHmac } = await import('node:crypto');
    const input = `${b64url('{"alg":"HS256"}')}.${b64url('not json')}`;
    const token = `${input}.${createHmac('sha256', hsSecret).update(input).digest('base64url')}`;
    expect(refused(await (await verifier()).verify(token))).toEqual({ code: 'UNAUTHORIZED', reason: 'malformed' });
  });

  it('non-strings', async () => {
    const v = await verifier();
    for (const t of [undefined, null, 42, {}, [], new Uint8Array(10)]) expect(refused(await v.verify(t))).toEqual({ code: 'UNAUTHORIZED', reason: 'malformed' });
  });

  it('the clock-skew allowance: just expired or just not yet valid is still accepted within it', async () => {
    const v = await verifier();
    expect((await v.verify(await sign('HS256', hsSecret, claims({ exp: SEC - 29 })))).ok).toBe(true);
    expect((await v.verify(await sign('HS256', hsSecret, claims({ nbf: SEC + 29 })))).ok).toBe(true);
    const strict = await verifier({ clockSkewMs: 0 });
    expect(refused(await strict.verify(await sign('HS256', hsSecret, claims({ exp: SEC }))))).toEqual({ code: 'TOKEN_EXPIRED', reason: 'expired' });
    expect(refused(await strict.verify(await sign('HS256', hsSecret, claims({ nbf: SEC + 1 }))))).toMatchObject({ reason: 'not-yet-valid' });
  });

  it('checks signatures before claims: an expired token with a bad signature is a bad signature', async () => {
    const v = await verifier();
    expect(refused(await v.verify(await sign('RS256', stranger.privateKey, claims({ exp: SEC - 1000 }))))).toEqual({ code: 'UNAUTHORIZED', reason: 'signature' });
  });

  it('no exp is fine when not required; the principal then has no expiry', async () => {
    const v = await verifier({ requireExpiry: false });
    const result = await v.verify(await sign('HS256', hsSecret, claims({ exp: undefined })));
    expect(result.ok && result.principal.expiresAtMs).toBeUndefined();
  });

  it('a life within the maximum is accepted', async () => {
    const v = await verifier({ maxLifetimeMs: 600_000 });
    expect((await v.verify(await sign('HS256', hsSecret, claims({ exp: SEC + 600 })))).ok).toBe(true);
  });

  it('a refusal becomes the error a front door answers with', () => {
    const err = tokenRefusalError({ ok: false, code: 'TOKEN_EXPIRED', reason: 'expired', message: 'the token has expired' });
    expect(err).toMatchObject({ code: 'TOKEN_EXPIRED', retryable: false, details: { reason: 'expired' } });
  });

  it('a thousand random and mutated tokens are all refused, without a throw', async () => {
    const seed = testSeed(777);
    const rnd = mulberry32(seed);
    const v = await verifier();
    const valid = await Promise.all([sign('HS256', hsSecret), sign('RS256', rs.privateKey), sign('ES256', es.privateKey), sign('EdDSA', ed.privateKey)]);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.';
    const reasons = new Map<string, number>();
    for (let i = 0; i < 1000; i++) {
      const base = valid[rnd.int(0, valid.length - 1)]!;
      let token: string;
      switch (rnd.int(0, 5)) {
        case 0: {
          const bytes = new Uint8Array(rnd.int(0, 600));
          rnd.fill(bytes);
          token = Buffer.from(bytes).toString('latin1');
          break;
        }
        case 1:
          token = Array.from({ length: rnd.int(0, 600) }, () => alphabet[rnd.int(0, alphabet.length - 1)]).join('');
          break;
        case 2: {
          // Change one character of the header or the payload (the signed text).
          const end = base.lastIndexOf('.');
          const at = rnd.int(0, end - 1);
          if (base[at] === '.') {
            token = base.slice(0, at) + base.slice(at + 1);
            break;
          }
          const c = alphabet[rnd.int(0, 63)]!;
          token = base.slice(0, at) + (c === base[at] ? (c === 'A' ? 'B' : 'A') : c) + base.slice(at + 1);
          break;
        }
        case 3: {
          // Change a signature character (not the last: its low bits may be padding).
          const start = base.lastIndexOf('.') + 1;
          const at = rnd.int(start, base.length - 2);
          const c = alphabet[rnd.int(0, 63)]!;
          token = base.slice(0, at) + (c === base[at] ? (c === 'A' ? 'B' : 'A') : c) + base.slice(at + 1);
          break;
        }
        case 4:
          token = base.slice(0, rnd.int(0, base.length - 1));
          break;
        default: {
          // Parts of different tokens spliced together.
          const other = valid[rnd.int(0, valid.length - 1)]!;
          const [h, p] = base.split('.');
          const s = other.split('.')[2];
          token = other === base ? `${h}.${p}.${s}x` : `${h}.${p}.${s}`;
        }
      }
      let result: TokenResult;
      try {
        result = await v.verify(token);
      } catch (e) {
        throw new Error(`seed ${seed} token ${i} threw: ${String(e)}`);
      }
      expect(result.ok, `seed ${seed} token ${i}: ${token}`).toBe(false);
      if (!result.ok) reasons.set(result.reason, (reasons.get(result.reason) ?? 0) + 1);
    }
    // The mix reached the signature check, not only the parser.
    expect(reasons.get('signature') ?? 0).toBeGreaterThan(100);
    expect(reasons.get('malformed') ?? 0).toBeGreaterThan(100);
  });
});

describe('configuration', () => {
  it.each([
    ['no keys', { keys: {} }, /no keys/],
    ['a short HS256 secret', { keys: { hs256: [{ secret: 'short' }] } }, /shorter than 32 bytes/],
    ['alg none allowed', { keys: { hs256: [{ secret: 'x'.repeat(32) }] }, algorithms: ['none'] }, /"none" is not one of/],
    ['a registered claim as the permission claim', { keys: { hs256: [{ secret: 'x'.repeat(32) }] }, claim: 'sub' }, /registered claim/],
    ['not a PEM', { keys: { publicKeys: [{ pem: 'hello', alg: 'RS256' }] } }, /not a PEM public key/],
    ['a JWKS without keys', { keys: { jwks: { nokeys: [] } } }, /"keys" list/],
  ] as [string, TokenVerifierOptions, RegExp][])('refuses %s with BAD_CONFIG', async (_label, options, message) => {
    await expect(createTokenVerifier(options)).rejects.toMatchObject({ code: 'BAD_CONFIG', message: expect.stringMatching(message) });
  });

  it('refuses private keys where public keys belong', async () => {
    await expect(createTokenVerifier({ keys: { publicKeys: [{ pem: await exportPKCS8(rs.privateKey), alg: 'RS256' }] } })).rejects.toMatchObject({ code: 'BAD_CONFIG' });
    await expect(createTokenVerifier({ keys: { jwks: { keys: [await exportJWK(es.privateKey)] } } })).rejects.toMatchObject({ code: 'BAD_CONFIG', message: expect.stringMatching(/private/) });
    await expect(createTokenVerifier({ keys: { publicKeys: [{ pem: es.pem, alg: 'RS256' }] } })).rejects.toMatchObject({ code: 'BAD_CONFIG' });
  });
});
