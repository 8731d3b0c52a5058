/**
 * `wss://`: the broker serves TLS with certificates made at test time, the SDK trusts a private CA
 * given as `tls.ca`, and a renewed certificate is served to new connections without a restart
 * while open connections keep working.
 */
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import diagnostics_channel from 'node:diagnostics_channel';
import { afterAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/client/index.js';
import { brokerFixture, startTestBroker } from '../support/broker.js';
import { issueCert, makeTestCa, replaceCertFiles, type IssuedCert, type TestCa } from '../support/tls-certs.js';
import { tmpDir } from '../support/tmp-dir.js';

const certs = tmpDir('weir-tls-');
afterAll(() => certs.cleanup());
const fx = brokerFixture();

let n = 0;
/** A fresh CA and a server certificate at fixed file names the broker is started with. */
function setup(): { ca: TestCa; server: IssuedCert; files: { certFile: string; keyFile: string }; caPem: Buffer } {
  const dir = path.join(certs.dir, String(n++));
  fs.mkdirSync(dir);
  const ca = makeTestCa(dir);
  const server = issueCert(ca, 'server');
  const files = { certFile: path.join(dir, 'live-cert.pem'), keyFile: path.join(dir, 'live-key.pem') };
  replaceCertFiles(server, files);
  return { ca, server, files, caPem: fs.readFileSync(ca.certFile) };
}

/** The serial number of the certificate a new TLS connection to `port` is served. */
function servedSerial(port: number, ca: Buffer, options: tls.ConnectionOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, ...options }, () => {
      resolve(socket.getPeerCertificate().serialNumber);
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

async function until(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Messages of weir:tls:reload from now on. */
function reloadEvents(): { events: Array<Record<string, unknown>>; stop: () => void } {
  const events: Array<Record<string, unknown>> = [];
  const fn = (m: unknown): void => void events.push(m as Record<string, unknown>);
  diagnostics_channel.subscribe('weir:tls:reload', fn);
  return { events, stop: () => diagnostics_channel.unsubscribe('weir:tls:reload', fn) };
}

describe('wss://', () => {
  it('serves the SDK over TLS when it trusts the broker\'s CA (tls.ca), and says wss:// in its URL', async () => {
    const { files, caPem, server } = setup();
    fx.tb = await startTestBroker({ tls: files });
    expect(fx.tb.url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+$/);
    expect(await servedSerial(fx.tb.broker.port, caPem)).toBe(server.serialNumber);
    const client = await fx.client(fx.tb.url, { tls: { ca: caPem } });
    await client.createTopic('t', { partitions: 1 });
    await client.produce('t', [{ value: 'over tls' }]);
    const got = await client.fetch('t', 0, 0);
    expect(got.messages.map((m) => new TextDecoder().decode(m.value))).toEqual(['over tls']);
  });

  it('refuses a broker whose certificate it does not trust, saying so and what to pass', async () => {
    const { files } = setup();
    fx.tb = await startTestBroker({ tls: files });
    const err = await connect(fx.tb.url, { reconnect: false }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'CONNECTION_CLOSED', retryable: false });
    expect((err as Error).message).toMatch(/the broker.s TLS certificate is not trusted \(UNABLE_TO_VERIFY_LEAF_SIGNATURE: .*\).*pass its certificate as tls\.ca \(CLI: --ca FILE or WEIR_CA\)/);
    // Trusting some other CA is no better.
    const other = makeTestCa(path.dirname(files.certFile), 'other');
    await expect(connect(fx.tb.url, { reconnect: false, tls: { ca: fs.readFileSync(other.certFile) } })).rejects.toMatchObject({ code: 'CONNECTION_CLOSED', retryable: false });
  });

  it('refuses to start with TLS files it cannot use (BAD_CONFIG), naming the file and the problem', async () => {
    const { files, ca } = setup();
    const dir = tmpDir('weir-tls-data-');
    try {
      const other = issueCert(ca, 'other');
      await expect(startTestBroker({ dataDir: path.join(dir.dir, 'a'), tls: { certFile: files.certFile, keyFile: other.keyFile } })).rejects.toMatchObject({
        code: 'BAD_CONFIG',
        message: expect.stringContaining(`the private key in ${other.keyFile} is not the key of the certificate in ${files.certFile}`) as unknown,
      });
      await expect(startTestBroker({ dataDir: path.join(dir.dir, 'b'), tls: { certFile: path.join(dir.dir, 'missing.pem'), keyFile: files.keyFile } })).rejects.toMatchObject({
        code: 'BAD_CONFIG',
        message: expect.stringMatching(/cannot read the TLS certificate file .*missing\.pem: ENOENT/) as unknown,
      });
      // Refused before the data directory is touched.
      expect(fs.existsSync(path.join(dir.dir, 'a'))).toBe(false);
    } finally {
      dir.cleanup();
    }
  });

  it('reloads the certificate on reloadTls(): new connections get the new one, open connections keep working', async () => {
    const { ca, files, caPem, server } = setup();
    fx.tb = await startTestBroker({ tls: { ...files, watch: false } });
    const port = fx.tb.broker.port;
    const before = await fx.client(fx.tb.url, { tls: { ca: caPem }, reconnect: false });
    await before.createTopic('r', { partitions: 1 });
    const received: string[] = [];
    await before.subscribe('r', { from: 'earliest' }, (m) => void received.push(new TextDecoder().decode(m.value)));

    const renewed = issueCert(ca, 'renewed');
    replaceCertFiles(renewed, files);
    expect(await servedSerial(port, caPem)).toBe(server.serialNumber); // nothing reloads by itself (watch off)
    const result = await fx.tb.broker.reloadTls();
    expect(result).toMatchObject({ ok: true, certificate: { serialNumber: renewed.serialNumber } });
    expect(await servedSerial(port, caPem)).toBe(renewed.serialNumber);

    // The connection made before the reload still produces and receives.
    await before.produce('r', [{ value: 'after reload' }]);
    await until(async () => received.includes('after reload'));
    // And a new SDK connection works with the new certificate.
    const after = await fx.client(fx.tb.url, { tls: { ca: caPem }, reconnect: false });
    expect((await after.fetch('r', 0, 0)).messages).toHaveLength(1);
    expect(fx.tb.broker.gatewayStats().connections).toBe(2);
  });

  it('keeps serving the old certificate when the new files do not load, and reports why', async () => {
    const { ca, files, caPem, server } = setup();
    fx.tb = await startTestBroker({ tls: { ...files, watch: false } });
    const port = fx.tb.broker.port;
    const reports = reloadEvents();
    try {
      fs.writeFileSync(files.certFile, 'not a certificate\n');
      const garbage = await fx.tb.broker.reloadTls();
      expect(garbage).toMatchObject({ ok: false, error: expect.stringContaining(`the certificate file ${files.certFile} is not a PEM certificate`) as unknown });
      // A renewed certificate whose key has not been written yet (the key is the old one).
      fs.copyFileSync(issueCert(ca, 'half').certFile, files.certFile);
      expect(await fx.tb.broker.reloadTls()).toMatchObject({ ok: false, error: expect.stringContaining('is not the key of the certificate') as unknown });
      expect(await servedSerial(port, caPem)).toBe(server.serialNumber);
      expect(reports.events).toMatchObject([
        { ok: false, trigger: 'call', certFile: files.certFile },
        { ok: false, trigger: 'call', certFile: files.certFile },
      ]);
    } finally {
      reports.stop();
    }
  });

  it('reloads by itself when the certificate files are replaced (watch), and ignores a touch', async () => {
    const { ca, files, caPem } = setup();
    fx.tb = await startTestBroker({ tls: files });
    const port = fx.tb.broker.port;
    const reports = reloadEvents();
    try {
      const open = await fx.client(fx.tb.url, { tls: { ca: caPem }, reconnect: false });
      await open.createTopic('w', { partitions: 1 });
      // Events in the directory that change no certificate file's contents reload nothing.
      fs.writeFileSync(path.join(path.dirname(files.certFile), 'unrelated.txt'), 'x');
      fs.utimesSync(files.certFile, new Date(), new Date());
      await new Promise((r) => setTimeout(r, 600));
      expect(reports.events).toEqual([]);

      const renewed = issueCert(ca, 'renewed');
      replaceCertFiles(renewed, files);
      // A connection caught in the old listen socket's backlog at the swap is reset: ask again.
      await until(async () => (await servedSerial(port, caPem).catch(() => '')) === renewed.serialNumber);
      expect(reports.events).toMatchObject([{ ok: true, trigger: 'files', certificate: { serialNumber: renewed.serialNumber } }]);
      await open.produce('w', [{ value: 'still here' }]);
    } finally {
      reports.stop();
    }
  });

  it('with a client CA (caFile): a client certificate it did not sign fails the handshake; a signed one, or none, is let in', async () => {
    const { ca, files, caPem } = setup();
    const clientCert = issueCert(ca, 'client', 'client');
    const strangers = makeTestCa(path.dirname(files.certFile), 'strangers');
    const stranger = issueCert(strangers, 'stranger', 'client');
    fx.tb = await startTestBroker({ tls: { ...files, caFile: ca.certFile } });
    const port = fx.tb.broker.port;
    const read = (c: IssuedCert): { cert: Buffer; key: Buffer } => ({ cert: fs.readFileSync(c.certFile), key: fs.readFileSync(c.keyFile) });

    // The server's alert comes after the client's side of the handshake (TLS 1.3): write to see it.
    const outcome = (options: tls.ConnectionOptions): Promise<string> =>
      new Promise((resolve) => {
        const socket = tls.connect({ host: '127.0.0.1', port, ca: caPem, ...options }, () => socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'));
        socket.once('data', (d: Buffer) => {
          resolve(d.toString().split('\r\n')[0]!);
          socket.destroy();
        });
        socket.once('error', (e) => resolve(`error: ${e.message}`));
      });
    expect(await outcome(read(stranger))).toMatch(/^error: .*alert unknown ca/);
    expect(await outcome(read(clientCert))).toBe('HTTP/1.1 200 OK');
    expect(await outcome({})).toBe('HTTP/1.1 200 OK');
    // The SDK presents one with tls.cert and tls.key.
    const client = await fx.client(fx.tb.url, { tls: { ca: caPem, ...read(clientCert) }, reconnect: false });
    expect(await client.listTopics()).toEqual([]);
  });
});
