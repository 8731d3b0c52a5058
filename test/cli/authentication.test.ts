/**
 * The client commands against a broker that requires authentication: `--token`, `--user` with
 * WEIR_PASSWORD, and WEIR_TOKEN / WEIR_USER from the environment; without credentials they fail
 * with UNAUTHORIZED, and `--user` without a password and without a terminal is a usage error.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { run as topics } from '../../src/cli/commands/topics.js';
import { run as produce } from '../../src/cli/commands/produce.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { cliIo } from '../support/cli-io.js';
import { SUPERUSER, writeRolesFile, writeUsersFile } from '../support/security.js';
import { tmpDir } from '../support/tmp-dir.js';

const tmp = tmpDir('weir-cli-auth-');
let tb: TestBroker;
let key: string;

beforeAll(async () => {
  const roles = writeRolesFile(tmp.dir, { admin: [SUPERUSER] });
  const users = await writeUsersFile(tmp.dir, [{ name: 'ops', roles: ['admin'], password: 'ops-password', apiKey: true }]);
  key = users.keys['ops']!;
  tb = await startTestBroker({ security: { usersFile: users.file, rolesFile: roles } });
});
afterAll(async () => {
  await tb?.stop();
  tmp.cleanup();
});

it('authenticates with --token, --user and WEIR_PASSWORD, or WEIR_TOKEN / WEIR_USER', async () => {
  let io = cliIo();
  expect(await topics(['create', 'audited', '--url', tb.url, '--token', key], { ...io, env: {} })).toBe(0);
  expect(io.out()).toBe('created audited 1\n');

  io = cliIo('one\ntwo\n');
  expect(await produce(['audited', '--url', tb.url, '--user', 'ops'], { ...io, env: { WEIR_PASSWORD: 'ops-password' } })).toBe(0);

  io = cliIo();
  expect(await topics(['describe', 'audited', '--url', tb.url], { ...io, env: { WEIR_TOKEN: key } })).toBe(0);
  expect(io.out()).toMatch(/^partition 0 start 0 end 2 /m);

  io = cliIo();
  expect(await topics(['list', '--url', tb.url], { ...io, env: { WEIR_USER: 'ops', WEIR_PASSWORD: 'ops-password' } })).toBe(0);
  expect(io.out()).toBe('audited 1\n');
});

it('fails without credentials (UNAUTHORIZED) and with --user but no password to read', async () => {
  let io = cliIo();
  expect(await topics(['list', '--url', tb.url], { ...io, env: {} })).toBe(1);
  expect(io.err()).toMatch(/UNAUTHORIZED/);

  io = cliIo();
  expect(await topics(['list', '--url', tb.url, '--user', 'ops'], { ...io, env: {} })).toBe(2);
  expect(io.err()).toMatch(/--user ops needs a password: set WEIR_PASSWORD/);

  io = cliIo();
  expect(await topics(['list', '--url', tb.url, '--user', 'ops'], { ...io, env: { WEIR_PASSWORD: 'wrong' } })).toBe(1);
  expect(io.err()).toMatch(/UNAUTHORIZED/);
});
