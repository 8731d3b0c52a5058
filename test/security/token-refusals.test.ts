/**
 * Tokens a broker must refuse, sent in `hello` over real sockets to a live broker with JWT keys:
 * each kind of bad token gets its stable code and reason and the connection gets no data; a
 * thousand random and mutated tokens neither crash the broker nor grow its memory; and repeated
 * failures from one address end in AUTH_RATE_LIMITED with the default limits.
 */
import { randomBytes } from 'node:crypto';
import v8 from 'node:v8';
import vm from 'node:vm';
import { SignJWT, type JWTPayload } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, type WeirClient } from '../../src/client/index.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { RawClient, type Frame } from '../support/raw-client.js';
import { mulberry32, testSeed } from '../support/seeded-prng.js';
import { SUPERUSER, writeJwtSecret } from '../support/security.js';
import { tmpDir } from '../support/tmp-dir.js';

const ISSUER = 'https://app.example.com';
const AUDIENCE = 'weir';
const ROOM_42 = { allow: [{ allow: ['consume', 'describe'], topics: ['rooms.42.*'] }] };

const tmp = tmpDir('weir-token-refusals-');
const jwt = writeJwtSecret(tmp.dir);
const raws: RawClient[] = [];
const sdks: WeirClient[] = [];
afterEach(async () => {
  for (const c of raws.splice(0)) c.close();
  for (const c of sdks.splice(0)) await c.close().catch(() => undefined);
});
afterAll(() => tmp.cleanup());

async function raw(url: string): Promise<RawClient> {
  const c = await RawClient.connect(url);
  raws.push(c);
  return c;
}

const b64url = (v: string | Uint8Array): string => Buffer.from(v).toString('base64url');
const nowSec = (): number => Math.floor(Date.now() / 1000);

/** A token signed with `secret` (the broker's by default) over the usual claims plus `extra`. */
function mint(extra: JWTPayload = {}, secret: Uint8Array = jwt.secret, alg = 'HS256'): Promise<string> {
  const now = nowSec();
  return new SignJWT({ sub: 'user-7', iss: ISSUER, aud: AUDIENCE, iat: now, exp: now + 600, weir: ROOM_42, ...extra }).setProtectedHeader({ alg }).sign(secret);
}

async function startJwtBroker(authFailureLimits?: Record<string, number>): Promise<TestBroker> {
  return startTestBroker({ security: { jwt: { secretFile: jwt.file, issuer: ISSUER, audience: AUDIENCE }, ...(authFailureLimits !== undefined ? { authFailureLimits } : {}) } });
}

/** Generous limits: the failures of these tests are not guesses, and must not be delayed. */
const GENEROUS = { freeFailures: 1_000_000, refuseAfter: 1_000_001 };

describe('each kind of bad token', () => {
  let tb: TestBroker;
  beforeAll(async () => {
    tb = await startJwtBroker(GENEROUS);
    const admin = await connect(tb.url, { reconnect: false, token: await mint({ sub: 'admin', weir: { allow: [SUPERUSER] } }) });
    await admin.createTopic('rooms.42.a', { partitions: 1 });
    await admin.produce('rooms.42.a', [{ value: 'for members only' }]);
    await admin.close();
  });
  afterAll(async () => {
    await tb?.stop();
  });

  const cases: Array<[string, () => Promise<string>, { code: string; reason: string }]> = [
    ['expired', () => mint({ iat: nowSec() - 3600, exp: nowSec() - 600 }), { code: 'TOKEN_EXPIRED', reason: 'expired' }],
    ['not yet valid (nbf)', () => mint({ nbf: nowSec() + 600 }), { code: 'UNAUTHORIZED', reason: 'not-yet-valid' }],
    ['for another audience', () => mint({ aud: 'another-service' }), { code: 'UNAUTHORIZED', reason: 'audience' }],
    ['from another issuer', () => mint({ iss: 'https://evil.example' }), { code: 'UNAUTHORIZED', reason: 'issuer' }],
    ['signed with another secret', () => mint({}, new TextEncoder().encode('another secret, also at least 32 bytes long')), { code: 'UNAUTHORIZED', reason: 'signature' }],
    [
      'with claims changed after signing',
      async () => {
        const [h, , s] = (await mint()).split('.');
        return `${h}.${b64url(JSON.stringify({ sub: 'user-7', iss: ISSUER, aud: AUDIENCE, exp: nowSec() + 600, weir: { allow: [SUPERUSER] } }))}.${s}`;
      },
      { code: 'UNAUTHORIZED', reason: 'signature' },
    ],
    ['alg: none, unsigned', async () => `${b64url('{"alg":"none","typ":"JWT"}')}.${b64url(JSON.stringify({ sub: 'user-7', iss: ISSUER, aud: AUDIENCE, exp: nowSec() + 600, weir: ROOM_42 }))}.`, { code: 'UNAUTHORIZED', reason: 'algorithm' }],
    ['alg: none, with a signature', async () => `${b64url('{"alg":"none"}')}.${(await mint()).split('.')[1]}.${b64url('x')}`, { code: 'UNAUTHORIZED', reason: 'algorithm' }],
    ['truncated (signature cut short)', async () => (await mint()).slice(0, -8), { code: 'UNAUTHORIZED', reason: 'signature' }],
    ['truncated (no signature)', async () => (await mint()).split('.').slice(0, 2).join('.'), { code: 'UNAUTHORIZED', reason: 'malformed' }],
    ['garbage', async () => 'this is not a token', { code: 'UNAUTHORIZED', reason: 'malformed' }],
    ['garbage that looks like a JWT', async () => `${b64url(randomBytes(30))}.${b64url(randomBytes(60))}.${b64url(randomBytes(32))}`, { code: 'UNAUTHORIZED', reason: 'malformed' }],
    ['oversized (100 KB)', async () => `${(await mint()).split('.')[0]}.${b64url(JSON.stringify({ sub: 'user-7', pad: 'x'.repeat(100_000) }))}.${b64url(randomBytes(32))}`, { code: 'UNAUTHORIZED', reason: 'too-large' }],
  ];

  it.each(cases)('%s: refused, and the connection gets no data', async (_name, token, expected) => {
    const c = await raw(tb.url);
    const answer = await c.request({ op: 'hello', version: 1, token: await token() });
    expect(answer).toMatchObject({ op: 'error', code: expected.code, retryable: false, details: { reason: expected.reason } });
    // The refusal does not echo the token.
    expect(JSON.stringify(answer)).not.toMatch(/eyJ/);
    // Still unauthenticated: nothing is read, listed or subscribed.
    for (const request of [
      { op: 'fetch', topic: 'rooms.42.a', partition: 0, offset: 0 },
      { op: 'subscribe', topic: 'rooms.42.a', from: 'earliest', credits: 100 },
      { op: 'describe_topic', topic: 'rooms.42.a' },
      { op: 'list_topics' },
    ]) {
      expect(await c.request(request), request.op).toMatchObject({ op: 'error', code: 'UNAUTHORIZED' });
    }
    await new Promise((r) => setTimeout(r, 100));
    expect(c.frames).toEqual([]);
  });

  it('while a valid token for the same claims is let in and reads (so the refusals above are the token\'s)', async () => {
    const c = await raw(tb.url);
    expect(await c.request({ op: 'hello', version: 1, token: await mint() })).toMatchObject({ op: 'result' });
    expect(await c.request({ op: 'fetch', topic: 'rooms.42.a', partition: 0, offset: 0 })).toMatchObject({ op: 'result', count: 1 });
  });
});

/** Forces a full collection (vitest's workers run without --expose-gc). */
function collectGarbage(): void {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
}

describe('a thousand random tokens', () => {
  it('are all refused, without crashing the broker or growing its memory; a valid client is served after', async () => {
    const tb = await startJwtBroker(GENEROUS);
    try {
      const seed = testSeed(23);
      const prng = mulberry32(seed);
      const random = (): number => prng.float();
      const int = (n: number): number => Math.floor(random() * n);
      const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => int(256));
      const valid = await mint();
      const jsonValues: unknown[] = [null, 0, -1, 1e308, 'none', 'HS256', 'RS256', '', [], {}, { weir: 1 }, 'x'.repeat(300), true, [SUPERUSER], { allow: [SUPERUSER] }];
      const anyJson = (): unknown => jsonValues[int(jsonValues.length)];
      const mutated = (): string => {
        const t = valid.split('');
        for (let i = 0, n = 1 + int(4); i < n; i++) {
          const at = int(t.length);
          const op = int(3);
          const ch = 'ABCxyz019-_.='[int(13)]!;
          if (op === 0) t[at] = ch;
          else if (op === 1) t.splice(at, 1);
          else t.splice(at, 0, ch);
        }
        return t.join('');
      };
      const sameBytes = (a: string, b: string): boolean => {
        const pa = a.split('.');
        const pb = b.split('.');
        return pa.length === pb.length && pa.every((p, i) => /^[A-Za-z0-9_-]*$/.test(p) && Buffer.from(p, 'base64url').equals(Buffer.from(pb[i]!, 'base64url')));
      };
      const kinds: Array<() => string> = [
        // Random bytes, base64url, in one to three parts.
        () => Array.from({ length: 1 + int(3) }, () => b64url(bytes(int(400)))).join('.'),
        // A valid token with a few characters changed, removed or added; not one that only spells
        // the same bytes differently (base64url's last character has unused bits, which jose ignores).
        () => {
          for (;;) {
            const t = mutated();
            if (!sameBytes(t, valid)) return t;
          }
        },
        // Random JSON headers and claims, with the real signature or a random one.
        () => {
          const header: Record<string, unknown> = { alg: ['HS256', 'none', 'RS256', 'ES256', 'EdDSA', 'HS512', anyJson()][int(7)] };
          if (random() < 0.3) header['kid'] = anyJson();
          if (random() < 0.2) header['crit'] = anyJson();
          if (random() < 0.2) header['b64'] = false;
          const claims: Record<string, unknown> = { sub: random() < 0.8 ? 'user-7' : anyJson(), iss: random() < 0.8 ? ISSUER : anyJson(), aud: random() < 0.8 ? AUDIENCE : anyJson(), exp: random() < 0.8 ? nowSec() + 600 : anyJson() };
          if (random() < 0.5) claims['weir'] = random() < 0.5 ? { allow: [SUPERUSER] } : anyJson();
          if (random() < 0.2) claims['nbf'] = anyJson();
          const signature = random() < 0.5 ? valid.split('.')[2]! : b64url(bytes(int(64)));
          return `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}.${signature}`;
        },
        // Not JSON inside base64url.
        () => `${b64url(`{"alg":"HS256"${'}'.repeat(int(2))}`)}.${b64url(bytes(int(100)))}.${valid.split('.')[2]!}`,
      ];
      const tokens = Array.from({ length: 1000 }, (_, i) => kinds[i % kinds.length]!());
      expect(new Set(tokens).has(valid)).toBe(false);

      const connections = await Promise.all(Array.from({ length: 4 }, () => raw(tb.url)));
      const send = async (batch: string[]): Promise<Frame[]> => {
        const answers: Frame[] = [];
        await Promise.all(
          connections.map(async (c, k) => {
            for (let i = k; i < batch.length; i += connections.length) answers.push(await c.request({ op: 'hello', version: 1, token: batch[i] }));
          }),
        );
        return answers;
      };

      // A first round warms up what a refusal allocates once (jose, caches), then the heap is measured.
      const warm = await send(tokens.slice(0, 200));
      collectGarbage();
      const heapBefore = process.memoryUsage().heapUsed;
      const rssBefore = process.memoryUsage().rss;
      const answers = [...warm, ...(await send(tokens.slice(200)))];
      collectGarbage();
      const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
      const rssGrowth = process.memoryUsage().rss - rssBefore;

      expect(answers, `TEST_SEED=${seed}`).toHaveLength(1000);
      const codes = new Map<string, number>();
      for (const a of answers) {
        expect(a.op).toBe('error');
        codes.set(String(a.code), (codes.get(String(a.code)) ?? 0) + 1);
      }
      // Every one refused as a bad credential (a random exp in the past may say TOKEN_EXPIRED).
      expect([...codes.keys()].every((c) => c === 'UNAUTHORIZED' || c === 'TOKEN_EXPIRED'), `TEST_SEED=${seed}: ${JSON.stringify([...codes])}`).toBe(true);
      expect(codes.get('UNAUTHORIZED') ?? 0).toBeGreaterThan(900);
      for (const c of connections) expect(c.closed).toBeNull();
      // The broker in this process holds nothing per refused token.
      expect(heapGrowth, `heap grew ${heapGrowth} bytes`).toBeLessThan(16 << 20);
      expect(rssGrowth, `rss grew ${rssGrowth} bytes`).toBeLessThan(50 << 20);
      expect(tb.broker.core.securityStats().authFailures).toBeGreaterThanOrEqual(codes.get('UNAUTHORIZED') ?? 0);

      // Still serving: a valid client connects and reads.
      const admin = await connect(tb.url, { reconnect: false, token: await mint({ sub: 'admin', weir: { allow: [SUPERUSER] } }) });
      sdks.push(admin);
      await admin.createTopic('rooms.42.after', { partitions: 1 });
      await admin.produce('rooms.42.after', [{ value: 'still here' }]);
      const member = await connect(tb.url, { reconnect: false, token: valid });
      sdks.push(member);
      const got = await member.fetch('rooms.42.after', 0, 0);
      expect(got.messages.map((m) => new TextDecoder().decode(m.value))).toEqual(['still here']);
    } finally {
      for (const c of sdks.splice(0)) await c.close().catch(() => undefined);
      await tb.stop();
    }
  });
});

describe('repeated failures from one address, with the default limits', () => {
  it('are refused with AUTH_RATE_LIMITED, even a valid token then', async () => {
    const tb = await startJwtBroker();
    try {
      const c = await raw(tb.url);
      const garbage = 'not.a.token';
      const codes: string[] = [];
      // 5 free failures, then delays of 500 ms doubling up to 10 s: refusals start at the 21st attempt.
      // Instead of waiting out those delays, attempts go in parallel on several connections.
      const others = await Promise.all(Array.from({ length: 24 }, () => raw(tb.url)));
      for (let i = 0; i < 5; i++) codes.push(String((await c.request({ op: 'hello', version: 1, token: garbage })).code));
      expect(codes).toEqual(Array.from({ length: 5 }, () => 'UNAUTHORIZED'));
      const later = await Promise.all(others.map((o) => o.request({ op: 'hello', version: 1, token: garbage }, 30_000)));
      expect(later.every((f) => f.code === 'UNAUTHORIZED')).toBe(true);
      const limited = await c.request({ op: 'hello', version: 1, token: await mint() });
      expect(limited).toMatchObject({ op: 'error', code: 'AUTH_RATE_LIMITED', details: { retryAfterMs: expect.any(Number) } });
    } finally {
      await tb.stop();
    }
  });
});
