import { expect, it } from 'vitest';
import { type Message, type WeirClient, type WeirClientError } from '../../../src/client/index.js';
import { run as groupsCommand } from '../../../src/cli/commands/groups.js';
import { brokerFixture, startTestBroker } from '../../support/broker.js';
import { tmpDir } from '../../support/tmp-dir.js';
import { until } from '../../support/payload.js';
import { cliIo } from '../../support/cli-io.js';

const tmp = tmpDir('weir-replay-');
const fx = brokerFixture({ keepData: true, after: () => tmp.cleanup() });
const client = fx.client;
const value = (m: Message): number => Number(new TextDecoder().decode(m.value));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);
const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);

async function produceRange(c: WeirClient, from: number, to: number): Promise<void> {
  await c.produce('replay', range(from, to).map((i) => ({ key: `k${i % 7}`, value: String(i) })));
}


it('a live member re-reads from a reset timestamp or offset, without its own commits undoing the reset', async () => {
  fx.tb = await startTestBroker({ dataDir: tmp.dir });
  const admin = await client(fx.tb.url);
  await admin.createTopic('replay', { partitions: 2 });
  await produceRange(admin, 0, 100);
  await sleep(50);
  const t = Date.now();
  await sleep(50);
  await produceRange(admin, 100, 200);

  const seen: number[] = [];
  const member = await client(fx.tb.url);
  const sub = await member.subscribe('replay', { group: 'r', from: 'earliest', commitIntervalMs: 20 }, (m) => {
    seen.push(value(m));
  });
  await until(() => seen.length === 200, 10_000, 'first pass');
  await sleep(100); // its periodic commit has stored 200 processed messages

  const offsets = await admin.resetOffsets('r', 'replay', { timestamp: t });
  expect(offsets.map(([p]) => p)).toEqual([0, 1]);
  const d = await admin.describeTopic('replay');
  expect(offsets.reduce((s, [p, o]) => s + d.offsets[p]!.end - o, 0)).toBe(100);
  await until(() => seen.length === 300, 10_000, `replay from the timestamp (have ${seen.length})`);
  await sleep(300);
  expect(seen.length).toBe(300);
  expect(sorted(seen.slice(200))).toEqual(range(100, 200));

  // To an offset: every partition back to 0 (clamped to its range), so all 200 again.
  expect((await admin.resetOffsets('r', 'replay', { offset: 0 })).map(([, o]) => o)).toEqual([0, 0]);
  await until(() => seen.length === 500, 10_000, `replay from offset 0 (have ${seen.length})`);
  await sleep(300);
  expect(seen.length).toBe(500);
  expect(sorted(seen.slice(300))).toEqual(range(0, 200));
  // Order per key holds within every pass.
  for (const pass of [seen.slice(0, 200), seen.slice(200, 300), seen.slice(300)]) {
    for (let k = 0; k < 7; k++) {
      const seq = pass.filter((v) => v % 7 === k);
      expect(seq).toEqual(sorted(seq));
    }
  }
  // An offset past the end is clamped to the end.
  const ends = (await admin.describeTopic('replay')).offsets.map((o) => o.end);
  expect((await admin.resetOffsets('r', 'replay', { offset: 1_000_000 })).map(([, o]) => o)).toEqual(ends);
  await sub.close();
});

it('a reset while a member is mid-stream wins over the commits the member makes while stopping', async () => {
  fx.tb = await startTestBroker({ dataDir: tmp.dir });
  const admin = await client(fx.tb.url);
  await admin.createTopic('replay', { partitions: 2 });
  await produceRange(admin, 0, 100);
  await sleep(50);
  const t = Date.now();
  await sleep(50);
  await produceRange(admin, 100, 400);

  const seen: number[] = [];
  const member = await client(fx.tb.url);
  await member.subscribe('replay', { group: 'busy', from: 'earliest', commitIntervalMs: 10 }, async (m) => {
    seen.push(value(m));
    await sleep(1); // slow: the reset lands while it still has messages queued and commits going out
  });
  await until(() => seen.length >= 150, 10_000, 'the member to be mid-stream');
  const before = seen.length;
  await admin.resetOffsets('busy', 'replay', { timestamp: t });
  // The reset is answered once the member stopped (committing what it had processed) and the new
  // offsets were stored over that; the member then resumes from them. Its deliveries and the
  // admin's answer travel on different connections, so the member may handle the first replayed
  // messages just before the answer arrives: the replay is the last 300 messages it handled, and
  // it began after the reset was asked for and no later than its answer.
  const mark = seen.length;
  expect(mark).toBeLessThan(400);
  await until(() => seen.length >= 300 && seen.length - 300 >= before && seen.length - 300 <= mark && sorted(seen.slice(-300)).join() === range(100, 400).join(), 20_000, 'the replay');
  const total = seen.length;
  await sleep(300);
  expect(seen.length).toBe(total);
  expect(sorted(seen.slice(total - 300))).toEqual(range(100, 400));
});

it('a reset without live members applies to the next member, survives a broker restart, and is exposed in the CLI', async () => {
  fx.tb = await startTestBroker({ dataDir: tmp.dir });
  const admin = await client(fx.tb.url);
  await admin.createTopic('replay', { partitions: 2 });
  await produceRange(admin, 0, 50);
  await sleep(50);
  const t = new Date();
  await sleep(50);
  await produceRange(admin, 50, 80);

  const first: number[] = [];
  const m1 = await client(fx.tb.url);
  const s1 = await m1.subscribe('replay', { group: 'g', from: 'earliest' }, (m) => {
    first.push(value(m));
  });
  await until(() => first.length === 80, 10_000, 'first pass');
  await s1.close(); // commits 80

  // Reset with a Date while nobody is subscribed; then stop the broker and start it again.
  await admin.resetOffsets('g', 'replay', t);
  await fx.closeClients();
  await fx.tb.stop({ keepData: true });
  fx.tb = await startTestBroker({ dataDir: tmp.dir });
  const again: number[] = [];
  const m2 = await client(fx.tb.url);
  await m2.subscribe('replay', { group: 'g', from: 'latest' }, (m) => {
    again.push(value(m));
  });
  await until(() => again.length === 30, 10_000, `re-read after the restart (have ${again.length})`);
  await sleep(200);
  expect(sorted(again)).toEqual(range(50, 80));
  await m2.close(); // the member leaves

  // CLI: to-earliest, printed per partition.
  let io = cliIo();
  expect(await groupsCommand(['reset', 'g', 'replay', '--to-earliest', '--url', fx.tb.url], io)).toBe(0);
  expect(io.out()).toBe('partition 0 offset 0\npartition 1 offset 0\n');
  const third: number[] = [];
  const m3 = await client(fx.tb.url);
  await m3.subscribe('replay', { group: 'g' }, (m) => {
    third.push(value(m));
  });
  await until(() => third.length === 80, 10_000, 'everything again after --to-earliest');
  expect(sorted(third)).toEqual(range(0, 80));

  io = cliIo();
  expect(await groupsCommand(['reset', 'g', 'replay', '--to-timestamp', t.toISOString(), '--url', fx.tb.url], io)).toBe(0);
  expect(io.out()).toMatch(/^partition 0 offset \d+\npartition 1 offset \d+\n$/);
  await until(() => third.length === 110, 10_000, 'the live member re-reads after the CLI reset');

  io = cliIo();
  expect(await groupsCommand(['reset', 'g', 'replay', '--to-offset', '3', '--to-earliest', '--url', fx.tb.url], io)).toBe(2);
  expect(io.err()).toMatch(/exactly one of/);
  io = cliIo();
  expect(await groupsCommand(['reset', 'g', 'missing', '--to-latest', '--url', fx.tb.url], io)).toBe(1);
  expect(io.err()).toMatch(/TOPIC_NOT_FOUND/);
});

it('rejects bad reset requests with stable codes', async () => {
  fx.tb = await startTestBroker({ dataDir: tmp.dir });
  const admin = await client(fx.tb.url);
  await admin.createTopic('replay', { partitions: 1 });
  const code = async (p: Promise<unknown>): Promise<[string, unknown]> => {
    const e = (await p.catch((x: unknown) => x)) as WeirClientError;
    return [e.code, e.details?.field];
  };
  expect(await code(admin.resetOffsets('g', 'nope', 'earliest'))).toEqual(['TOPIC_NOT_FOUND', undefined]);
  expect(await code(admin.resetOffsets('bad group', 'replay', 'earliest'))).toEqual(['BAD_REQUEST', 'group']);
  expect(await code(admin.resetOffsets('g', 'replay', { offset: -1 }))).toEqual(['BAD_REQUEST', 'to']);
  expect(await code(admin.resetOffsets('g', 'replay', 'middle' as 'earliest'))).toEqual(['BAD_REQUEST', 'to']);
  expect(await code(admin.resetOffsets('g', 42 as unknown as string, 'earliest'))).toEqual(['BAD_REQUEST', 'topic']);
});
