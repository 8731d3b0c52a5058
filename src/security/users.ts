/**
 * The users file: the broker's own identities, managed by `weir users add|remove|list`. A user has
 * roles, an optional tenant, an optional password and any number of API keys.
 *
 * - Passwords are kept as scrypt hashes, each with its own random salt and its parameters, so that
 *   the defaults can rise without invalidating old hashes.
 * - An API key is `weir_<id>_<secret>`: the id (16 hex digits) finds the key, the secret (32 random
 *   bytes, base64url) proves it. Only a SHA-256 of the secret is stored: the secret is random and
 *   long, so a slow hash would add nothing. The key is shown once, when made.
 * - Verification compares in constant time and costs the same for a user that does not exist (a
 *   dummy scrypt), so that neither timing nor answers tell which names exist.
 *
 * `Users` is an immutable value: every change returns a new one, which the caller saves (atomic
 * write, mode 0600) or swaps in. No secret is ever returned after it was made.
 */
import { createHash, randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import fs from 'node:fs';
import { writeFileAtomic } from '../common/atomic-file.js';
import { WeirError, badRequest } from '../common/errors.js';
import { WeirCode } from '../protocol/error-codes.js';
import { MAX_ROLES, roleNameProblem } from './permissions.js';
import { principalNameProblem, tenantNameProblem, type Principal } from './principal.js';

export interface ScryptParams {
  /** CPU/memory cost, a power of two. */
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

/** 2^15 × 8 × 128 bytes = 32 MiB and tens of milliseconds per hash: slow to guess, fine per login. */
export const DEFAULT_SCRYPT: ScryptParams = Object.freeze({ N: 2 ** 15, r: 8, p: 1 });

/** Bounds on parameters read from a file: a tampered file must not make a login exhaust memory. */
const MAX_N = 2 ** 20;
const MAX_R = 32;
const MAX_P = 16;
const SALT_BYTES = 16;
const HASH_BYTES = 32;
/** Longer passwords are refused (after a dummy hash): scrypt's cost grows with the input. */
export const MAX_PASSWORD_LENGTH = 1024;
export const MAX_API_KEYS_PER_USER = 32;

export const USERS_FILE_VERSION = 1;
const USER_NAME = /^[A-Za-z0-9._@-]{1,128}$/;
const API_KEY = /^weir_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

interface PasswordHash {
  readonly scheme: 'scrypt';
  readonly N: number;
  readonly r: number;
  readonly p: number;
  /** base64 */
  readonly salt: string;
  /** base64 */
  readonly hash: string;
}

interface ApiKeyRecord {
  readonly id: string;
  /** base64url of SHA-256(secret) */
  readonly sha256: string;
  readonly createdAtMs: number;
}

interface UserRecord {
  readonly name: string;
  readonly roles: readonly string[];
  readonly tenant?: string;
  readonly password?: PasswordHash;
  readonly apiKeys: readonly ApiKeyRecord[];
}

/** What `listUsers` shows of a user: never a hash or a secret. */
export interface UserSummary {
  readonly name: string;
  readonly roles: readonly string[];
  readonly tenant?: string;
  readonly hasPassword: boolean;
  readonly apiKeys: readonly { readonly id: string; readonly createdAtMs: number }[];
}

export interface NewUser {
  readonly password?: string;
  readonly roles: readonly string[];
  readonly tenant?: string;
}

export interface UsersOptions {
  /** Parameters for new password hashes and for the dummy hash of unknown users. */
  readonly scrypt?: ScryptParams;
}

function scrypt(password: string, salt: Buffer, keyLength: number, params: ScryptParams): Promise<Buffer> {
  const options: ScryptOptions = { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r * params.p };
  return new Promise((resolve, reject) => scryptCallback(password, salt, keyLength, options, (err, key) => (err ? reject(err) : resolve(key))));
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function badUsersFile(message: string): WeirError {
  return new WeirError(WeirCode.BAD_CONFIG, `users file: ${message}`);
}

function paramsProblem(params: ScryptParams): string | null {
  const { N, r, p } = params;
  if (!Number.isInteger(N) || N < 2 || N > MAX_N || (N & (N - 1)) !== 0) return `scrypt N must be a power of two up to ${MAX_N}`;
  if (!Number.isInteger(r) || r < 1 || r > MAX_R) return `scrypt r must be 1-${MAX_R}`;
  if (!Number.isInteger(p) || p < 1 || p > MAX_P) return `scrypt p must be 1-${MAX_P}`;
  return null;
}

function userNameProblem(name: unknown): string | null {
  if (typeof name !== 'string' || !USER_NAME.test(name)) return 'a user name is 1-128 characters of A-Z a-z 0-9 . _ @ -';
  return principalNameProblem(name);
}

function rolesProblem(roles: unknown): string | null {
  if (!Array.isArray(roles) || roles.length > MAX_ROLES) return `roles must be a list of at most ${MAX_ROLES} role names`;
  for (const r of roles) {
    const problem = roleNameProblem(r);
    if (problem !== null) return problem;
  }
  return null;
}

function base64Bytes(value: unknown, encoding: 'base64' | 'base64url', min: number, max: number): Buffer | null {
  if (typeof value !== 'string') return null;
  const bytes = Buffer.from(value, encoding);
  return bytes.length >= min && bytes.length <= max && bytes.toString(encoding) === value ? bytes : null;
}

function parsePassword(v: unknown, where: string): PasswordHash {
  if (typeof v !== 'object' || v === null) throw badUsersFile(`${where}: password must be an object`);
  const o = v as Record<string, unknown>;
  if (o['scheme'] !== 'scrypt') throw badUsersFile(`${where}: unknown password scheme ${JSON.stringify(o['scheme'])}`);
  const params = { N: o['N'], r: o['r'], p: o['p'] } as ScryptParams;
  const problem = paramsProblem(params);
  if (problem !== null) throw badUsersFile(`${where}: ${problem}`);
  if (base64Bytes(o['salt'], 'base64', 16, 64) === null) throw badUsersFile(`${where}: password salt must be 16-64 bytes of base64`);
  if (base64Bytes(o['hash'], 'base64', 16, 64) === null) throw badUsersFile(`${where}: password hash must be 16-64 bytes of base64`);
  return { scheme: 'scrypt', N: params.N, r: params.r, p: params.p, salt: o['salt'] as string, hash: o['hash'] as string };
}

function parseApiKey(v: unknown, where: string): ApiKeyRecord {
  if (typeof v !== 'object' || v === null) throw badUsersFile(`${where}: an API key must be an object`);
  const o = v as Record<string, unknown>;
  if (typeof o['id'] !== 'string' || !/^[0-9a-f]{16}$/.test(o['id'])) throw badUsersFile(`${where}: an API key id is 16 hex digits`);
  if (base64Bytes(o['sha256'], 'base64url', 32, 32) === null) throw badUsersFile(`${where}: an API key's sha256 must be 32 bytes of base64url`);
  if (typeof o['createdAtMs'] !== 'number' || !Number.isSafeInteger(o['createdAtMs'])) throw badUsersFile(`${where}: createdAtMs must be an integer`);
  return { id: o['id'], sha256: o['sha256'] as string, createdAtMs: o['createdAtMs'] };
}

function parseUser(v: unknown, i: number): UserRecord {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badUsersFile(`user ${i} must be an object`);
  const o = v as Record<string, unknown>;
  const nameProblem = userNameProblem(o['name']);
  if (nameProblem !== null) throw badUsersFile(`user ${i}: ${nameProblem}`);
  const name = o['name'] as string;
  const where = `user ${JSON.stringify(name)}`;
  const roleProblem = rolesProblem(o['roles']);
  if (roleProblem !== null) throw badUsersFile(`${where}: ${roleProblem}`);
  if (o['tenant'] !== undefined && tenantNameProblem(o['tenant']) !== null) throw badUsersFile(`${where}: ${tenantNameProblem(o['tenant'])}`);
  const keys = o['apiKeys'] ?? [];
  if (!Array.isArray(keys) || keys.length > MAX_API_KEYS_PER_USER) throw badUsersFile(`${where}: apiKeys must be a list of at most ${MAX_API_KEYS_PER_USER}`);
  const user: UserRecord = {
    name,
    roles: [...(o['roles'] as string[])],
    ...(o['tenant'] !== undefined ? { tenant: o['tenant'] as string } : {}),
    ...(o['password'] !== undefined ? { password: parsePassword(o['password'], where) } : {}),
    apiKeys: keys.map((k) => parseApiKey(k, where)),
  };
  return user;
}

/** One dummy credential per process: what an unknown name or key id is checked against. */
let dummySalt: Buffer | undefined;
const DUMMY_DIGEST = randomBytes(32);

export class Users {
  private readonly byName: ReadonlyMap<string, UserRecord>;
  private readonly byKeyId: ReadonlyMap<string, { user: UserRecord; digest: Buffer }>;
  private readonly params: ScryptParams;

  private constructor(users: readonly UserRecord[], options: UsersOptions) {
    this.params = options.scrypt ?? DEFAULT_SCRYPT;
    const problem = paramsProblem(this.params);
    if (problem !== null) throw new RangeError(problem);
    const byName = new Map<string, UserRecord>();
    const byKeyId = new Map<string, { user: UserRecord; digest: Buffer }>();
    for (const u of users) {
      if (byName.has(u.name)) throw badUsersFile(`user ${JSON.stringify(u.name)} appears twice`);
      byName.set(u.name, u);
      for (const k of u.apiKeys) {
        if (byKeyId.has(k.id)) throw badUsersFile(`API key id ${k.id} appears twice`);
        byKeyId.set(k.id, { user: u, digest: Buffer.from(k.sha256, 'base64url') });
      }
    }
    this.byName = byName;
    this.byKeyId = byKeyId;
  }

  static empty(options: UsersOptions = {}): Users {
    return new Users([], options);
  }

  /** Parses a users file's text; throws BAD_CONFIG saying what is wrong with it. */
  static parse(text: string, options: UsersOptions = {}): Users {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw badUsersFile(`not JSON (${(e as Error).message})`);
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw badUsersFile('must be a JSON object');
    const o = json as Record<string, unknown>;
    if (o['version'] !== USERS_FILE_VERSION) throw badUsersFile(`unsupported version ${JSON.stringify(o['version'])} (this broker reads ${USERS_FILE_VERSION})`);
    if (!Array.isArray(o['users'])) throw badUsersFile('"users" must be a list');
    return new Users(o['users'].map(parseUser), options);
  }

  /** Reads the users file; a file that does not exist holds no users. */
  static load(file: string, options: UsersOptions = {}): Users {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return Users.empty(options);
      throw e;
    }
    return Users.parse(text, options);
  }

  /** The file's text (holds hashes: write it only with `save`). */
  serialize(): string {
    return `${JSON.stringify({ version: USERS_FILE_VERSION, users: [...this.byName.values()] }, null, 2)}\n`;
  }

  /** Replaces the file atomically and durably, readable by its owner only. */
  save(file: string): void {
    writeFileAtomic(file, this.serialize(), { durable: true, mode: 0o600 });
  }

  get size(): number {
    return this.byName.size;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  listUsers(): UserSummary[] {
    return [...this.byName.values()]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((u) => ({
        name: u.name,
        roles: [...u.roles],
        ...(u.tenant !== undefined ? { tenant: u.tenant } : {}),
        hasPassword: u.password !== undefined,
        apiKeys: u.apiKeys.map((k) => ({ id: k.id, createdAtMs: k.createdAtMs })),
      }));
  }

  /** A new user; BAD_REQUEST when the name is taken or a field is invalid. */
  async addUser(name: string, user: NewUser): Promise<Users> {
    const nameProblem = userNameProblem(name);
    if (nameProblem !== null) throw badRequest('name', nameProblem);
    if (this.byName.has(name)) throw badRequest('name', `user ${JSON.stringify(name)} exists`);
    const roleProblem = rolesProblem(user.roles);
    if (roleProblem !== null) throw badRequest('roles', roleProblem);
    if (user.tenant !== undefined && tenantNameProblem(user.tenant) !== null) throw badRequest('tenant', tenantNameProblem(user.tenant)!);
    const record: UserRecord = {
      name,
      roles: [...user.roles],
      ...(user.tenant !== undefined ? { tenant: user.tenant } : {}),
      ...(user.password !== undefined ? { password: await this.hashPassword(user.password) } : {}),
      apiKeys: [],
    };
    return this.with([...this.byName.values(), record]);
  }

  /** Sets (or replaces) a user's password. */
  async setPassword(name: string, password: string): Promise<Users> {
    const user = this.need(name);
    const hash = await this.hashPassword(password);
    return this.replace({ ...user, password: hash });
  }

  removeUser(name: string): Users {
    this.need(name);
    return this.with([...this.byName.values()].filter((u) => u.name !== name));
  }

  /** A new API key for `name`: the key is in the result only, never stored or shown again. */
  addApiKey(name: string, nowMs: number): { users: Users; key: string; id: string } {
    const user = this.need(name);
    if (user.apiKeys.length >= MAX_API_KEYS_PER_USER) throw badRequest('name', `user ${JSON.stringify(name)} has ${MAX_API_KEYS_PER_USER} API keys: remove one first`);
    let id: string;
    do id = randomBytes(8).toString('hex');
    while (this.byKeyId.has(id));
    const secret = randomBytes(32).toString('base64url');
    const record: ApiKeyRecord = { id, sha256: sha256(secret).toString('base64url'), createdAtMs: nowMs };
    return { users: this.replace({ ...user, apiKeys: [...user.apiKeys, record] }), key: `weir_${id}_${secret}`, id };
  }

  removeApiKey(id: string): Users {
    const entry = this.byKeyId.get(id);
    if (entry === undefined) throw badRequest('id', `no API key ${JSON.stringify(id)}`);
    return this.replace({ ...entry.user, apiKeys: entry.user.apiKeys.filter((k) => k.id !== id) });
  }

  /**
   * The user's principal when `password` is theirs, else null. Costs one scrypt whether or not the
   * user exists or has a password, and compares in constant time.
   */
  async verifyPassword(name: unknown, password: unknown): Promise<Principal | null> {
    const user = typeof name === 'string' ? this.byName.get(name) : undefined;
    const usable = typeof password === 'string' && password.length <= MAX_PASSWORD_LENGTH;
    const stored = user?.password;
    if (stored === undefined || !usable) {
      await this.dummyScrypt(usable ? password : '');
      return null;
    }
    const expected = Buffer.from(stored.hash, 'base64');
    const actual = await scrypt(password, Buffer.from(stored.salt, 'base64'), expected.length, stored);
    return timingSafeEqual(actual, expected) ? principalOf(user!, 'user') : null;
  }

  /** The principal of the key's user when `key` is a valid API key, else null (constant time). */
  verifyApiKey(key: unknown): Principal | null {
    const m = typeof key === 'string' ? API_KEY.exec(key) : null;
    const entry = m === null ? undefined : this.byKeyId.get(m[1]!);
    const actual = sha256(m === null ? '' : m[2]!);
    const ok = timingSafeEqual(actual, entry?.digest ?? DUMMY_DIGEST);
    return ok && entry !== undefined ? principalOf(entry.user, 'api-key') : null;
  }

  private async hashPassword(password: string): Promise<PasswordHash> {
    if (typeof password !== 'string' || password.length === 0 || password.length > MAX_PASSWORD_LENGTH) {
      throw badRequest('password', `a password is 1-${MAX_PASSWORD_LENGTH} characters`);
    }
    const salt = randomBytes(SALT_BYTES);
    const hash = await scrypt(password, salt, HASH_BYTES, this.params);
    return { scheme: 'scrypt', N: this.params.N, r: this.params.r, p: this.params.p, salt: salt.toString('base64'), hash: hash.toString('base64') };
  }

  private async dummyScrypt(password: string): Promise<void> {
    dummySalt ??= randomBytes(SALT_BYTES);
    const derived = await scrypt(password, dummySalt, HASH_BYTES, this.params);
    timingSafeEqual(derived, DUMMY_DIGEST);
  }

  private need(name: string): UserRecord {
    const user = this.byName.get(name);
    if (user === undefined) throw badRequest('name', `no user ${JSON.stringify(name)}`);
    return user;
  }

  private replace(user: UserRecord): Users {
    return this.with([...this.byName.values()].map((u) => (u.name === user.name ? user : u)));
  }

  private with(users: readonly UserRecord[]): Users {
    return new Users(users, { scrypt: this.params });
  }
}

function principalOf(user: UserRecord, source: 'user' | 'api-key'): Principal {
  return { name: user.name, roles: user.roles, ...(user.tenant !== undefined ? { tenant: user.tenant } : {}), source, rules: [] };
}
