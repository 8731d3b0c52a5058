/**
 * Topic names against what the data directory can hold. A topic is a directory, and the broker
 * derives `__delay.<topic>` (delayed messages) and `<topic>.dlq` (dead letters) from it: a name was
 * accepted up to 249 characters, after which delayed messages to it were refused and (from 246 on,
 * its stored `<topic>.dlq` being over 249) the broker could not start again. Now every name the
 * broker accepts, and every name it derives from one, is a name it can store and start with again.
 *
 * And a broker starts whatever is wrong with one topic's files or entry: it serves the others and
 * says what it could not serve (the list `weir start` prints, /healthz).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { WeirError } from '../../../src/common/errors.js';
import { brokerFixture, startTestBroker } from '../../support/broker.js';
import { exited } from '../../support/child-broker.js';
import { until } from '../../support/payload.js';
import { tmpDir } from '../../support/tmp-dir.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const tmp = tmpDir('weir-topic-names-');
const fx = brokerFixture({ after: () => tmp.cleanup() });
const name = (n: number, c = 'n'): string => c.repeat(n);

async function failure(p: Promise<unknown>): Promise<WeirError> {
  try {
    await p;
  } catch (err) {
    if (WeirError.isWeirError(err)) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

it('accepts names up to what the data directory holds (247 with NAME_MAX 255), every derived name works, and the broker starts again', async () => {
  const dataDir = path.join(tmp.dir, 'limits');
  fx.tb = await startTestBroker({ dataDir });
  const c = await fx.client(fx.tb.url);

  for (const n of [248, 249]) {
    const err = await failure(c.createTopic(name(n), { partitions: 1 }));
    expect(err.code).toBe('INVALID_TOPIC_NAME');
    expect(err.message).toContain('1-247 characters');
    expect(err.message).toContain('255 bytes');
    expect(err.details).toMatchObject({ maxLength: 247 });
  }
  // At the limit: no default dead-letter topic (`<topic>.dlq` would be over it)…
  const longest = await c.createTopic(name(247), { partitions: 1 });
  expect(longest.config?.deadLetterTopic).toBeNull();
  // …and 4 under it, `<topic>.dlq` is itself a valid topic (at the limit).
  const withDlq = await c.createTopic(name(243, 'd'), { partitions: 1 });
  expect(withDlq.config?.deadLetterTopic).toBe(`${name(243, 'd')}.dlq`);
  expect(await c.createTopic(`${name(243, 'd')}.dlq`, { partitions: 1 })).toMatchObject({ created: true });
  // A dead-letter topic named in a config is held to the same limit.
  const bad = await failure(c.createTopic('short', { partitions: 1, config: { deadLetterTopic: name(248) } }));
  expect(bad.code).toBe('BAD_REQUEST');

  // Delayed messages to the longest name: its schedule topic `__delay.<247>` is a 255-byte name.
  const at = Date.now() + 300;
  await c.produce(name(247), [{ value: 'delayed', deliverAt: at }]);
  await c.produce(name(247), [{ value: 'now' }]);
  expect(fs.existsSync(path.join(dataDir, 'topics', `__delay.${name(247)}`))).toBe(true);

  // It starts again, with every topic, and the delayed message is delivered.
  await fx.closeClients();
  await fx.tb.stop({ keepData: true });
  fx.tb = await startTestBroker({ dataDir });
  const c2 = await fx.client(fx.tb.url);
  expect((await c2.listTopics()).map((t) => t.topic).sort()).toEqual([`${name(243, 'd')}.dlq`, name(243, 'd'), name(247)].sort());
  const got: string[] = [];
  await c2.subscribe(name(247), { from: 'earliest' }, (m) => void got.push(new TextDecoder().decode(m.value)));
  await until(() => got.length === 2, 10_000, 'the delayed message');
  expect(got.sort()).toEqual(['delayed', 'now']);
});

it('starts with a damaged topic directory, an unusable entry and settings an older broker stored: serves the rest and says what it could not', async () => {
  const dataDir = path.join(tmp.dir, 'damaged');
  fx.tb = await startTestBroker({ dataDir });
  const c = await fx.client(fx.tb.url);
  await c.createTopic('ok', { partitions: 1 });
  await c.createTopic('broken', { partitions: 2 });
  for (const [topic, p] of [['ok', 0], ['broken', 0], ['broken', 1]] as const) await c.produce(topic, [{ value: `${topic}/${p}` }], { partition: p });
  await fx.closeClients();
  await fx.tb.stop({ keepData: true });
  fx.tb = undefined;

  // broken/0: its segment is a directory now (its log cannot be opened: EISDIR).
  const p0 = path.join(dataDir, 'topics', 'broken', '0');
  const segment = path.join(p0, fs.readdirSync(p0).find((f) => f.endsWith('.log'))!);
  fs.rmSync(segment);
  fs.mkdirSync(segment);
  // topics.json: what an older broker let in: a 249-character topic whose stored dead-letter topic
  // (`<topic>.dlq`, 253 characters) is now refused; a topic whose name no file system takes; junk.
  const file = path.join(dataDir, 'topics.json');
  const stored = JSON.parse(fs.readFileSync(file, 'utf8')) as { topics: Array<Record<string, unknown>> };
  const okConfig = stored.topics.find((t) => t.topic === 'ok')!.config as Record<string, unknown>;
  stored.topics.push({ topic: name(249, 'o'), partitions: 1, config: { ...okConfig, deadLetterTopic: `${name(249, 'o')}.dlq` } });
  stored.topics.push({ topic: name(300, 'l'), partitions: 1 });
  stored.topics.push({ topic: 42, partitions: 'x' });
  fs.writeFileSync(file, JSON.stringify(stored));

  fx.tb = await startTestBroker({ dataDir });
  const c2 = await fx.client(fx.tb.url);
  // Served: ok, broken/1, and the old long topic (without its refused dead-letter topic).
  expect((await c2.fetch('ok', 0, 0)).messages.map((m) => new TextDecoder().decode(m.value))).toEqual(['ok/0']);
  expect((await c2.fetch('broken', 1, 0)).messages.map((m) => new TextDecoder().decode(m.value))).toEqual(['broken/1']);
  await c2.produce('ok', [{ value: 'after' }]);
  await c2.produce(name(249, 'o'), [{ value: 'old long topic' }]);
  expect((await c2.describeTopic(name(249, 'o'))).config?.deadLetterTopic).toBeNull();
  // Not served, and said why: broken/0 and the topic whose name is too long for a directory.
  const down = fx.tb.broker.topics.unavailable();
  expect(down.map((d) => [d.topic.slice(0, 10), d.partition, d.state, d.code])).toEqual([
    ['broken', 0, 'failed', 'STORAGE_ERROR'],
    [name(10, 'l'), 0, 'failed', 'STORAGE_ERROR'],
  ]);
  expect(down[0]!.message).toMatch(/EISDIR/);
  expect(down[1]!.message).toMatch(/ENAMETOOLONG/);
  const err = await failure(c2.fetch('broken', 0, 0));
  expect(err.code).toBe('STORAGE_ERROR');
  const problems = fx.tb.broker.topics.loadProblems.join('\n');
  expect(problems).toContain(`topic ${name(249, 'o')}`);
  expect(problems).toContain('without a dead-letter topic');
  expect(problems).toContain('skipped an entry');
  await fx.closeClients();
  await fx.tb.stop({ keepData: true });
  fx.tb = undefined;

  // `weir start` (the built CLI: `npm run build` first) says the same on stderr, and serves.
  const proc = spawn(process.execPath, [path.join(root, 'bin/weir.js'), 'start', '--port', '0', '--data', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  try {
    await until(() => /listening on/.test(out) && /broken\/0 is not served/.test(out) && /ENAMETOOLONG/.test(out) && /skipped an entry/.test(out), 20_000, `the start's lines: ${out}`);
    expect(out).toMatch(/partition broken\/0 is not served: .*EISDIR/);
    expect(proc.exitCode).toBeNull();
  } finally {
    proc.kill('SIGTERM');
    await exited(proc);
  }
});

it.skipIf(process.getuid?.() === 0)('starts with a topic directory it may not read (chmod 000; root reads it anyway, so skipped as root) and serves the rest', async () => {
  const dataDir = path.join(tmp.dir, 'unreadable');
  fx.tb = await startTestBroker({ dataDir });
  const c = await fx.client(fx.tb.url);
  await c.createTopic('ok', { partitions: 1 });
  await c.createTopic('locked', { partitions: 1 });
  await fx.closeClients();
  await fx.tb.stop({ keepData: true });
  const locked = path.join(dataDir, 'topics', 'locked');
  fs.chmodSync(locked, 0o000);
  fx.defer(() => fs.chmodSync(locked, 0o755));
  fx.tb = await startTestBroker({ dataDir });
  const c2 = await fx.client(fx.tb.url);
  await c2.produce('ok', [{ value: 'served' }]);
  const down = fx.tb.broker.topics.unavailable();
  expect(down).toMatchObject([{ topic: 'locked', partition: 0, state: 'failed', code: 'STORAGE_ERROR' }]);
  expect(down[0]!.message).toMatch(/EACCES/);
});
