/**
 * `--secure` for the load generator: the broker serves `wss://` with a certificate of a private CA
 * made for the series (Debian's openssl), and requires authentication; clients trust the CA and
 * authenticate with a JSON Web Token (HS256) allowing everything. What TLS and permission checks
 * cost, measured against the same workload without them.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SignJWT } from 'jose';

export interface SecureSetup {
  /** `weir start` flags. */
  brokerArgs: string[];
  /** The clients' CA certificate (PEM). */
  ca: string;
  /** A token allowing every action on every topic, group and transaction. */
  token: string;
  /** Remove the files. */
  dispose(): void;
}

const OPENSSL = fs.existsSync('/usr/bin/openssl') ? '/usr/bin/openssl' : 'openssl';

function openssl(args: string[], cwd: string): void {
  execFileSync(OPENSSL, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

export async function makeSecureSetup(): Promise<SecureSetup> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weir-bench-tls-'));
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=weir bench ca'], dir);
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'], dir);
  fs.writeFileSync(path.join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext'], dir);
  const secret = randomBytes(32).toString('hex');
  const secretFile = path.join(dir, 'jwt.secret');
  fs.writeFileSync(secretFile, secret, { mode: 0o600 });
  const token = await new SignJWT({ weir: { allow: [{ allow: ['*'], topics: ['#'], groups: ['#'], txns: ['#'] }] } })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('bench')
    .setIssuedAt()
    .setExpirationTime('1d')
    .sign(new TextEncoder().encode(secret));
  return {
    brokerArgs: ['--tls-cert', path.join(dir, 'server.pem'), '--tls-key', path.join(dir, 'server.key'), '--jwt-secret-file', secretFile],
    ca: fs.readFileSync(path.join(dir, 'ca.pem'), 'utf8'),
    token,
    dispose: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
