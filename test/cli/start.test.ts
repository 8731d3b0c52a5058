/**
 * `weir start` and transport security, as an operator runs it (bin/weir.js, so `npm run build`
 * first): what it says about who can connect, the refusal to listen beyond this machine without
 * authentication, a renewed TLS certificate taken on SIGHUP without a restart, and the quota and
 * connection-limit flags.
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

it('--produce-quota slows producers to the rate; a rate, tenants file or connection limit that is wrong refuses the start (BAD_CONFIG, exit 1)', async () => {
  const b = await startBrokerProcess(path.join(dir(), 'data'), { args: ['--produce-quota', '100KB/s', '--consume-quota', '1MiB/s', '--max-connections-per-principal', '5'] });
  procs.push(b.proc);
  const c = await connect(b.url, { reconnect: false });
  clients.push(c);
  await c.createTopic('paced', { partitions: 1 });
  const value = new Uint8Array(10_000);
  const started = Date.now();
  // 300 KB at 100 KB/s: the first 100 KB pass at once (one second's worth), the rest take 2 s.
  for (let i = 0; i < 30; i++) await c.produce('paced', [{ value }]);
  const elapsed = Date.now() - started;
  expect(elapsed).toBeGreaterThan(1800);
  expect(elapsed).toBeLessThan(4000);

  const data = path.join(dir(), 'data');
  const tenants = path.join(dir(), 'tenants.json');
  fs.writeFileSync(tenants, JSON.stringify([{ name: 'a', prefix: 'a.' }, { name: 'b', prefix: 'a.b.' }]));
  for (const [args, message] of [
    [['--produce-quota', 'fast'], /--produce-quota must be a byte rate such as 200000, 200KB\/s or 1MiB\/s \(got "fast"\)/],
    [['--consume-quota', '0'], /--consume-quota must be a byte rate/],
    [['--tenants', tenants], /tenants a and b overlap: "a.b." is inside "a."/],
    [['--max-connections-per-principal', '0'], /--max-connections-per-principal must be a whole number, at least 1/],
  ] as const) {
    const refused = await runBrokerToExit([...args, '--port', '0', '--data', data]);
    expect(refused, args.join(' ')).toMatchObject({ code: 1, started: false });
    expect(refused.output).toMatch(message);
  }
  expect(fs.existsSync(data)).toBe(false);
}, 60_000);
