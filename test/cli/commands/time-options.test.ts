/** `weir produce --delay / --deliver-at / --ttl / --expires-at` against a real broker. */
import { afterEach, expect, it } from 'vitest';
import { run as produce } from '../../../src/cli/commands/produce.js';
import { connect, type WeirClient } from '../../../src/client/index.js';
import { startTestBroker, type TestBroker } from '../../support/broker.js';
import { until } from '../../support/payload.js';
import { cliIo as io } from '../../support/cli-io.js';

let tb: TestBroker | undefined;
let c: WeirClient | undefined;
afterEach(async () => {
  await c?.close();
  await tb?.stop();
  tb = c = undefined;
});


it('produces delayed, scheduled and expiring lines', async () => {
  tb = await startTestBroker();
  c = await connect(tb.url);
  await c.createTopic('cli', { partitions: 1 });
  const sentAt = Date.now();
  let t = io('a\nb\n');
  expect(await produce(['cli', '--url', tb.url, '--delay', '400'], t)).toBe(0);
  expect(t.out()).toMatch(/^acked 2 messages; last: partition 0 offset 1 \(delayed: an offset of the schedule log\)\n$/);
  t = io('c\n');
  expect(await produce(['cli', '--url', tb.url, '--deliver-at', new Date(sentAt + 200).toISOString()], t)).toBe(0);
  t = io('short-lived\n');
  expect(await produce(['cli', '--url', tb.url, '--ttl', '100'], t)).toBe(0);
  t = io('long-lived\n');
  expect(await produce(['cli', '--url', tb.url, '--expires-at', String(sentAt + 60_000)], t)).toBe(0);
  expect((await c.fetch('cli', 0, 0)).messages.map((m) => new TextDecoder().decode(m.value))).toContain('long-lived');
  let values: string[] = [];
  const poll = setInterval(() => void c!.fetch('cli', 0, 0).then((r) => (values = r.messages.map((m) => new TextDecoder().decode(m.value)))), 50);
  try {
    await until(() => values.length === 4, 10_000, 'the delayed lines');
  } finally {
    clearInterval(poll);
  }
  // short-lived expired (100 ms); a and b (one request, one due time) arrived in order, c when due.
  expect([...values].sort()).toEqual(['a', 'b', 'c', 'long-lived']);
  expect(values.indexOf('a')).toBeLessThan(values.indexOf('b'));
  const r = await c.fetch('cli', 0, 0);
  for (const m of r.messages) {
    const v = new TextDecoder().decode(m.value);
    if (v === 'a' || v === 'b') expect(m.timestamp).toBeGreaterThanOrEqual(sentAt + 400);
    if (v === 'c') expect(m.timestamp).toBeGreaterThanOrEqual(sentAt + 200);
    expect(Object.keys(m.headers)).toEqual(v === 'long-lived' ? ['weir-expires-at'] : []);
  }
});

it('refuses bad time options with a usage error', async () => {
  for (const args of [['--delay', 'soon'], ['--delay', '5', '--deliver-at', '1700000000000'], ['--deliver-at', 'tomorrow'], ['--ttl', '-1'], ['--expires-at', '']]) {
    const t = io('x\n');
    expect(await produce(['cli', '--url', 'ws://127.0.0.1:1', ...args], t)).toBe(2);
    expect(t.err()).toMatch(/usage: weir produce/);
  }
});
