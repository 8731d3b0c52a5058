import { expect, it } from 'vitest';
import { brokerFixture, startTestBroker } from '../../support/broker.js';
import { until } from '../../support/payload.js';
import type { QueueMessage } from '../../../src/client/queue.js';
import { produceNumbered, sleep, valueOf } from './helpers.js';

const fx = brokerFixture();
const open = (url: string) => fx.client(url, { reconnect: false });

it('shares a topic among a group\'s consumers: every message handled once, acked out of order', async () => {
  fx.tb = await startTestBroker();
  const p = await open(fx.tb.url);
  await p.createTopic('work', { partitions: 4 });
  await produceNumbered(p, 'work', 0, 2000);
  const seen = new Map<number, number>();
  const per = [0, 0];
  for (const i of [0, 1]) {
    const c = await open(fx.tb.url);
    await c.subscribe('work', { mode: 'queue', group: 'g', prefetch: 50, concurrency: 10 }, async (m) => {
      await sleep(Math.random() * 3); // settle out of order
      seen.set(valueOf(m), (seen.get(valueOf(m)) ?? 0) + 1);
      per[i]!++;
      expect(m.deliveryCount).toBe(1);
    });
  }
  await until(() => seen.size === 2000, 30_000, 'all 2000');
  await sleep(300);
  expect([...seen.values()].every((n) => n === 1)).toBe(true);
  expect(per[0]).toBeGreaterThan(0);
  expect(per[1]).toBeGreaterThan(0);
});

it('redelivers what a killed consumer held to another one, with a higher delivery count; nothing is lost', async () => {
  fx.tb = await startTestBroker();
  const p = await open(fx.tb.url);
  await p.createTopic('kill', { partitions: 2 });
  await produceNumbered(p, 'kill', 0, 300);
  const victim = await open(fx.tb.url);
  const held: QueueMessage[] = [];
  await victim.subscribe('kill', { mode: 'queue', group: 'g', prefetch: 40, autoAck: false }, (m) => {
    held.push(m); // never settled
  });
  await until(() => held.length === 40, 10_000, 'the victim to hold its prefetch');
  const heldValues = new Set(held.map(valueOf));
  victim.destroy();

  const got = new Map<number, number>();
  const s = await open(fx.tb.url);
  await s.subscribe('kill', { mode: 'queue', group: 'g', prefetch: 100 }, (m) => {
    got.set(valueOf(m), m.deliveryCount);
  });
  await until(() => got.size === 300, 20_000, 'all 300 at the survivor');
  for (const v of heldValues) expect(got.get(v), `message ${v}`).toBe(2);
  for (const [v, n] of got) if (!heldValues.has(v)) expect(n).toBe(1);
});

it('nack with retry redelivers after the backoff, no earlier than initialMs, with the count going up', async () => {
  fx.tb = await startTestBroker();
  const p = await open(fx.tb.url);
  await p.createTopic('retry', { partitions: 1, config: { retryBackoff: { initialMs: 400, maxMs: 5000, multiplier: 2, jitter: 0 }, maxDeliveries: 10 } });
  await produceNumbered(p, 'retry', 0, 1);
  const times: number[] = [];
  const counts: number[] = [];
  const c = await open(fx.tb.url);
  await c.subscribe('retry', { mode: 'queue', group: 'g' }, (m) => {
    times.push(Date.now());
    counts.push(m.deliveryCount);
    if (m.deliveryCount < 3) m.nack();
  });
  await until(() => counts.length === 3, 10_000, 'three deliveries');
  expect(counts).toEqual([1, 2, 3]);
  expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(400); // initialMs
  expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(800); // initialMs × multiplier
  await sleep(1200);
  expect(counts.length).toBe(3); // acked by the third handler: never again
});

it('a handler that throws nacks with retry; visibility timeout redelivers what was never settled', async () => {
  fx.tb = await startTestBroker();
  const p = await open(fx.tb.url);
  await p.createTopic('vis', { partitions: 2, config: { visibilityTimeoutMs: 300, retryBackoff: { initialMs: 10, maxMs: 10, multiplier: 1, jitter: 0 } } });
  await produceNumbered(p, 'vis', 0, 20);
  const firstSeen = new Map<number, number>();
  const deliveries = new Map<number, number[]>();
  const c = await open(fx.tb.url);
  await c.subscribe('vis', { mode: 'queue', group: 'g', autoAck: false, concurrency: 20 }, (m) => {
    const v = valueOf(m);
    deliveries.set(v, [...(deliveries.get(v) ?? []), m.deliveryCount]);
    if (!firstSeen.has(v)) firstSeen.set(v, Date.now());
    if (v % 2 === 0 && m.deliveryCount === 1) throw new Error('boom'); // nacked by the SDK
    if (m.deliveryCount === 2) m.ack();
    // odd ones on their first delivery: never settled → visibility timeout
  });
  await until(() => [...deliveries.values()].filter((d) => d.length === 2).length === 20, 10_000, 'every message twice');
  await sleep(700);
  for (const [v, d] of deliveries) expect(d, `message ${v}`).toEqual([1, 2]);
});

it('autoAck false: messages never settled come back after the visibility timeout and replace their earlier copy in the SDK', async () => {
  fx.tb = await startTestBroker();
  const p = await open(fx.tb.url);
  await p.createTopic('forgot', { partitions: 1, config: { visibilityTimeoutMs: 100, maxDeliveries: 100 } });
  await produceNumbered(p, 'forgot', 0, 10);
  const c = await open(fx.tb.url);
  let seen = 0;
  const sub = await c.subscribe('forgot', { mode: 'queue', group: 'g', autoAck: false }, () => {
    seen++; // never settled
  });
  await until(() => seen >= 40, 10_000, 'four rounds of redelivery');
  // Every message was delivered about four times, but the SDK keeps one entry per message.
  expect(sub.stats().unsettled).toBe(10);
});

it('fair dispatch: a consumer holding its prefetch gets nothing more while another takes the rest', async () => {
  fx.tb = await startTestBroker();
  const p = await open(fx.tb.url);
  await p.createTopic('fair', { partitions: 3 });
  const busy = await open(fx.tb.url);
  const busyHeld: number[] = [];
  await busy.subscribe('fair', { mode: 'queue', group: 'g', prefetch: 5, autoAck: false }, (m) => {
    busyHeld.push(valueOf(m)); // holds them: never settled
  });
  const idle = await open(fx.tb.url);
  const idleGot: number[] = [];
  await idle.subscribe('fair', { mode: 'queue', group: 'g', prefetch: 10 }, async (m) => {
    idleGot.push(valueOf(m));
    await sleep(1);
  });
  await produceNumbered(p, 'fair', 0, 500);
  await until(() => busyHeld.length + idleGot.length === 500, 20_000, 'all 500');
  await sleep(300);
  expect(busyHeld.length).toBe(5);
  expect(idleGot.length).toBe(495);
  expect(new Set([...busyHeld, ...idleGot]).size).toBe(500);
});

it('ordered keys: a key\'s next message waits until the previous one is acked, even across consumers', async () => {
  fx.tb = await startTestBroker();
  const p = await open(fx.tb.url);
  await p.createTopic('ord', { partitions: 2, config: { orderedKeys: true } });
  const KEYS = 5;
  await produceNumbered(p, 'ord', 0, 200, (i) => `key-${i % KEYS}`);
  const inFlight = new Map<string, number>();
  const order = new Map<string, number[]>();
  let violations = 0;
  let total = 0;
  for (let i = 0; i < 3; i++) {
    const c = await open(fx.tb.url);
    await c.subscribe('ord', { mode: 'queue', group: 'g', prefetch: 20, concurrency: 20 }, async (m) => {
      const k = m.key!;
      if ((inFlight.get(k) ?? 0) > 0) violations++;
      inFlight.set(k, (inFlight.get(k) ?? 0) + 1);
      await sleep(2 + Math.random() * 5);
      order.set(k, [...(order.get(k) ?? []), valueOf(m)]);
      inFlight.set(k, inFlight.get(k)! - 1);
      total++;
    });
  }
  await until(() => total === 200, 30_000, 'all 200');
  expect(violations).toBe(0);
  for (const [k, values] of order) expect(values, k).toEqual([...values].sort((a, b) => a - b));
});

it('fan-out: two queue groups on one topic each get every message once', async () => {
  fx.tb = await startTestBroker();
  const p = await open(fx.tb.url);
  await p.createTopic('fan', { partitions: 4 });
  await produceNumbered(p, 'fan', 0, 1000);
  const got = { a: new Map<number, number>(), b: new Map<number, number>() };
  for (const g of ['a', 'b'] as const) {
    for (let i = 0; i < 2; i++) {
      const c = await open(fx.tb.url);
      await c.subscribe('fan', { mode: 'queue', group: g }, (m) => {
        got[g].set(valueOf(m), (got[g].get(valueOf(m)) ?? 0) + 1);
      });
    }
  }
  await until(() => got.a.size === 1000 && got.b.size === 1000, 20_000, 'both groups');
  await sleep(200);
  for (const g of ['a', 'b'] as const) expect([...got[g].values()].every((n) => n === 1), g).toBe(true);
});

it('queue errors: unknown topic, bad group, bad prefetch', async () => {
  fx.tb = await startTestBroker();
  const c = await open(fx.tb.url);
  await c.createTopic('errs', { partitions: 1 });
  await expect(c.subscribe('nope', { mode: 'queue', group: 'g' }, () => undefined)).rejects.toMatchObject({ code: 'TOPIC_NOT_FOUND' });
  await expect(c.subscribe('errs', { mode: 'queue', group: 'bad group!' }, () => undefined)).rejects.toMatchObject({ code: 'BAD_REQUEST', details: { field: 'group' } });
  await expect(c.subscribe('errs', { mode: 'queue', group: 'g', prefetch: 0 }, () => undefined)).rejects.toMatchObject({ code: 'BAD_REQUEST', details: { field: 'prefetch' } });
});
