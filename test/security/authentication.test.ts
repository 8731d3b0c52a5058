/**
 * Authentication in `hello`, on a real broker over real sockets: a users file (password, API key),
 * the shared token, JSON Web Tokens (a connection whose token expires is closed with
 * TOKEN_EXPIRED), the limit on failed attempts per address, and a security configuration that
 * cannot be used refusing the start with BAD_CONFIG.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, isWeirError, type WeirClient } from '../../src/client/index.js';
import { Broker } from '../../src/broker.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { RawClient } from '../support/raw-client.js';
import { SUPERUSER, signToken, writeJwtSecret, writeRolesFile, writeUsersFile } from '../support/security.js';
import { tmpDir } from '../support/tmp-dir.js';
import { refusal } from '../support/refusal.js';

const tmp = tmpDir('weir-authentication-');
afterAll(() => tmp.cleanup());
const raws: RawClient[] = [];
const sdks: WeirClient[] = [];
afterEach(async () => {
  for (const c of raws.splice(0)) c.close();
  for (const c of sdks.splice(0)) await c.close().catch(() => undefined);
});

async function raw(url: string): Promise<RawClient> {
  const c = await RawClient.connect(url);
  raws.push(c);
  return c;
}

async function sdk(url: string, options: Parameters<typeof connect>[1]): Promise<WeirClient> {
  const c = await connect(url, { reconnect: false, ...options });
  sdks.push(c);
  return c;
}

describe('a users file', () => {
  let tb: TestBroker;
  let keys: Record<string, string>;
  beforeAll(async () => {
    const roles = writeRolesFile(tmp.dir, { admin: [SUPERUSER] });
    const users = await writeUsersFile(tmp.dir, [
      { name: 'alice', roles: ['admin'], password: 'correct horse', apiKey: true },
      { name: 'bob', roles: [], password: 'bob-password' },
    ]);
    keys = users.keys;
    tb = await startTestBroker({
      security: { usersFile: users.file, rolesFile: roles, authFailureLimits: { freeFailures: 2, refuseAfter: 4, delayMs: 20, maxDelayMs: 40, windowMs: 60_000 } },
    });
  });
  afterAll(async () => {
    await tb?.stop();
  });

  it('lets a user in with the password, or with an API key, through the SDK', async () => {
    const byPassword = await sdk(tb.url, { user: 'alice', password: 'correct horse' });
    expect((await byPassword.createTopic('t1', { partitions: 1 })).created).toBe(true);
    const byKey = await sdk(tb.url, { token: keys['alice']! });
    expect((await byKey.listTopics()).map((t) => t.topic)).toEqual(['t1']);
    // Authenticated, but bob's roles grant nothing.
    const bob = await sdk(tb.url, { user: 'bob', password: 'bob-password' });
    expect(await bob.listTopics()).toEqual([]);
    expect(await refusal(bob.createTopic('t2', { partitions: 1 }))).toMatchObject({ code: 'FORBIDDEN', details: { action: 'create', resource: 'topic:t2' } });
  });

  it('refuses a wrong password, an unknown user, a wrong API key and missing credentials with UNAUTHORIZED', async () => {
    expect(await refusal(sdk(tb.url, { user: 'alice', password: 'wrong' }))).toMatchObject({ code: 'UNAUTHORIZED' });
    expect(await refusal(sdk(tb.url, { user: 'mallory', password: 'correct horse' }))).toMatchObject({ code: 'UNAUTHORIZED' });
    const forged = keys['alice']!.slice(0, -4) + 'AAAA';
    expect(await refusal(sdk(tb.url, { token: forged }))).toMatchObject({ code: 'UNAUTHORIZED' });
    expect(await refusal(sdk(tb.url, {}))).toMatchObject({ code: 'UNAUTHORIZED' });
    const c = await raw(tb.url);
    expect(await c.request({ op: 'hello', version: 1 })).toMatchObject({ op: 'error', code: 'UNAUTHORIZED', details: { reason: 'missing' } });
    // A hello that failed leaves the connection unauthenticated; a right one then lets it in.
    expect(await c.request({ op: 'list_topics' })).toMatchObject({ op: 'error', code: 'UNAUTHORIZED' });
    expect(await c.request({ op: 'hello', version: 1, token: keys['alice']! })).toMatchObject({ op: 'result' });
    expect(await c.request({ op: 'list_topics' })).toMatchObject({ op: 'result' });
    // One principal per connection.
    expect(await c.request({ op: 'hello', version: 1, user: 'bob', password: 'bob-password' })).toMatchObject({ op: 'error', code: 'BAD_REQUEST' });
  });

  it('refuses an address after repeated failures (AUTH_RATE_LIMITED), even the right password then', async () => {
    // The failures of the test above counted too: this address is at or past the free ones.
    const failuresBefore = tb.broker.core.securityStats().authFailures;
    let limited: { code: string; details?: unknown } | undefined;
    for (let i = 0; i < 6 && limited === undefined; i++) {
      const r = await refusal(sdk(tb.url, { user: 'alice', password: `guess ${i}` }));
      if (r.code === 'AUTH_RATE_LIMITED') limited = r;
      else expect(r.code).toBe('UNAUTHORIZED');
    }
    expect(limited).toMatchObject({ code: 'AUTH_RATE_LIMITED', details: { retryAfterMs: expect.any(Number) } });
    expect(await refusal(sdk(tb.url, { user: 'alice', password: 'correct horse' }))).toMatchObject({ code: 'AUTH_RATE_LIMITED' });
    expect(tb.broker.core.securityStats().authFailures).toBeGreaterThan(failuresBefore);
  });
});

describe('a users file changed while the broker runs', () => {
  it('is read again: a user added later can log in, a removed one no longer', async () => {
    const dir = tmpDir('weir-users-reload-');
    const first = await writeUsersFile(dir.dir, [{ name: 'early', roles: [], apiKey: true }]);
    const tb = await startTestBroker({ security: { usersFile: first.file, authFailureLimits: { freeFailures: 1000, refuseAfter: 2000 } } });
    try {
      const early = await sdk(tb.url, { token: first.keys['early']! });
      await early.ping();
      const second = await writeUsersFile(dir.dir, [{ name: 'late', roles: [], apiKey: true }]);
      const deadline = Date.now() + 10_000;
      for (;;) {
        const r = await sdk(tb.url, { token: second.keys['late']! }).then(() => 'in', (e: unknown) => (isWeirError(e) ? e.code : String(e)));
        if (r === 'in') break;
        expect(r).toBe('UNAUTHORIZED');
        if (Date.now() > deadline) throw new Error('the changed users file was not read again');
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(await refusal(sdk(tb.url, { token: first.keys['early']! }))).toMatchObject({ code: 'UNAUTHORIZED' });
    } finally {
      for (const c of sdks.splice(0)) await c.close();
      await tb.stop();
      dir.cleanup();
    }
  });
});

describe('the shared token', () => {
  it('lets in who presents it (security.token, or gateway.token as before) and nobody else', async () => {
    for (const options of [{ security: { token: 'shared-secret-1' } }, { gateway: { token: 'shared-secret-1' } }]) {
      const tb = await startTestBroker(options);
      try {
        expect(tb.broker.authenticationRequired).toBe(true);
        const c = await sdk(tb.url, { token: 'shared-secret-1' });
        expect((await c.createTopic('x', { partitions: 1 })).created).toBe(true);
        expect(await refusal(sdk(tb.url, { token: 'shared-secret-2' }))).toMatchObject({ code: 'UNAUTHORIZED' });
        const anon = await raw(tb.url);
        expect(await anon.request({ op: 'list_topics' })).toMatchObject({ op: 'error', code: 'UNAUTHORIZED' });
      } finally {
        for (const c of sdks.splice(0)) await c.close();
        await tb.stop();
      }
    }
  });
});

describe('JSON Web Tokens', () => {
  let tb: TestBroker;
  let secret: Uint8Array;
  beforeAll(async () => {
    const jwt = writeJwtSecret(tmp.dir);
    secret = jwt.secret;
    tb = await startTestBroker({ security: { jwt: { secretFile: jwt.file, clockSkewMs: 0 } } });
    const admin = await sdk(tb.url, { token: await signToken(secret, 'setup', { allow: [SUPERUSER] }) });
    await admin.createTopic('rooms.42.a', { partitions: 1 });
  });
  afterAll(async () => {
    await tb?.stop();
  });

  it('closes a connection whose token expires with TOKEN_EXPIRED (1008), and refuses the expired token after', async () => {
    const token = await signToken(secret, 'short', { allow: [{ allow: ['describe'], topics: ['rooms.#'] }] }, 2_000);
    const c = await raw(tb.url);
    expect(await c.request({ op: 'hello', version: 1, token })).toMatchObject({ op: 'result' });
    expect(await c.request({ op: 'list_topics' })).toMatchObject({ op: 'result', topics: [{ topic: 'rooms.42.a', partitions: 1 }] });
    const closed = await c.waitClose(5_000);
    expect(closed.code).toBe(1008);
    expect(closed.reason).toMatch(/^TOKEN_EXPIRED/);
    expect(c.frames).toContainEqual(expect.objectContaining({ op: 'error', code: 'TOKEN_EXPIRED', retryable: false }));
    expect(tb.broker.core.securityStats().tokenExpiredCloses).toBe(1);

    const again = await raw(tb.url);
    expect(await again.request({ op: 'hello', version: 1, token })).toMatchObject({ op: 'error', code: 'TOKEN_EXPIRED', details: { reason: 'expired' } });
  });

  it('asks a token function again at each connect (a browser fetching fresh tokens)', async () => {
    let asked = 0;
    const c = await sdk(tb.url, { token: async () => (asked++, signToken(secret, 'refreshing', { allow: [{ allow: ['describe'], topics: ['#'] }] })) });
    expect((await c.listTopics()).map((t) => t.topic)).toEqual(['rooms.42.a']);
    expect(asked).toBe(1);
  });

  it('refuses a token signed with another key, or with claims it cannot use', async () => {
    const other = new TextEncoder().encode('another secret, also at least 32 bytes long');
    expect(await refusal(sdk(tb.url, { token: await signToken(other, 'x', {}) }))).toMatchObject({ code: 'UNAUTHORIZED', details: { reason: 'signature' } });
    expect(await refusal(sdk(tb.url, { token: await signToken(secret, 'x', { roles: ['no-such-role'] }) }))).toMatchObject({ code: 'UNAUTHORIZED', details: { reason: 'claims' } });
  });
});

describe('a security configuration that cannot be used', () => {
  it('refuses the start with BAD_CONFIG naming the file, before the data directory is touched', async () => {
    const dataDir = path.join(tmp.dir, 'never-created');
    const bad = path.join(tmp.dir, 'bad.json');
    fs.writeFileSync(bad, '{ not json');
    const cases: Array<[Parameters<typeof Broker.start>[0], RegExp]> = [
      [{ security: { usersFile: path.join(tmp.dir, 'missing-users.json') } }, /--users .*missing-users\.json: no such file/],
      [{ security: { usersFile: bad } }, /--users .*bad\.json: users file: not JSON/],
      [{ security: { token: 't', rolesFile: bad } }, /--roles .*bad\.json: not JSON/],
      [{ security: { token: 't', roles: { r: [{ allow: ['produce'] }] } } }, /role "r".*"produce" acts on topics but the rule has no "topics" list/],
      [{ security: { jwt: { secretFile: bad } } }, /HS256 secret 0 is shorter than 32 bytes/],
      [{ security: { jwt: { publicKeyFiles: [bad] } } }, /--jwt-public-key .*bad\.json: not a PEM public key/],
      [{ security: { roles: { r: [SUPERUSER] } } }, /roles are configured but authentication is not/],
    ];
    for (const [options, message] of cases) {
      const err = await Broker.start({ ...options, dataDir, port: 0 }).then(
        async (b) => {
          await b.close();
          return null;
        },
        (e: unknown) => e,
      );
      expect(err, String(message)).toMatchObject({ code: 'BAD_CONFIG', message: expect.stringMatching(message) });
    }
    expect(fs.existsSync(dataDir)).toBe(false);
  });
});
