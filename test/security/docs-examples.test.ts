/**
 * docs/security.md and docs/examples/roles.json say what they mean: the example roles parse and
 * allow exactly what the doc's tables say (authorize), the action table is the action registry, the
 * backend token-minting module runs as printed (in a Node child process, with keys made by the
 * doc's OpenSSL commands) and mints tokens the broker's verifier accepts with the doc's flags, the
 * `weir users` commands run as printed, and the audit lines are what the audit log writes.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { run as users } from '../../src/cli/commands/users.js';
import { WeirCode } from '../../src/protocol/error-codes.js';
import { auditLine, type AuditEvent } from '../../src/security/audit.js';
import { ACTIONS, authorize, isAction, parseRoleTable, type Rule } from '../../src/security/permissions.js';
import { createTokenVerifier } from '../../src/security/tokens.js';
import { Users } from '../../src/security/users.js';
import { cliIo, terminalIo } from '../support/cli-io.js';
import { tmpDir } from '../support/tmp-dir.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const doc = fs.readFileSync(path.join(root, 'docs/security.md'), 'utf8');
const exampleRoles = parseRoleTable((JSON.parse(fs.readFileSync(path.join(root, 'docs/examples/roles.json'), 'utf8')) as { roles: unknown }).roles);

/** The fenced code block after `<!-- marker -->`. */
function blockAfter(marker: string): { lang: string; code: string; end: number } {
  const at = doc.indexOf(`<!-- ${marker} -->`);
  if (at < 0) throw new Error(`docs/security.md has no <!-- ${marker} -->`);
  const m = /```(\w*)\n([\s\S]*?)\n```/.exec(doc.slice(at));
  if (m === null) throw new Error(`no code block after <!-- ${marker} -->`);
  return { lang: m[1]!, code: m[2]!, end: at + m.index + m[0].length };
}

/** The rows (cells, without backquotes) of the first table from `from` on. */
function tableFrom(from: number): string[][] {
  const lines = doc.slice(from).split('\n');
  const start = lines.findIndex((l) => l.startsWith('|'));
  const rows: string[][] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(line.split('|').slice(1, -1).map((c) => c.trim().replace(/^`(.*)`$/, '$1')));
  }
  return rows;
}

function markers(kind: string): string[] {
  return [...doc.matchAll(new RegExp(`<!-- ${kind}: ([\\w.-]+) -->`, 'g'))].map((m) => m[1]!);
}

function run(cmd: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { ...options, env: { ...process.env, ...options.env } }, (err, out, errText) =>
      resolve({ code: err === null ? 0 : ((err as { code?: number }).code ?? 1), out, err: errText }),
    );
  });
}

let tmp: { dir: string; cleanup(): void };
beforeEach(() => {
  tmp = tmpDir('weir-security-doc-');
});
afterEach(() => tmp.cleanup());

describe('docs/security.md: permissions', () => {
  it('docs/examples/roles.json parses, and every role in it is an example of the doc, rule for rule', () => {
    const shown = markers('acl');
    expect(shown.sort()).toEqual([...exampleRoles.keys()].sort());
    for (const name of shown) {
      const block = blockAfter(`acl: ${name}`);
      const table = parseRoleTable((JSON.parse(block.code) as { roles: unknown }).roles);
      expect([...table.keys()]).toEqual([name]);
      expect(table.get(name)).toEqual(exampleRoles.get(name));
    }
  });

  it.each(markers('acl'))('the %s role allows exactly what its table says', (name) => {
    const rows = tableFrom(blockAfter(`acl: ${name}`).end);
    expect(rows.length).toBeGreaterThan(3);
    const principal = { name: 'someone', roles: [name], rules: [] };
    for (const [action, resource, allowed] of rows) {
      if (!isAction(action)) throw new Error(`unknown action ${action}`);
      const [kind, ...rest] = resource!.split(':');
      expect({ action, kind }).toEqual({ action, kind: ACTIONS[action] });
      expect(['yes', 'no']).toContain(allowed);
      expect({ action, resource, allowed: authorize(principal, action, ACTIONS[action], rest.join(':'), exampleRoles) ? 'yes' : 'no' }).toEqual({ action, resource, allowed });
    }
  });

  it('the action table is the action registry: every action, its resource kind', () => {
    const rows = tableFrom(doc.indexOf('<!-- actions -->'));
    expect(Object.fromEntries(rows.map(([action, kind]) => [action, kind]))).toEqual(ACTIONS);
  });

  it('every error code the doc lists is registered and in docs/errors.md', () => {
    const errors = fs.readFileSync(path.join(root, 'docs/errors.md'), 'utf8');
    const codes = tableFrom(doc.indexOf('<!-- error-codes -->')).map(([code]) => code!);
    expect(codes).toEqual(expect.arrayContaining(['FORBIDDEN', 'UNAUTHORIZED', 'TOKEN_EXPIRED', 'AUTH_RATE_LIMITED', 'TOO_MANY_CONNECTIONS', 'QUOTA_EXCEEDED']));
    for (const code of codes) {
      expect(Object.values(WeirCode)).toContain(code);
      expect(errors).toContain(`| \`${code}\` |`);
    }
  });

  it('the audit log lines are what the audit log writes for those events', () => {
    const lines = blockAfter('example: audit').code.split('\n');
    expect(lines.length).toBe(3);
    for (const line of lines) {
      const { time, ...event } = JSON.parse(line) as { time: string } & AuditEvent;
      expect(auditLine(event, Date.parse(time))).toBe(`${line}\n`);
    }
  });
});

describe('docs/security.md: running the examples', () => {
  it('the minting module, run as printed with keys made by the printed commands, mints tokens the broker accepts with the printed flags', async () => {
    const dir = tmp.dir;
    // The key-making commands, as printed, in a scratch directory.
    const keys = await run('bash', ['-euo', 'pipefail', '-c', blockAfter('example: es256-keys').code], { cwd: dir });
    expect(keys).toMatchObject({ code: 0 });
    expect(fs.statSync(path.join(dir, 'jwt-es256-private.pem')).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(dir, 'jwt-secret')).mode & 0o777).toBe(0o600);

    // The backend module, as printed, beside a node_modules that has jose.
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
    fs.writeFileSync(path.join(dir, 'mint-token.mjs'), blockAfter('example: mint-token.mjs').code);
    fs.writeFileSync(
      path.join(dir, 'driver.mjs'),
      `import * as m from './mint-token.mjs';
const user = { id: 'user-7', isMemberOf: async (room) => room === '42' };
const out = {
  ISSUER: m.ISSUER, AUDIENCE: m.AUDIENCE, claim: m.chatRoomClaim('42'),
  es256: await m.mintToken('user-7', m.chatRoomClaim('42')),
  hs256: await m.mintToken('user-7', m.chatRoomClaim('42'), 'HS256'),
  route: await m.tokenRoute(user, '42'),
  notMember: await m.tokenRoute(user, '43'),
  wildcard: await m.tokenRoute(user, '#'),
  twoWords: await m.tokenRoute(user, '42.x'),
};
process.stdout.write(JSON.stringify(out));
`,
    );
    const before = Date.now();
    const minted = await run(process.execPath, ['driver.mjs'], { cwd: dir, env: { WEIR_JWT_PRIVATE_KEY_FILE: path.join(dir, 'jwt-es256-private.pem'), WEIR_JWT_SECRET_FILE: path.join(dir, 'jwt-secret') } });
    expect(minted.err).toBe('');
    const out = JSON.parse(minted.out) as {
      ISSUER: string;
      AUDIENCE: string;
      claim: { allow: Rule[] };
      es256: string;
      hs256: string;
      route: { status: number; body: { token: string } };
      notMember: { status: number };
      wildcard: { status: number };
      twoWords: { status: number };
    };

    // The broker's flags as printed in the start example.
    const start = blockAfter('example: weir-start').code;
    const flag = (name: string): string => new RegExp(`--${name} (\\S+)`).exec(start)![1]!;
    expect(flag('jwt-issuer')).toBe(out.ISSUER);
    expect(flag('jwt-audience')).toBe(out.AUDIENCE);
    expect(path.basename(flag('jwt-public-key'))).toBe('jwt-es256-public.pem');

    // The same rules as the room-42-member role: the token route and the role mean the same.
    expect(out.claim.allow).toEqual(exampleRoles.get('room-42-member'));
    expect([out.notMember.status, out.wildcard.status, out.twoWords.status]).toEqual([403, 400, 400]);
    expect(out.route.status).toBe(200);

    const verifier = await createTokenVerifier({
      keys: {
        hs256: [{ secret: fs.readFileSync(path.join(dir, 'jwt-secret'), 'utf8').trim() }],
        publicKeys: [{ pem: fs.readFileSync(path.join(dir, 'jwt-es256-public.pem'), 'utf8'), alg: 'ES256' }],
      },
      issuer: flag('jwt-issuer'),
      audience: flag('jwt-audience'),
    });
    for (const token of [out.es256, out.hs256, out.route.body.token]) {
      const result = await verifier.verify(token);
      if (!result.ok) throw new Error(`refused: ${result.message}`);
      const p = result.principal;
      expect(p).toMatchObject({ name: 'user-7', source: 'jwt', roles: [], rules: out.claim.allow });
      // Ten minutes, as the module says.
      expect(p.expiresAtMs! - before).toBeGreaterThan(598_000);
      expect(p.expiresAtMs! - before).toBeLessThan(602_000);
      expect(authorize(p, 'consume', 'topic', 'rooms.42.messages')).toBe(true);
      expect(authorize(p, 'produce', 'topic', 'rooms.42.messages')).toBe(true);
      expect(authorize(p, 'consume', 'topic', 'rooms.43.x')).toBe(false);
      expect(authorize(p, 'produce', 'topic', 'rooms.42.typing')).toBe(false);
    }
    expect(JSON.parse(Buffer.from(out.es256.split('.')[0]!, 'base64url').toString())).toEqual({ alg: 'ES256' });

    // Eleven minutes later the same token is refused as expired.
    const later = await createTokenVerifier({
      keys: { publicKeys: [{ pem: fs.readFileSync(path.join(dir, 'jwt-es256-public.pem'), 'utf8'), alg: 'ES256' }] },
      issuer: out.ISSUER,
      audience: out.AUDIENCE,
      now: () => before + 11 * 60_000,
    });
    expect(await later.verify(out.es256)).toMatchObject({ ok: false, code: WeirCode.TOKEN_EXPIRED });
  });

  it('the weir users commands run as printed', async () => {
    const file = path.join(tmp.dir, 'users.json');
    const section = doc.slice(doc.indexOf('### Users and API keys'));
    const lines = /```sh\n([\s\S]*?)\n```/.exec(section)![1]!.split('\n');
    expect(lines.length).toBe(7);
    let lastKeyId: string | undefined;
    for (const line of lines) {
      const command = line.replace(/\s+#.*$/, '');
      const piped = /^printf '%s\\n' "\$(\w+)" \| (.*)$/.exec(command);
      const argv = (piped?.[2] ?? command).split(/\s+/);
      expect(argv.slice(0, 4)).toEqual(['weir', 'users', '--users', '/etc/weir/users.json']);
      const args = ['--users', file, ...argv.slice(4).map((a) => (a === '3f9c0a1b2c3d4e5f' ? lastKeyId! : a))];
      const terminal = terminalIo();
      let io = piped ? cliIo('a password from the environment\n') : cliIo();
      if (!piped && argv[4] === 'add' && !argv.includes('--no-password')) {
        terminal.answer('Password for ', 'typed at the prompt');
        terminal.answer('Repeat it: ', 'typed at the prompt');
        io = terminal.io;
      }
      const code = await users(args, io);
      expect({ line, code, err: code === 0 ? '' : io.err() }).toEqual({ line, code: 0, err: '' });
      const key = /^weir_([0-9a-f]{16})_/.exec(io.out());
      if (key !== null) lastKeyId = key[1];
    }
    const left = Users.load(file);
    expect(left.listUsers().map((u) => u.name)).toEqual(['ci', 'ops']);
    expect(await left.verifyPassword('ops', 'typed at the prompt')).toMatchObject({ name: 'ops', roles: ['admin'] });
    expect(await left.verifyPassword('ci', 'a password from the environment')).toMatchObject({ name: 'ci' });
  });
});
