import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_SCRYPT, MAX_PASSWORD_LENGTH, Users } from '../../src/security/users.js';
import { tmpDir } from '../support/tmp-dir.js';

// Cheap hashes for most tests; one test runs the defaults.
const FAST = { scrypt: { N: 2 ** 10, r: 8, p: 1 } };

let tmp: { dir: string; cleanup(): void };
let file: string;
beforeEach(() => {
  tmp = tmpDir('weir-users-');
  file = path.join(tmp.dir, 'users.json');
});
afterEach(() => tmp.cleanup());

describe('users file', () => {
  it('a missing file holds no users; save and load round-trip, the file is 0600 and holds no password', async () => {
    expect(Users.load(file, FAST).size).toBe(0);
    let users = await Users.empty(FAST).addUser('alice', { password: 'correct horse', roles: ['chat-reader'], tenant: 'acme' });
    users = await users.addUser('svc.orders', { roles: ['service'] });
    const made = users.addApiKey('svc.orders', 1234);
    made.users.save(file);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const text = fs.readFileSync(file, 'utf8');
    expect(text).not.toContain('correct horse');
    expect(text).not.toContain(made.key.slice(22)); // the secret (base64url: it may hold '_' itself)
    expect(JSON.parse(text).version).toBe(1);

    const loaded = Users.load(file, FAST);
    expect(loaded.listUsers()).toEqual([
      { name: 'alice', roles: ['chat-reader'], tenant: 'acme', hasPassword: true, apiKeys: [] },
      { name: 'svc.orders', roles: ['service'], hasPassword: false, apiKeys: [{ id: made.id, createdAtMs: 1234 }] },
    ]);
    expect(await loaded.verifyPassword('alice', 'correct horse')).toEqual({ name: 'alice', roles: ['chat-reader'], tenant: 'acme', source: 'user', rules: [] });
    expect(loaded.verifyApiKey(made.key)).toEqual({ name: 'svc.orders', roles: ['service'], source: 'api-key', rules: [] });
  });

  it('save replaces the file atomically and keeps 0600 over a looser temp file left by a crash', async () => {
    fs.writeFileSync(`${file}.tmp`, 'junk', { mode: 0o644 });
    const users = await Users.empty(FAST).addUser('a', { password: 'pw', roles: [] });
    users.save(file);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.existsSync(`${file}.tmp`)).toBe(false);
    expect(Users.load(file, FAST).has('a')).toBe(true);
  });

  it.each([
    ['not json', '{', /not JSON/],
    ['not an object', '[]', /JSON object/],
    ['other version', '{"version":2,"users":[]}', /unsupported version 2/],
    ['no users list', '{"version":1}', /"users" must be a list/],
    ['bad name', '{"version":1,"users":[{"name":"a b","roles":[]}]}', /user 0: a user name/],
    ['twice', '{"version":1,"users":[{"name":"a","roles":[]},{"name":"a","roles":[]}]}', /appears twice/],
    ['bad role', '{"version":1,"users":[{"name":"a","roles":["x y"]}]}', /role name/],
    ['bad scheme', '{"version":1,"users":[{"name":"a","roles":[],"password":{"scheme":"md5"}}]}', /unknown password scheme/],
    [
      'huge N',
      `{"version":1,"users":[{"name":"a","roles":[],"password":{"scheme":"scrypt","N":${2 ** 24},"r":8,"p":1,"salt":"${'A'.repeat(24)}","hash":"${'A'.repeat(44)}"}}]}`,
      /power of two/,
    ],
    ['bad key', '{"version":1,"users":[{"name":"a","roles":[],"apiKeys":[{"id":"zz","sha256":"x","createdAtMs":1}]}]}', /16 hex digits/],
  ])('refuses a bad file (%s) with BAD_CONFIG', (_label, text, message) => {
    fs.writeFileSync(file, text);
    expect(() => Users.load(file, FAST)).toThrow(expect.objectContaining({ code: 'BAD_CONFIG', message: expect.stringMatching(message) }));
  });
});

describe('managing users', () => {
  it('adds, refuses duplicates and bad fields, removes, and lists without secrets', async () => {
    let users = await Users.empty(FAST).addUser('bob', { password: 'pw1', roles: ['a'] });
    await expect(users.addUser('bob', { roles: [] })).rejects.toMatchObject({ code: 'BAD_REQUEST', details: { field: 'name' } });
    await expect(users.addUser('bad name', { roles: [] })).rejects.toMatchObject({ code: 'BAD_REQUEST', details: { field: 'name' } });
    await expect(users.addUser('c', { roles: ['bad role'] })).rejects.toMatchObject({ details: { field: 'roles' } });
    await expect(users.addUser('c', { roles: [], password: '' })).rejects.toMatchObject({ details: { field: 'password' } });
    await expect(users.addUser('c', { roles: [], tenant: 'a/b' })).rejects.toMatchObject({ details: { field: 'tenant' } });
    users = await users.addUser('carol', { roles: [] });
    const listed = JSON.stringify(users.listUsers());
    expect(listed).not.toMatch(/hash|salt|sha256|pw1/);
    const without = users.removeUser('bob');
    expect(without.listUsers().map((u) => u.name)).toEqual(['carol']);
    expect(users.has('bob')).toBe(true); // immutable: the old value is unchanged
    expect(() => without.removeUser('bob')).toThrow(expect.objectContaining({ code: 'BAD_REQUEST' }));
    expect(await without.verifyPassword('bob', 'pw1')).toBeNull();
  });

  it('a new password replaces the old one', async () => {
    let users = await Users.empty(FAST).addUser('bob', { password: 'old', roles: [] });
    users = await users.setPassword('bob', 'new');
    expect(await users.verifyPassword('bob', 'old')).toBeNull();
    expect(await users.verifyPassword('bob', 'new')).not.toBeNull();
  });
});

describe('verifying passwords', () => {
  it('accepts the right password only, and never says which names exist', async () => {
    const users = await Users.empty(FAST).addUser('alice', { password: 'pässwörd', roles: [] });
    expect(await users.verifyPassword('alice', 'pässwörd')).toMatchObject({ name: 'alice', source: 'user' });
    for (const [name, pw] of [
      ['alice', 'passwörd'],
      ['alice', ''],
      ['alice', 'pässwörd '],
      ['mallory', 'pässwörd'],
      ['alice', 'x'.repeat(MAX_PASSWORD_LENGTH + 1)],
      [7, 'pässwörd'],
      ['alice', null],
    ] as const) {
      expect(await users.verifyPassword(name, pw)).toBeNull();
    }
  });

  it('a user without a password cannot log in with one', async () => {
    const users = await Users.empty(FAST).addUser('svc', { roles: [] });
    expect(await users.verifyPassword('svc', '')).toBeNull();
    expect(await users.verifyPassword('svc', 'anything')).toBeNull();
  });

  it('costs an scrypt for unknown names too (timing does not tell them apart)', async () => {
    // Default parameters: the real cost, so the difference would show if the dummy hash were skipped.
    const users = await Users.empty().addUser('alice', { password: 'pw', roles: [] });
    const time = async (name: string): Promise<number> => {
      const t0 = performance.now();
      await users.verifyPassword(name, 'wrong');
      return performance.now() - t0;
    };
    await time('alice');
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 3; i++) {
      known.push(await time('alice'));
      unknown.push(await time('nobody'));
    }
    const min = (xs: number[]): number => Math.min(...xs);
    expect(min(unknown)).toBeGreaterThan(min(known) / 3);
    expect(DEFAULT_SCRYPT.N).toBeGreaterThanOrEqual(2 ** 15);
  });

  it('stores the parameters with each hash: a hash made with other parameters still verifies', async () => {
    const strong = await Users.empty({ scrypt: { N: 2 ** 11, r: 8, p: 2 } }).addUser('old', { password: 'pw', roles: [] });
    strong.save(file);
    const reread = Users.load(file, FAST);
    expect(await reread.verifyPassword('old', 'pw')).not.toBeNull();
    expect(JSON.parse(fs.readFileSync(file, 'utf8')).users[0].password).toMatchObject({ scheme: 'scrypt', N: 2048, r: 8, p: 2 });
  });

  it('the same password gets a different salt and hash for each user', async () => {
    let users = await Users.empty(FAST).addUser('a', { password: 'same', roles: [] });
    users = await users.addUser('b', { password: 'same', roles: [] });
    const [a, b] = JSON.parse(users.serialize()).users;
    expect(a.password.salt).not.toBe(b.password.salt);
    expect(a.password.hash).not.toBe(b.password.hash);
  });
});

describe('API keys', () => {
  it('have the format weir_<16 hex>_<43 base64url>, verify, and stop working once removed', async () => {
    const users = await Users.empty(FAST).addUser('svc', { roles: ['service'] });
    const { users: withKey, key, id } = users.addApiKey('svc', 1);
    expect(key).toMatch(/^weir_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(key.slice(5, 21)).toBe(id);
    expect(withKey.verifyApiKey(key)).toMatchObject({ name: 'svc', source: 'api-key', roles: ['service'] });
    const second = withKey.addApiKey('svc', 2);
    expect(second.key).not.toBe(key);
    expect(second.users.verifyApiKey(key)).not.toBeNull();
    const removed = second.users.removeApiKey(id);
    expect(removed.verifyApiKey(key)).toBeNull();
    expect(removed.verifyApiKey(second.key)).not.toBeNull();
    expect(removed.removeUser('svc').verifyApiKey(second.key)).toBeNull();
  });

  it('refuses altered, truncated, foreign and malformed keys', async () => {
    const { users, key } = (await Users.empty(FAST).addUser('svc', { roles: [] })).addApiKey('svc', 1);
    const flip = (s: string, i: number): string => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
    const other = Users.empty(FAST);
    for (const bad of [
      flip(key, key.length - 1),
      flip(key, 30),
      key.slice(0, -1),
      `${key}A`,
      key.replace('weir_', 'wier_'),
      `weir_${'0'.repeat(16)}_${key.slice(22)}`,
      '',
      'weir__',
      42,
      null,
      undefined,
    ]) {
      expect(users.verifyApiKey(bad), String(bad)).toBeNull();
    }
    expect(other.verifyApiKey(key)).toBeNull();
  });

  it('bounds the keys of a user', async () => {
    let users = await Users.empty(FAST).addUser('svc', { roles: [] });
    for (let i = 0; i < 32; i++) users = users.addApiKey('svc', i).users;
    expect(() => users.addApiKey('svc', 99)).toThrow(/32 API keys/);
    expect(() => users.addApiKey('nobody', 1)).toThrow(expect.objectContaining({ code: 'BAD_REQUEST' }));
  });
});
