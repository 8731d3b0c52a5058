/**
 * `--ca FILE` (or WEIR_CA) on the client commands: a `wss://` broker with a private CA is reached
 * with its CA, and refused without it with the reason and the fix.
 */
import path from 'node:path';
import { afterAll, afterEach, expect, it } from 'vitest';
import { run as consume } from '../../../src/cli/commands/consume.js';
import { run as produce } from '../../../src/cli/commands/produce.js';
import { run as topics } from '../../../src/cli/commands/topics.js';
import { brokerFixture, startTestBroker } from '../../support/broker.js';
import { cliIo as io } from '../../support/cli-io.js';
import { issueCert, makeTestCa } from '../../support/tls-certs.js';
import { tmpDir } from '../../support/tmp-dir.js';

const certs = tmpDir('weir-cli-ca-');
afterAll(() => certs.cleanup());
const fx = brokerFixture();
afterEach(() => {
  delete process.env.WEIR_CA;
});

it('reaches a wss:// broker with --ca FILE or WEIR_CA; without it, says the certificate is not trusted and what to pass', async () => {
  const ca = makeTestCa(certs.dir);
  const server = issueCert(ca, 'server');
  fx.tb = await startTestBroker({ tls: { certFile: server.certFile, keyFile: server.keyFile } });
  const url = fx.tb.url;

  let t = io();
  expect(await topics(['create', 'secure', '--partitions', '1', '--url', url, '--ca', ca.certFile], t)).toBe(0);
  t = io('one\ntwo\n');
  expect(await produce(['secure', '--url', url, '--ca', ca.certFile], t)).toBe(0);
  process.env.WEIR_CA = ca.certFile;
  t = io();
  expect(await consume(['secure', '--url', url, '--from', 'earliest', '--count', '2'], t)).toBe(0);
  expect(t.out()).toBe('0 0  one\n0 1  two\n');
  t = io();
  expect(await consume(['secure', '--url', url, '--group', 'q', '--queue', '--count', '1'], t)).toBe(0);
  expect(t.out()).toBe('0 0  one\n');
  delete process.env.WEIR_CA;

  t = io();
  expect(await topics(['list', '--url', url], t)).toBe(1);
  expect(t.err()).toMatch(/^weir topics: CONNECTION_CLOSED: cannot connect to wss:\/\/.*: the broker's TLS certificate is not trusted .*--ca FILE or WEIR_CA/);

  t = io();
  expect(await topics(['list', '--url', url, '--ca', path.join(certs.dir, 'missing.pem')], t)).toBe(1);
  expect(t.err()).toMatch(/cannot read the CA file .*missing\.pem \(--ca or WEIR_CA\): ENOENT/);
});
