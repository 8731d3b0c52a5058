/**
 * `weir start` and transport security, as an operator runs it (bin/weir.js, so `npm run build`
 * first): what it says about who can connect, the refusal to listen beyond this machine without
 * authentication, and a renewed TLS certificate taken on SIGHUP without a restart.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { afterEach, expect, it } from 'vitest';
import { connect, type WeirClient } from '../../src/client/index.js';
import { exited, runBrokerToExit, startBrokerProcess } from '../support/child-broker.js';
import { issueCert, makeTestCa, replaceCertFiles } from '../support/tls-certs.js';
import { tmpDir } from '../support/tmp-dir.js';

const procs: ChildProcess[] = [];
const clients: WeirClient[] = [];
const cleanups: Array<() => void> = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => undefined);
  for (const p of procs.splice(0)) {
    p.kill('SIGKILL');
    await exited(p);
  }
  for (const c of cleanups.splice(0)) c();
});

function dir(): string {
  const t = tmpDir('weir-start-');
  cleanups.push(t.cleanup);
  return t.dir;
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

it('without authentication it listens on 127.0.0.1 and says only this machine can connect', async () => {
  const b = await startBrokerProcess(path.join(dir(), 'data'));
  procs.push(b.proc);
  expect(b.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
  await until(() => b.output().includes('\n'));
  await until(() => /no authentication configured: listening on 127\.0\.0\.1 only, so only this machine can connect/.test(b.output()));
});

it('refuses --host 0.0.0.0 without authentication (BAD_CONFIG, exit 1) unless --insecure, and then warns', async () => {
  const data = path.join(dir(), 'data');
  const refused = await runBrokerToExit(['--host', '0.0.0.0', '--port', '0', '--data', data]);
  expect(refused).toMatchObject({ code: 1, started: false });
  expect(refused.output).toMatch(/BAD_CONFIG: refusing to listen on 0\.0\.0\.0, which other machines can reach, without authentication: .*--insecure/);
  expect(fs.existsSync(data)).toBe(false);

  const b = await startBrokerProcess(data, { args: ['--host', '0.0.0.0', '--insecure'] });
  procs.push(b.proc);
  await until(() => /WARNING no authentication and --insecure: anyone who can reach 0\.0\.0\.0 can read, write and delete every topic/.test(b.output()));
});

it('serves wss:// with --tls-cert/--tls-key and takes a renewed certificate on SIGHUP; open connections keep working', async () => {
  const certs = dir();
  const ca = makeTestCa(certs);
  const first = issueCert(ca, 'first');
  const live = { certFile: path.join(certs, 'cert.pem'), keyFile: path.join(certs, 'key.pem') };
  replaceCertFiles(first, live);
  const b = await startBrokerProcess(path.join(dir(), 'data'), { args: ['--tls-cert', live.certFile, '--tls-key', live.keyFile] });
  procs.push(b.proc);
  expect(b.url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+$/);
  const port = Number(new URL(b.url).port);
  const caPem = fs.readFileSync(ca.certFile);
  const served = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, ca: caPem }, () => {
        resolve(s.getPeerCertificate().serialNumber);
        s.destroy();
      });
      s.once('error', reject);
    });
  expect(await served()).toBe(first.serialNumber);
  const client = await connect(b.url, { tls: { ca: caPem }, reconnect: false });
  clients.push(client);
  await client.createTopic('t', { partitions: 1 });

  const renewed = issueCert(ca, 'renewed');
  replaceCertFiles(renewed, live);
  b.proc.kill('SIGHUP');
  // A connection that reaches the old listen socket's backlog just as it is swapped is reset (the
  // client retries): ask until the new certificate is served.
  await until(async () => (await served().catch(() => '')) === renewed.serialNumber);
  expect(b.output()).toContain(`TLS certificate reloaded on SIGHUP from ${live.certFile} (CN=renewed, serial ${renewed.serialNumber}`);
  await client.produce('t', [{ value: 'after SIGHUP' }]);
  expect((await client.fetch('t', 0, 0)).messages).toHaveLength(1);
});
