import { afterEach, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../../support/broker.js';
import { until } from '../../support/payload.js';
import type { QueueMessage } from '../../../src/client/queue.js';
import { Clients, produceNumbered, sleep, valueOf } from './helpers.js';

let tb: TestBroker | undefined;
const clients = new Clients();
afterEach(async () => {
  await clients.closeAll();
  await tb?.stop();
  tb = undefined;
});

it('shares a topic among a group\'s consumers: every message handled once, acked out of order', async () => {
  tb = await startTestBroker();
  const p = await clients.open(tb.url);
  await p.createTopic('work', { partitions: 4 });
  await produceNumbered(p, 'work', 0, 2000);
  const seen = new Map<number, number>();
  const per = [0, 0];
  for (const i of [0, 1]) {
    const c = await clients.open(tb.url);
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
  tb = await startTestBroker();
  const p = await clients.open(tb.url);
  await p.createTopic('kill', { partitions: 2 });
  await produceNumbered(p, 'kill', 0, 300);
  const victim = await clients.open(tb.url);
  const held: QueueMessage[] = [];
  await victim.subscribe('kill', { mode: 'queue', group: 'g', prefetch: 40, autoAck: false }, (m) => {
    held.push(m); // never settled
  });
  await until(() => held.length === 40, 10_000, 'the victim to hold its prefetch');
  const heldValues = new Set(held.map(valueOf));
  victim.destroy();

  const got = new Map<number, number>();
  const s = await clients.open(tb.url);
  await s.subscribe('kill', { mode: 'queue', group: 'g', prefetch: 100 }, (m) => {
    got.set(valueOf(m), m.deliveryCount);
  });
  await until(() => got.size === 300, 20_000, 'all 300 at the survivor');
  for (const v of heldValues) expect(got.get(v), `message ${v}`).toBe(2);
  for (const [v, n] of got) if (!heldValues.has(v)) expect(n).toBe(1);
});
