import { expect, it } from 'vitest';
import { type Message, type WeirClient } from '../../../src/client/index.js';
import { brokerFixture, startTestBroker } from '../../support/broker.js';
import { RawClient } from '../../support/raw-client.js';
import { tmpDir } from '../../support/tmp-dir.js';
import { until } from '../../support/payload.js';

const tmp = tmpDir('weir-patterns-');
const fx = brokerFixture({ keepData: true, after: () => tmp.cleanup() });
const client = fx.client;
const text = (m: Message): string => new TextDecoder().decode(m.value);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it('a pattern subscription receives every matching topic, including ones created after it started, and nothing else', async () => {
  fx.tb = await startTestBroker({ dataDir: tmp.dir });
  const admin = await client(fx.tb.url);
  for (const t of ['orders.eu.paid', 'orders.us.paid', 'orders.eu.new', 'orders.paid', 'logs']) await admin.createTopic(t, { partitions: 2 });
  for (const t of ['orders.eu.paid', 'orders.us.paid', 'orders.eu.new', 'orders.paid', 'logs']) {
    await admin.produce(t, Array.from({ length: 10 }, (_, i) => ({ key: `k${i % 3}`, value: `${t}#${i}` })));
  }

  const got: Message[] = [];
  const c = await client(fx.tb.url);
  const sub = await c.subscribe({ pattern: 'orders.*.paid' }, { from: 'earliest' }, (m) => {
    got.push(m);
  });
  await until(() => got.length === 20, 10_000, 'the two existing matching topics');
  expect(sub.topics()).toEqual(['orders.eu.paid', 'orders.us.paid']);

  // Created after the subscription started: it is picked up.
  await admin.createTopic('orders.fr.paid', { partitions: 3 });
  await admin.createTopic('orders.fr.refunded', { partitions: 1 });
  await until(() => sub.topics().length === 3, 10_000, 'the new topic to be matched');
  // Wait until each partition of the new topic is assigned before producing (from: earliest covers it anyway).
  await admin.produce('orders.fr.paid', Array.from({ length: 10 }, (_, i) => ({ key: `k${i % 3}`, value: `orders.fr.paid#${i}` })));
  await admin.produce('orders.fr.refunded', [{ value: 'no' }]);
  await until(() => got.length === 30, 10_000, 'messages of the new topic');
  await new Promise((r) => setTimeout(r, 200)); // nothing else arrives
  expect(got.length).toBe(30);

  const byTopic = new Map<string, string[]>();
  for (const m of got) byTopic.set(m.topic, [...(byTopic.get(m.topic) ?? []), text(m)]);
  expect([...byTopic.keys()].sort()).toEqual(['orders.eu.paid', 'orders.fr.paid', 'orders.us.paid']);
  for (const [t, values] of byTopic) {
    expect([...values].sort()).toEqual(Array.from({ length: 10 }, (_, i) => `${t}#${i}`).sort());
    // Per key, in produce order.
    for (const k of [0, 1, 2]) {
      const seq = values.map((v) => Number(v.split('#')[1])).filter((i) => i % 3 === k);
      expect(seq).toEqual([...seq].sort((a, b) => a - b));
    }
  }
  await sub.close();
  expect(sub.topics()).toEqual([]);
});

it('"#" covers every (non-internal) topic, and subscribe needs exactly one of topic and pattern', async () => {
  fx.tb = await startTestBroker({ dataDir: tmp.dir });
  const admin = await client(fx.tb.url);
  await admin.createTopic('a', { partitions: 1 });
  await admin.createTopic('a.b.c', { partitions: 1 });
  const raw = await RawClient.connect(fx.tb.url);
  fx.defer(() => raw.close());
  const both = await raw.request({ op: 'subscribe', topic: 'a', pattern: 'a.#', credits: 10 });
  expect(both).toMatchObject({ op: 'error', code: 'BAD_REQUEST', details: { field: 'pattern' } });
  const neither = await raw.request({ op: 'subscribe', credits: 10 });
  expect(neither).toMatchObject({ op: 'error', code: 'BAD_REQUEST', details: { field: 'topic' } });
  const bad = await raw.request({ op: 'subscribe', pattern: 'a.b*', credits: 10 });
  expect(bad).toMatchObject({ op: 'error', code: 'BAD_REQUEST', details: { field: 'pattern' } });
  const badGroup = await raw.request({ op: 'subscribe', pattern: '#', group: 'no spaces', credits: 10 });
  expect(badGroup).toMatchObject({ op: 'error', code: 'BAD_REQUEST', details: { field: 'group' } });

  const ok = await raw.request({ op: 'subscribe', pattern: '#', from: 'earliest', credits: 10 });
  expect(ok.op).toBe('result');
  const m1 = await raw.waitFor((f) => f.op === 'matched');
  const m2 = await raw.waitFor((f) => f.op === 'matched');
  expect([m1.topic, m2.topic].sort()).toEqual(['a', 'a.b.c']);
  expect(m1.patternSub).toBe(ok.patternSub);
  expect(typeof ok.patternSub).toBe('number');
  await admin.produce('a.b.c', [{ value: 'x' }]);
  const d = await raw.waitFor((f) => f.op === 'deliver');
  expect(d.topic).toBe('a.b.c');
  expect(d.sub).toBe(m1.topic === 'a.b.c' ? m1.sub : m2.sub);
  const notAnId = await raw.request({ op: 'unsubscribe_pattern', patternSub: 'a.#' });
  expect(notAnId).toMatchObject({ op: 'error', code: 'BAD_REQUEST', details: { field: 'patternSub' } });
  const un = await raw.request({ op: 'unsubscribe_pattern', patternSub: ok.patternSub });
  expect(un.op).toBe('result');
  const again = await raw.request({ op: 'unsubscribe_pattern', patternSub: ok.patternSub });
  expect(again).toMatchObject({ op: 'error', code: 'UNKNOWN_SUBSCRIPTION' });
});

it('with a group, pattern members share each matching topic\'s partitions, commit, and resume after a broker restart', async () => {
  fx.tb = await startTestBroker({ dataDir: tmp.dir });
  const admin = await client(fx.tb.url);
  await admin.createTopic('logs.app', { partitions: 2 });
  await admin.createTopic('logs.db.slow', { partitions: 2 });
  const seen = new Map<string, number>();
  const perMember = [0, 0];
  const handlerFor = (i: number) => (m: Message) => {
    const id = `${m.topic}/${text(m)}`;
    seen.set(id, (seen.get(id) ?? 0) + 1);
    perMember[i]!++;
  };
  const m0 = await client(fx.tb.url);
  const m1 = await client(fx.tb.url);
  const s0 = await m0.subscribePattern('logs.#', { group: 'readers', from: 'earliest' }, handlerFor(0));
  const s1 = await m1.subscribePattern('logs.#', { group: 'readers', from: 'earliest' }, handlerFor(1));
  // Both members own one partition of each topic once the group settled.
  await until(
    () => ['logs.app', 'logs.db.slow'].every((t) => s0.subscription(t)?.assignment().length === 1 && s1.subscription(t)?.assignment().length === 1),
    10_000,
    'the group to settle',
  );
  for (const t of ['logs.app', 'logs.db.slow']) {
    await admin.produce(t, Array.from({ length: 200 }, (_, i) => ({ key: `k${i}`, value: String(i) })));
  }
  await until(() => seen.size === 400, 10_000, 'all 400 messages');
  expect([...seen.values()].every((n) => n === 1)).toBe(true); // exactly once across the members
  expect(perMember[0]).toBeGreaterThan(0);
  expect(perMember[1]).toBeGreaterThan(0);
  await s0.close();
  await s1.close();
  await fx.closeClients();
  await fx.tb.stop({ keepData: true });

  // After a restart, the group resumes after what it committed: only the new messages arrive.
  fx.tb = await startTestBroker({ dataDir: tmp.dir });
  const admin2 = await client(fx.tb.url);
  await admin2.produce('logs.app', [{ key: 'n', value: 'new-app' }]);
  const after: string[] = [];
  const m2 = await client(fx.tb.url);
  await m2.subscribePattern('logs.#', { group: 'readers', from: 'earliest' }, (m) => {
    after.push(`${m.topic}/${text(m)}`);
  });
  await admin2.createTopic('logs.late', { partitions: 1 });
  await admin2.produce('logs.late', [{ value: 'new-late' }]);
  await until(() => after.length >= 2, 10_000, 'the two new messages');
  await new Promise((r) => setTimeout(r, 200));
  expect(after.sort()).toEqual(['logs.app/new-app', 'logs.late/new-late']);
});

it('keeps consuming every matching topic across a partition-actor crash and a reconnect', async () => {
  fx.tb = await startTestBroker({ dataDir: tmp.dir });
  const admin = await client(fx.tb.url);
  await admin.createTopic('metrics.cpu', { partitions: 2 });
  await admin.createTopic('metrics.mem', { partitions: 2 });
  const seen = new Set<string>();
  const c = await client(fx.tb.url);
  const sub = await c.subscribePattern('metrics.*', { group: 'm', from: 'earliest' }, (m) => {
    seen.add(`${m.topic}/${text(m)}`);
  });
  await admin.produce('metrics.cpu', Array.from({ length: 50 }, (_, i) => ({ key: `k${i}`, value: String(i) })));
  await until(() => seen.size === 50, 10_000, 'first batch');
  const actor = fx.tb.broker.partitionActor('metrics.cpu', 0);
  let exited = false;
  actor.onExit(() => (exited = true));
  actor.crash('throw');
  await until(() => exited, 10_000, 'the crash to be observed');
  await admin.produce('metrics.cpu', Array.from({ length: 50 }, (_, i) => ({ key: `k${i}`, value: String(50 + i) })));
  await admin.produce('metrics.mem', Array.from({ length: 50 }, (_, i) => ({ key: `k${i}`, value: String(i) })));
  await until(() => seen.size === 150, 20_000, `all after the crash (have ${seen.size})`);
  expect(sub.topics()).toEqual(['metrics.cpu', 'metrics.mem']);

  // The client's socket drops (as a network failure would): it reconnects and the pattern
  // subscription subscribes again, resuming the group from its commits and matching a topic
  // created meanwhile.
  await new Promise((r) => setTimeout(r, 300)); // let the periodic commit go out
  const reconnected = new Promise((r) => c.on('reconnect', r));
  dropSocket(c);
  await admin.createTopic('metrics.disk', { partitions: 1 });
  await admin.produce('metrics.disk', [{ value: 'd0' }]);
  await admin.produce('metrics.mem', [{ key: 'z', value: 'm-after' }]);
  await reconnected;
  await until(() => seen.has('metrics.disk/d0') && seen.has('metrics.mem/m-after'), 20_000, 'messages after the reconnect');
  expect(sub.topics()).toEqual(['metrics.cpu', 'metrics.disk', 'metrics.mem']);
  expect(seen.size).toBe(152);
});

it('without a group: starts at latest, reads topics created later from their start, and resumes each topic after a reconnect without duplicates', async () => {
  fx.tb = await startTestBroker({ dataDir: tmp.dir });
  const admin = await client(fx.tb.url);
  await admin.createTopic('jobs.a', { partitions: 2 });
  await admin.produce('jobs.a', Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: `old${i}` })));
  const got: string[] = [];
  const c = await client(fx.tb.url);
  const sub = await c.subscribePattern('jobs.*', {}, (m) => {
    got.push(`${m.topic}/${text(m)}`);
  });
  // 'latest' (the default) is resolved once each partition is assigned.
  await until(() => sub.subscription('jobs.a')?.assignment().length === 2, 10_000, 'jobs.a assigned');
  await admin.produce('jobs.a', Array.from({ length: 5 }, (_, i) => ({ key: `k${i}`, value: `new${i}` })));
  await admin.createTopic('jobs.b', { partitions: 1 });
  await admin.produce('jobs.b', [{ value: 'b0' }, { value: 'b1' }, { value: 'b2' }]); // at once, no wait
  await until(() => got.length === 8, 10_000, `new messages (have ${got.length})`);

  dropSocket(c);
  await admin.produce('jobs.a', Array.from({ length: 4 }, (_, i) => ({ key: `k${i}`, value: `gap${i}` })));
  await admin.produce('jobs.b', [{ value: 'b3' }]);
  await until(() => got.length === 13, 10_000, `messages after the reconnect (have ${got.length})`);
  await sleep(300);
  expect([...got].sort()).toEqual(
    ['jobs.a/new0', 'jobs.a/new1', 'jobs.a/new2', 'jobs.a/new3', 'jobs.a/new4', 'jobs.a/gap0', 'jobs.a/gap1', 'jobs.a/gap2', 'jobs.a/gap3', 'jobs.b/b0', 'jobs.b/b1', 'jobs.b/b2', 'jobs.b/b3'].sort(),
  );
  expect(c.stats().reconnects).toBe(1);
});

it('closing one topic of a pattern subscription stops that topic for good, also after a reconnect', async () => {
  fx.tb = await startTestBroker({ dataDir: tmp.dir });
  const admin = await client(fx.tb.url);
  await admin.createTopic('ex.a', { partitions: 1 });
  await admin.createTopic('ex.b', { partitions: 1 });
  const got: string[] = [];
  const c = await client(fx.tb.url);
  const sub = await c.subscribePattern('ex.*', { from: 'earliest' }, (m) => {
    got.push(`${m.topic}/${text(m)}`);
  });
  await until(() => sub.topics().length === 2, 10_000, 'both topics');
  await sub.subscription('ex.a')!.close();
  expect(sub.topics()).toEqual(['ex.b']);
  await admin.produce('ex.a', [{ value: 'a1' }]);
  await admin.produce('ex.b', [{ value: 'b1' }]);
  await until(() => got.includes('ex.b/b1'), 10_000, 'b1');

  const reconnected = new Promise((r) => c.on('reconnect', r));
  dropSocket(c);
  await reconnected;
  await admin.produce('ex.a', [{ value: 'a2' }]);
  await admin.produce('ex.b', [{ value: 'b2' }]);
  await until(() => got.includes('ex.b/b2'), 10_000, 'b2 after the reconnect');
  await sleep(300);
  expect(sub.topics()).toEqual(['ex.b']);
  expect(got.filter((g) => g.startsWith('ex.a'))).toEqual([]);

  // On the wire: an unsubscribed child is no longer part of its pattern subscription, and `exclude`
  // keeps topics out from the start.
  const raw = await RawClient.connect(fx.tb.url);
  fx.defer(() => raw.close());
  const ok = await raw.request({ op: 'subscribe', pattern: 'ex.*', from: 'earliest', credits: 10, exclude: ['ex.b'] });
  expect(ok.op).toBe('result');
  const matched = await raw.waitFor((f) => f.op === 'matched');
  expect(matched.topic).toBe('ex.a');
  expect(await raw.request({ op: 'unsubscribe', sub: matched.sub })).toMatchObject({ op: 'result' });
  await admin.createTopic('ex.c', { partitions: 1 });
  const c3 = await raw.waitFor((f) => f.op === 'matched');
  expect(c3.topic).toBe('ex.c');
  expect(await raw.request({ op: 'subscribe', pattern: 'ex.*', credits: 10, exclude: 'ex.b' })).toMatchObject({ op: 'error', code: 'BAD_REQUEST', details: { field: 'exclude' } });
});

/** Kill the SDK's WebSocket without telling the SDK (what a lost network does). */
function dropSocket(c: WeirClient): void {
  const internals = c as unknown as { conn: { socket: { terminate(): void } | null } };
  internals.conn.socket!.terminate();
}

it('wildcards do not match dead-letter topics; a pattern naming their last word does', async () => {
  fx.tb = await startTestBroker({ dataDir: tmp.dir });
  const admin = await client(fx.tb.url);
  await admin.createTopic('orders', { partitions: 1 }); // its dead-letter topic is orders.dlq
  await admin.createTopic('orders.eu', { partitions: 1 });
  await admin.createTopic('orders.dlq', { partitions: 1 });
  await admin.createTopic('pay', { partitions: 1, config: { deadLetterTopic: 'pay-failed' } });
  await admin.createTopic('notes.dlq', { partitions: 1 }); // nobody's dead-letter topic: an ordinary topic
  const c = await client(fx.tb.url);
  const all = await c.subscribePattern('#', { from: 'earliest' }, () => undefined);
  const orders = await c.subscribePattern('orders.#', { from: 'earliest' }, () => undefined);
  const deadLetters = await c.subscribePattern('*.dlq', { from: 'earliest' }, () => undefined);
  const payFailed = await c.subscribePattern('pay-failed', { from: 'earliest' }, () => undefined);
  // A dead-letter topic created after the subscriptions started (as a queue does on the first dead letter).
  await admin.createTopic('pay-failed', { partitions: 1 });
  await admin.createTopic('orders.us', { partitions: 1 });
  await until(() => all.topics().length === 5 && payFailed.topics().length === 1, 10_000, 'the new topics to be matched');
  await sleep(200);
  expect(all.topics()).toEqual(['notes.dlq', 'orders', 'orders.eu', 'orders.us', 'pay']);
  expect(orders.topics()).toEqual(['orders', 'orders.eu', 'orders.us']);
  expect(deadLetters.topics()).toEqual(['notes.dlq', 'orders.dlq']);
  expect(payFailed.topics()).toEqual(['pay-failed']);
});
