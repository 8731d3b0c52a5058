/**
 * `weir users`: what an operator sees and what the broker later reads from the file (Users.load),
 * on a real users file. The last test runs `bin/weir.js users` as a child process (`npm run build`
 * first).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { run as users } from '../../../src/cli/commands/users.js';
import { Users } from '../../../src/security/users.js';
import { cliIo, terminalIo, type CliIo } from '../../support/cli-io.js';
import { tmpDir } from '../../support/tmp-dir.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
let tmp: { dir: string; cleanup(): void };
let file: string;
beforeEach(() => {
  tmp = tmpDir('weir-users-cli-');
  file = path.join(tmp.dir, 'users.json');
});
afterEach(() => tmp.cleanup());

async function runUsers(args: string[], io: CliIo = cliIo()): Promise<{ code: number; out: string; err: string }> {
  const code = await users([...args, '--users', file], io);
  return { code, out: io.out(), err: io.err() };
}

/** Every secret-looking value the file holds: password salts and hashes, API key digests. */
function storedSecrets(): string[] {
  const json = JSON.parse(fs.readFileSync(file, 'utf8')) as { users: { password?: { salt: string; hash: string }; apiKeys: { sha256: string }[] }[] };
  return json.users.flatMap((u) => [...(u.password ? [u.password.salt, u.password.hash] : []), ...u.apiKeys.map((k) => k.sha256)]);
}

describe('weir users', () => {
  it('add, list, remove: the file is 0600, holds what the broker verifies, and list shows no hash', async () => {
    let r = await runUsers(['add', 'alice', '--role', 'chat', '--role', 'admin', '--tenant', 'acme', '--password-stdin'], cliIo('correct horse battery\n'));
    expect(r).toMatchObject({ code: 0, out: '' });
    expect(r.err).toBe(`weir users: added alice to ${file} (roles: chat, admin, tenant acme, password set)\n`);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(file, 'utf8')).not.toContain('correct horse');
    expect(await Users.load(file).verifyPassword('alice', 'correct horse battery')).toEqual({ name: 'alice', roles: ['chat', 'admin'], tenant: 'acme', source: 'user', rules: [] });
    expect(await Users.load(file).verifyPassword('alice', 'correct horse battery\n')).toBeNull();

    r = await runUsers(['add', 'svc.orders', '--role', 'orders-service', '--no-password']);
    expect(r.code).toBe(0);
    expect(r.err).toContain('svc.orders has no password and no API key yet: add one with weir users add-key svc.orders');

    r = await runUsers(['list']);
    expect(r).toEqual({ code: 0, out: 'alice roles chat,admin tenant acme password yes api-keys -\nsvc.orders roles orders-service tenant - password no api-keys -\n', err: '' });
    const json = await runUsers(['list', '--json']);
    expect(JSON.parse(json.out)).toEqual(Users.load(file).listUsers());
    for (const secret of storedSecrets()) {
      expect(r.out).not.toContain(secret);
      expect(json.out).not.toContain(secret);
    }

    r = await runUsers(['remove', 'alice']);
    expect(r).toEqual({ code: 0, out: '', err: `weir users: removed alice and its API keys from ${file}\n` });
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(Users.load(file).listUsers().map((u) => u.name)).toEqual(['svc.orders']);
    expect(await Users.load(file).verifyPassword('alice', 'correct horse battery')).toBeNull();
  });

  it('add-key prints a key (alone on stdout, once) that the broker accepts; remove-key revokes it', async () => {
    expect((await runUsers(['add', 'svc', '--role', 'svc', '--no-password'])).code).toBe(0);
    const r = await runUsers(['add-key', 'svc']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^weir_[0-9a-f]{16}_[A-Za-z0-9_-]{43}\n$/);
    const key = r.out.trim();
    const id = key.slice(5, 21);
    expect(r.err).toBe(`weir users: API key ${id} for svc: store it now, it is not shown again\n`);
    expect(Users.load(file).verifyApiKey(key)).toEqual({ name: 'svc', roles: ['svc'], source: 'api-key', rules: [] });
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);

    const listed = await runUsers(['list']);
    expect(listed.out).toMatch(new RegExp(`^svc roles svc tenant - password no api-keys ${id}@\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\n$`));
    expect(listed.out).not.toContain(key.slice(22));
    expect((await runUsers(['list', '--json'])).out).not.toContain(key.slice(22));

    expect(await runUsers(['remove-key', id])).toEqual({ code: 0, out: '', err: `weir users: removed API key ${id} from ${file}\n` });
    expect(Users.load(file).verifyApiKey(key)).toBeNull();
  });

  it('add --api-key makes the user and its first key in one step', async () => {
    const r = await runUsers(['add', 'dash', '--role', 'dashboard', '--no-password', '--api-key']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^weir_[0-9a-f]{16}_[A-Za-z0-9_-]{43}\n$/);
    expect(Users.load(file).verifyApiKey(r.out.trim())?.name).toBe('dash');
  });

  it('at a terminal the password is typed twice with echo off and never written out', async () => {
    const t = terminalIo();
    t.answer('Password for carol: ', 'typed secret');
    t.answer('Repeat it: ', 'typed secret');
    const r = await runUsers(['add', 'carol'], t.io);
    expect(r.code).toBe(0);
    expect(t.rawMode).toEqual([true, false, true, false]);
    expect(r.out).toBe('');
    expect(r.err).not.toContain('typed secret');
    expect(await Users.load(file).verifyPassword('carol', 'typed secret')).not.toBeNull();

    const again = terminalIo();
    again.answer('Password for carol: ', 'new secret');
    again.answer('Repeat it: ', 'new secret');
    expect((await runUsers(['set-password', 'carol'], again.io)).code).toBe(0);
    expect(await Users.load(file).verifyPassword('carol', 'new secret')).not.toBeNull();
    expect(await Users.load(file).verifyPassword('carol', 'typed secret')).toBeNull();
  });

  it('two different passwords at the prompt change nothing', async () => {
    const t = terminalIo();
    t.answer('Password for dave: ', 'one');
    t.answer('Repeat it: ', 'two');
    const r = await runUsers(['add', 'dave'], t.io);
    expect(r.code).toBe(1);
    expect(r.err).toContain('weir users: BAD_REQUEST: the two passwords differ: nothing was changed\n');
    expect(fs.existsSync(file)).toBe(false);
  });

  it('without a terminal and without --password-stdin it asks for one of them instead of guessing', async () => {
    const r = await runUsers(['add', 'erin']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^weir users: no password: pipe it in with --password-stdin, run at a terminal to be prompted, or give --no-password/);
    expect(fs.existsSync(file)).toBe(false);
  });

  it('errors carry a stable code and a clear message, and leave the file as it was', async () => {
    expect((await runUsers(['add', 'alice', '--password-stdin'], cliIo('pw\n'))).code).toBe(0);
    const before = fs.readFileSync(file, 'utf8');
    const cases: [string[], string, string][] = [
      [['add', 'alice', '--no-password'], '', 'BAD_REQUEST: user "alice" exists'],
      [['add', 'bad name', '--no-password'], '', 'BAD_REQUEST: a user name is 1-128 characters of A-Z a-z 0-9 . _ @ -'],
      [['add', 'bob', '--role', 'no spaces', '--no-password'], '', 'BAD_REQUEST: a role name is 1-64 characters of A-Z a-z 0-9 . _ -'],
      [['add', 'bob', '--tenant', 'a/b', '--no-password'], '', 'BAD_REQUEST: a tenant name is 1-64 characters of A-Z a-z 0-9 . _ -'],
      [['add', 'bob', '--password-stdin'], '', 'BAD_REQUEST: a password is 1-1024 characters'],
      [['add', 'bob', '--password-stdin'], 'two\nlines\n', 'BAD_REQUEST: the password on stdin must be one line'],
      [['remove', 'bob'], '', 'BAD_REQUEST: no user "bob"'],
      [['set-password', 'bob', '--password-stdin'], 'pw\n', 'BAD_REQUEST: no user "bob"'],
      [['add-key', 'bob'], '', 'BAD_REQUEST: no user "bob"'],
      [['remove-key', '0123456789abcdef'], '', 'BAD_REQUEST: no API key "0123456789abcdef"'],
      [['remove-key', `weir_0123456789abcdef_${'A'.repeat(43)}`], '', 'BAD_REQUEST: give the key\'s id (the 16 hex digits after "weir_", as "weir users list" shows), not the key itself'],
    ];
    for (const [args, stdin, message] of cases) {
      const r = await runUsers(args, cliIo(stdin));
      expect({ args, code: r.code, err: r.err, out: r.out }).toEqual({ args, code: 1, err: `weir users: ${message}\n`, out: '' });
      expect(fs.readFileSync(file, 'utf8')).toBe(before);
    }
    expect(fs.readFileSync(file, 'utf8')).not.toContain('A'.repeat(43));
  });

  it('a broken users file is BAD_CONFIG naming the file, and is not overwritten', async () => {
    fs.writeFileSync(file, '{"version": 1, "users": [');
    for (const args of [['list'], ['add', 'x', '--no-password']]) {
      const r = await runUsers(args);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(new RegExp(`^weir users: BAD_CONFIG: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: users file: not JSON \\(`));
    }
    expect(fs.readFileSync(file, 'utf8')).toBe('{"version": 1, "users": [');
  });

  it('usage errors exit 2 and say what is wrong', async () => {
    const cases: [string[], string][] = [
      [[], 'missing command: add, set-password, remove, list, add-key or remove-key'],
      [['rename', 'a'], 'unknown command "rename"'],
      [['add'], '"add" needs a user NAME'],
      [['remove-key'], '"remove-key" needs an API key ID'],
      [['list', '--role', 'x'], '--role does not apply to "list"'],
      [['add', 'a', '--password-stdin', '--no-password'], '--password-stdin and --no-password exclude each other'],
      [['add', 'a', 'b', '--no-password'], 'unexpected arguments: b'],
      [['add', 'a', '--password', 'pw'], "Unknown option '--password'"],
    ];
    for (const [args, message] of cases) {
      const r = await runUsers(args);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.err).toContain(`weir users: ${message}`);
      expect(r.err).toContain('usage: weir users');
    }
    expect(fs.existsSync(file)).toBe(false);
  });

  it('bin/weir.js users: the command is wired into weir', async () => {
    const weir = (args: string[], input = ''): Promise<{ code: number; out: string; err: string }> =>
      new Promise((resolve) => {
        const child = execFile(process.execPath, [path.join(root, 'bin/weir.js'), 'users', ...args, '--users', file], (err, out, errText) =>
          resolve({ code: err === null ? 0 : ((err as { code?: number }).code ?? 1), out, err: errText }),
        );
        child.stdin!.end(input);
      });
    const added = await weir(['add', 'svc', '--no-password', '--api-key']);
    expect(added.code).toBe(0);
    expect(Users.load(file).verifyApiKey(added.out.trim())?.name).toBe('svc');
    expect(await weir(['add', 'ann', '--password-stdin'], 'pw from a pipe\n')).toMatchObject({ code: 0, out: '' });
    expect((await weir(['list'])).out).toMatch(/^ann roles - tenant - password yes api-keys -\nsvc roles - tenant - password no api-keys [0-9a-f]{16}@/);
  });
});
