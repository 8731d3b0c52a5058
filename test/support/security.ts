/**
 * Security fixtures for tests of a broker with authentication: a real users file (cheap scrypt
 * parameters, so that logins are fast), a roles file, and HS256 JSON Web Tokens signed with jose.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SignJWT, type JWTPayload } from 'jose';
import { Users } from '../../src/security/users.js';
import type { Rule } from '../../src/security/permissions.js';

export interface TestUser {
  name: string;
  roles: string[];
  password?: string;
  /** Give the user an API key (returned by name). */
  apiKey?: boolean;
}

/** Writes `<dir>/users.json` with `users`; returns its path and each user's API key. */
export async function writeUsersFile(dir: string, users: TestUser[]): Promise<{ file: string; keys: Record<string, string> }> {
  let file = Users.empty({ scrypt: { N: 1024, r: 8, p: 1 } });
  const keys: Record<string, string> = {};
  for (const u of users) {
    file = await file.addUser(u.name, { roles: u.roles, ...(u.password !== undefined ? { password: u.password } : {}) });
    if (u.apiKey === true) {
      const made = file.addApiKey(u.name, Date.now());
      file = made.users;
      keys[u.name] = made.key;
    }
  }
  const at = path.join(dir, 'users.json');
  file.save(at);
  return { file: at, keys };
}

/** Writes `<dir>/roles.json` (`{ "roles": … }`); returns its path. */
export function writeRolesFile(dir: string, roles: Record<string, Rule[]>): string {
  const at = path.join(dir, 'roles.json');
  fs.writeFileSync(at, JSON.stringify({ roles }));
  return at;
}

/** Everything on every resource. */
export const SUPERUSER: Rule = { allow: ['*'], topics: ['#'], groups: ['#'], txns: ['#'] };

/** A 32-byte HS256 secret written to `<dir>/jwt.secret`. */
export function writeJwtSecret(dir: string): { file: string; secret: Uint8Array } {
  const secret = new TextEncoder().encode('a test secret of at least 32 bytes, for HS256');
  const file = path.join(dir, 'jwt.secret');
  fs.writeFileSync(file, `${Buffer.from(secret).toString()}\n`);
  return { file, secret };
}

/** An HS256 token for `sub` expiring in `ttlMs`, with the `weir` permission claim. */
export function signToken(secret: Uint8Array, sub: string, claim: { allow?: Rule[]; roles?: string[] }, ttlMs = 300_000, extra: JWTPayload = {}): Promise<string> {
  const now = Date.now();
  return new SignJWT({ sub, exp: Math.floor((now + ttlMs) / 1000), iat: Math.floor(now / 1000), weir: claim, ...extra })
    .setProtectedHeader({ alg: 'HS256' })
    .sign(secret);
}
