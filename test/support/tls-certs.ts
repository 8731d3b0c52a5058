/**
 * Certificates made at test time with the system's openssl (Debian's /usr/bin/openssl): a test CA,
 * server certificates for 127.0.0.1 and localhost signed by it, and client certificates.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const OPENSSL = fs.existsSync('/usr/bin/openssl') ? '/usr/bin/openssl' : 'openssl';

function openssl(args: string[], cwd: string): void {
  execFileSync(OPENSSL, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

export interface TestCa {
  readonly dir: string;
  /** The CA certificate (PEM): what clients trust. */
  readonly certFile: string;
  readonly keyFile: string;
}

export interface IssuedCert {
  readonly certFile: string;
  readonly keyFile: string;
  /** Upper-case hex, as X509Certificate.serialNumber and tls's getPeerCertificate().serialNumber say it. */
  readonly serialNumber: string;
}

/** A self-signed CA in `dir` (named `name`, so one dir can hold several). */
export function makeTestCa(dir: string, name = 'ca'): TestCa {
  const certFile = path.join(dir, `${name}.pem`);
  const keyFile = path.join(dir, `${name}.key`);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', `/CN=weir test ${name}`], dir);
  return { dir, certFile, keyFile };
}

/**
 * A certificate signed by `ca`, written to `<name>.pem` and `<name>.key` in the CA's dir: a server's
 * for 127.0.0.1 and localhost, or a client's.
 */
export function issueCert(ca: TestCa, name: string, kind: 'server' | 'client' = 'server'): IssuedCert {
  const dir = ca.dir;
  const certFile = path.join(dir, `${name}.pem`);
  const keyFile = path.join(dir, `${name}.key`);
  const csr = path.join(dir, `${name}.csr`);
  const ext = path.join(dir, `${name}.ext`);
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', csr, '-subj', `/CN=${name}`], dir);
  fs.writeFileSync(
    ext,
    kind === 'server'
      ? 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n'
      : 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n',
  );
  // A random serial per certificate: what tells a reloaded certificate from the one before.
  openssl(['x509', '-req', '-in', csr, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-set_serial', `0x${randomSerial()}`, '-out', certFile, '-days', '2', '-extfile', ext], dir);
  return { certFile, keyFile, serialNumber: new X509Certificate(fs.readFileSync(certFile)).serialNumber };
}

function randomSerial(): string {
  // 16 hex digits, leading digit 1-7: positive, and X509Certificate prints it without padding.
  return `${1 + Math.floor(Math.random() * 7)}${Array.from({ length: 15 }, () => Math.floor(Math.random() * 16).toString(16)).join('')}`.toUpperCase();
}

/** Put `from`'s certificate and key where `to`'s are (by rename, as a renewal tool does). */
export function replaceCertFiles(from: IssuedCert, to: { certFile: string; keyFile: string }): void {
  fs.copyFileSync(from.keyFile, `${to.keyFile}.new`);
  fs.copyFileSync(from.certFile, `${to.certFile}.new`);
  fs.renameSync(`${to.keyFile}.new`, to.keyFile);
  fs.renameSync(`${to.certFile}.new`, to.certFile);
}
