/** `weir produce --idempotent` against a real broker (the command run in-process). */
import { PassThrough } from 'node:stream';
import { afterEach, expect, it } from 'vitest';
import { run } from '../../src/cli/commands/produce.js';
import { readMessages } from '../../src/protocol/batch-reader.js';
import { Header } from '../../src/protocol/headers.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { RawClient } from '../support/raw-client.js';

let tb: TestBroker | undefined;
afterEach(async () => {
  await tb?.stop();
  tb = undefined;
});

it('produces through an idempotent producer: the stored batch carries its producer id and sequence', async () => {
  tb = await startTestBroker();
  const raw = await RawClient.connect(tb.url);
  await raw.request({ op: 'create_topic', topic: 'cli.eos', partitions: 1 });
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stdin.end('one\ntwo\nthree\n');
  const code = await run(['cli.eos', '--url', tb.url, '--idempotent'], { stdin, stdout, stderr });
  expect(code).toBe(0);
  expect(out).toMatch(/acked 3 messages; last: partition 0 offset 2/);
  const r = await raw.request({ op: 'fetch', topic: 'cli.eos', partition: 0, offset: 0 });
  const msgs = readMessages('cli.eos', 0, r.records as Uint8Array);
  expect(msgs.map((m) => new TextDecoder().decode(m.value))).toEqual(['one', 'two', 'three']);
  expect(msgs[0]!.headers[Header.PRODUCER_ID]).toMatch(/^\d+$/);
  expect(msgs[0]!.headers[Header.SEQUENCE]).toBe('0');
  raw.close();
});

it('refuses --idempotent with --delay / --deliver-at as a usage error, before sending anything', async () => {
  for (const flag of [['--delay', '1000'], ['--deliver-at', '2030-01-01T00:00:00Z']]) {
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let err = '';
    stderr.on('data', (d: Buffer) => (err += d.toString()));
    stdin.end('one\n');
    const code = await run(['cli.eos', '--url', 'ws://127.0.0.1:1', '--idempotent', ...flag], { stdin, stdout, stderr });
    expect(code).not.toBe(0);
    expect(err).toMatch(/--idempotent cannot send delayed messages/);
  }
});
