/**
 * TLS for the WebSocket front door (`wss://`): the certificate files, their check before
 * uWebSockets.js takes them (it only says "App construction failed"), and the watch that tells the
 * gateway when they change so it can load them again without a restart.
 */
import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { AppOptions } from 'uWebSockets.js';
import { WeirError } from '../common/errors.js';
import { WeirCode } from '../protocol/error-codes.js';

export interface TlsFiles {
  /** PEM: the server's certificate, then any intermediates. */
  readonly certFile: string;
  /** PEM: its private key. */
  readonly keyFile: string;
  /**
   * PEM: the CAs of client certificates. uWebSockets.js then asks every client for a certificate
   * and fails the handshake of one that presents a certificate these CAs did not sign; a client
   * that presents none is let through (it cannot be required).
   */
  readonly caFile?: string;
  /** Of an encrypted private key. */
  readonly passphrase?: string;
}

/** What the broker serves after a (re)load: the leaf certificate, as operators identify it. */
export interface CertificateFacts {
  readonly subject: string;
  readonly serialNumber: string;
  readonly fingerprint256: string;
  readonly validTo: string;
}

/**
 * Read and check the files as uWS will load them: each readable, the certificate PEM, the key
 * PEM (opened with the passphrase) and the certificate's own. Throws BAD_CONFIG naming the file and
 * the problem.
 */
export function checkTlsFiles(files: TlsFiles): CertificateFacts {
  const certPem = readFile(files.certFile, 'certificate');
  const keyPem = readFile(files.keyFile, 'private key');
  if (files.caFile !== undefined) {
    const caPem = readFile(files.caFile, 'client CA');
    try {
      new X509Certificate(caPem);
    } catch (err) {
      throw badTls(`the client CA file ${files.caFile} is not a PEM certificate: ${(err as Error).message}`);
    }
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw badTls(`the certificate file ${files.certFile} is not a PEM certificate: ${(err as Error).message}`);
  }
  let key;
  try {
    key = createPrivateKey(files.passphrase === undefined ? { key: keyPem } : { key: keyPem, passphrase: files.passphrase });
  } catch (err) {
    throw badTls(`the private key file ${files.keyFile} cannot be read as a PEM key${files.passphrase === undefined ? ' (is it encrypted? give its passphrase)' : ' with the passphrase given'}: ${(err as Error).message}`);
  }
  if (!cert.checkPrivateKey(key)) throw badTls(`the private key in ${files.keyFile} is not the key of the certificate in ${files.certFile}`);
  return { subject: cert.subject.replace(/\n/g, ', '), serialNumber: cert.serialNumber, fingerprint256: cert.fingerprint256, validTo: cert.validTo };
}

/** The files as uWS's SSLApp options. */
export function uwsTlsOptions(files: TlsFiles): AppOptions {
  return {
    cert_file_name: files.certFile,
    key_file_name: files.keyFile,
    ...(files.caFile !== undefined ? { ca_file_name: files.caFile } : {}),
    ...(files.passphrase !== undefined ? { passphrase: files.passphrase } : {}),
  };
}

/** A digest of the files' contents now (null when one cannot be read): what tells a real change from a touch. */
export function tlsFilesDigest(files: TlsFiles): string | null {
  const h = createHash('sha256');
  for (const file of [files.certFile, files.keyFile, files.caFile]) {
    if (file === undefined) continue;
    try {
      h.update(fs.readFileSync(file));
    } catch {
      return null;
    }
    h.update('\0');
  }
  return h.digest('hex');
}

/**
 * Call `onChange` once the files' directories have been quiet for `debounceMs` after a change.
 * Directories, not the files: a certificate is usually replaced by a rename or a symlink swap
 * (certbot, Kubernetes secrets), which changes no inode a watch on the file would see. The caller
 * compares contents (tlsFilesDigest). Returns what stops watching.
 */
export function watchTlsFiles(files: TlsFiles, debounceMs: number, onChange: () => void): () => void {
  const dirs = new Set([files.certFile, files.keyFile, files.caFile].filter((f): f is string => f !== undefined).map((f) => path.dirname(path.resolve(f))));
  let timer: ReturnType<typeof setTimeout> | null = null;
  const changed = (): void => {
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      onChange();
    }, debounceMs);
    timer.unref();
  };
  const watchers: fs.FSWatcher[] = [];
  for (const dir of dirs) {
    try {
      const w = fs.watch(dir, { persistent: false }, changed);
      // A directory that goes away ends its watch; SIGHUP still reloads.
      w.on('error', () => w.close());
      watchers.push(w);
    } catch {
      // Not watchable (gone, or no inotify left): SIGHUP still reloads.
    }
  }
  return () => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    for (const w of watchers) w.close();
  };
}

function readFile(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw badTls(`cannot read the TLS ${what} file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function badTls(message: string): WeirError {
  return new WeirError(WeirCode.BAD_CONFIG, `BAD_CONFIG: ${message}`);
}
