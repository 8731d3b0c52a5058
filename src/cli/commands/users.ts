/**
 * `weir users`: manage the users file that `weir start --users FILE` reads (security/users.ts).
 *
 *   add NAME [--role R ...] [--tenant T] [--password-stdin | --no-password] [--api-key]
 *   set-password NAME [--password-stdin]
 *   remove NAME
 *   list [--json]
 *   add-key NAME           → the new API key on stdout, once
 *   remove-key ID
 *
 * A password never comes from the command line (it would sit in the shell history and in `ps`):
 * it is read from stdin (`--password-stdin`, one line) or typed at a terminal prompt without echo.
 * stdout carries only results (the user list, a new API key), so that `KEY=$(weir users add-key
 * svc)` holds the key alone; confirmations go to stderr. Nothing secret is ever printed but a new
 * API key, once. The file is replaced atomically with mode 0600 on every change.
 */
import path from 'node:path';
import readline from 'node:readline';
import { Writable } from 'node:stream';
import { WeirError, badRequest } from '../../common/errors.js';
import { WeirCode } from '../../protocol/error-codes.js';
import { Users, MAX_PASSWORD_LENGTH, type UserSummary } from '../../security/users.js';
import { EXIT_OK, UsageError, command, parse, write, type CommandIo } from './common.js';

/** The file `weir users` works on without `--users`; `weir start --users FILE` is given it explicitly. */
export const DEFAULT_USERS_FILE = './users.json';

const USAGE = `usage: weir users [--users FILE] <command>
  add NAME [--role R ...] [--tenant T] [--password-stdin | --no-password] [--api-key]
                        a new user; the password is read from stdin (--password-stdin, one line)
                        or prompted for without echo at a terminal; --no-password: API keys only;
                        --api-key: also make an API key and print it (once)
  set-password NAME [--password-stdin]
  remove NAME           the user and its API keys
  list [--json]         users, roles, tenant, whether a password is set, API key ids (never a secret)
  add-key NAME          make an API key for NAME and print it: it is shown this once only
  remove-key ID         revoke an API key by its id (the 16 hex digits after "weir_")
  --users FILE          the users file (default ${DEFAULT_USERS_FILE}; created with mode 0600);
                        the broker reads it with: weir start --users FILE
`;

const SUBCOMMAND_OPTIONS: Record<string, readonly string[]> = {
  add: ['role', 'tenant', 'password-stdin', 'no-password', 'api-key'],
  'set-password': ['password-stdin'],
  remove: [],
  list: ['json'],
  'add-key': [],
  'remove-key': [],
};

/** A password typed or piped in: a newline and a little slack beyond the longest accepted one. */
const MAX_STDIN_BYTES = MAX_PASSWORD_LENGTH * 4 + 2;
const KEY_ID = /^[0-9a-f]{16}$/;

export async function run(argv: string[], io: CommandIo): Promise<number> {
  return command('users', USAGE, io, async () => {
    const { values, positionals } = parse(argv, {
      users: { type: 'string', default: DEFAULT_USERS_FILE },
      role: { type: 'string', multiple: true },
      tenant: { type: 'string' },
      'password-stdin': { type: 'boolean', default: false },
      'no-password': { type: 'boolean', default: false },
      'api-key': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    });
    if (values.help) {
      await write(io.stdout, USAGE);
      return EXIT_OK;
    }
    const [sub, arg, ...extra] = positionals;
    if (sub === undefined) throw new UsageError('missing command: add, set-password, remove, list, add-key or remove-key');
    const allowed = SUBCOMMAND_OPTIONS[sub];
    if (allowed === undefined) throw new UsageError(`unknown command ${JSON.stringify(sub)}`);
    for (const option of ['role', 'tenant', 'password-stdin', 'no-password', 'api-key', 'json'] as const) {
      const given = Array.isArray(values[option]) || typeof values[option] === 'string' || values[option] === true;
      if (given && !allowed.includes(option)) throw new UsageError(`--${option} does not apply to "${sub}"`);
    }
    if (sub === 'list') {
      if (arg !== undefined) throw new UsageError(`unexpected arguments: ${[arg, ...extra].join(' ')}`);
    } else {
      if (arg === undefined) throw new UsageError(`"${sub}" needs ${sub === 'remove-key' ? 'an API key ID' : 'a user NAME'}`);
      if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
    }
    const file = path.resolve(values.users!);
    const users = loadUsers(file);

    switch (sub) {
      case 'list':
        return list(users, values.json!, file, io);
      case 'add': {
        if (values['password-stdin'] && values['no-password']) throw new UsageError('--password-stdin and --no-password exclude each other');
        const fields = { roles: values.role ?? [], ...(values.tenant !== undefined ? { tenant: values.tenant } : {}) };
        // A taken or invalid name, role or tenant is refused before a password is asked for.
        await users.addUser(arg!, fields);
        const password = values['no-password'] ? undefined : await readPassword(values['password-stdin']!, arg!, io);
        let next = await users.addUser(arg!, { ...fields, ...(password !== undefined ? { password } : {}) });
        let key: string | undefined;
        let keyId: string | undefined;
        if (values['api-key']) ({ users: next, key, id: keyId } = next.addApiKey(arg!, Date.now()));
        next.save(file);
        const roles = values.role !== undefined && values.role.length > 0 ? values.role.join(', ') : 'none';
        await write(io.stderr, `weir users: added ${arg} to ${file} (roles: ${roles}${values.tenant !== undefined ? `, tenant ${values.tenant}` : ''}, ${password !== undefined ? 'password set' : 'no password'})\n`);
        if (key !== undefined) await printKey(key, keyId!, arg!, io);
        else if (password === undefined) await write(io.stderr, `weir users: ${arg} has no password and no API key yet: add one with weir users add-key ${arg}\n`);
        return EXIT_OK;
      }
      case 'set-password': {
        if (!users.has(arg!)) throw badRequest('name', `no user ${JSON.stringify(arg)}`);
        const password = await readPassword(values['password-stdin']!, arg!, io);
        (await users.setPassword(arg!, password)).save(file);
        await write(io.stderr, `weir users: set the password of ${arg} in ${file}\n`);
        return EXIT_OK;
      }
      case 'remove': {
        users.removeUser(arg!).save(file);
        await write(io.stderr, `weir users: removed ${arg} and its API keys from ${file}\n`);
        return EXIT_OK;
      }
      case 'add-key': {
        const made = users.addApiKey(arg!, Date.now());
        made.users.save(file);
        await printKey(made.key, made.id, arg!, io);
        return EXIT_OK;
      }
      case 'remove-key': {
        // The id only: a whole key on the command line would leave its secret in the shell history.
        if (arg!.startsWith('weir_')) throw badRequest('id', 'give the key\'s id (the 16 hex digits after "weir_", as "weir users list" shows), not the key itself');
        if (!KEY_ID.test(arg!)) throw badRequest('id', `an API key id is 16 hex digits, got ${JSON.stringify(arg)}`);
        users.removeApiKey(arg!).save(file);
        await write(io.stderr, `weir users: removed API key ${arg} from ${file}\n`);
        return EXIT_OK;
      }
    }
    throw new UsageError(`unknown command ${JSON.stringify(sub)}`);
  });
}

function loadUsers(file: string): Users {
  try {
    return Users.load(file);
  } catch (err) {
    if (WeirError.isWeirError(err) && err.code === WeirCode.BAD_CONFIG) throw new WeirError(WeirCode.BAD_CONFIG, `${file}: ${err.message}`, { cause: err });
    throw err;
  }
}

async function list(users: Users, json: boolean, file: string, io: CommandIo): Promise<number> {
  const all = users.listUsers();
  if (json) {
    await write(io.stdout, `${JSON.stringify(all, null, 2)}\n`);
    return EXIT_OK;
  }
  if (all.length === 0) await write(io.stderr, `weir users: no users in ${file}\n`);
  for (const u of all) await write(io.stdout, `${describeUser(u)}\n`);
  return EXIT_OK;
}

/** `NAME roles R,R tenant T password yes|no api-keys ID@CREATED,…` (`-` for none). */
export function describeUser(u: UserSummary): string {
  const roles = u.roles.length > 0 ? u.roles.join(',') : '-';
  const keys = u.apiKeys.length > 0 ? u.apiKeys.map((k) => `${k.id}@${new Date(k.createdAtMs).toISOString()}`).join(',') : '-';
  return `${u.name} roles ${roles} tenant ${u.tenant ?? '-'} password ${u.hasPassword ? 'yes' : 'no'} api-keys ${keys}`;
}

async function printKey(key: string, id: string, name: string, io: CommandIo): Promise<void> {
  await write(io.stdout, `${key}\n`);
  await write(io.stderr, `weir users: API key ${id} for ${name}: store it now, it is not shown again\n`);
}

interface TtyInput extends NodeJS.ReadableStream {
  isTTY?: boolean;
  setRawMode?: (raw: boolean) => unknown;
}

/** The password from stdin (one line) or, at a terminal, typed twice without echo. */
async function readPassword(fromStdin: boolean, name: string, io: CommandIo): Promise<string> {
  if (fromStdin) return readStdinLine(io.stdin);
  const input = io.stdin as TtyInput;
  if (input.isTTY !== true || typeof input.setRawMode !== 'function') {
    throw new UsageError('no password: pipe it in with --password-stdin, run at a terminal to be prompted, or give --no-password (API keys only)');
  }
  const first = await promptHidden(input, io.stderr, `Password for ${name}: `);
  const again = await promptHidden(input, io.stderr, 'Repeat it: ');
  if (first !== again) throw badRequest('password', 'the two passwords differ: nothing was changed');
  return first;
}

/** All of stdin, less one trailing newline; it must be one line. */
async function readStdinLine(stdin: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of stdin) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    bytes += b.length;
    if (bytes > MAX_STDIN_BYTES) throw badRequest('password', `a password is 1-${MAX_PASSWORD_LENGTH} characters`);
    chunks.push(b);
  }
  const text = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (/[\r\n]/.test(text)) throw badRequest('password', 'the password on stdin must be one line');
  return text;
}

/**
 * One line typed at the terminal with echo off: readline puts the terminal in raw mode and edits the
 * line (backspace, arrows) while its echo goes nowhere; the prompt goes to stderr.
 */
function promptHidden(input: TtyInput, stderr: NodeJS.WritableStream, prompt: string): Promise<string> {
  const muted = new Writable({ write: (_chunk, _encoding, done) => done() });
  stderr.write(prompt);
  const rl = readline.createInterface({ input, output: muted, terminal: true, historySize: 0 });
  return new Promise<string>((resolve, reject) => {
    let answered = false;
    rl.on('line', (line) => {
      answered = true;
      rl.close();
      stderr.write('\n');
      resolve(line);
    });
    rl.on('SIGINT', () => rl.close());
    rl.on('close', () => {
      if (answered) return;
      stderr.write('\n');
      reject(badRequest('password', 'no password entered: nothing was changed'));
    });
  });
}
