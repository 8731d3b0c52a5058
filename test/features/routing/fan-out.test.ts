import { expect, it } from 'vitest';
import { type Message, type Subscription } from '../../../src/client/index.js';
import { brokerFixture, startTestBroker } from '../../support/broker.js';
import { until } from '../../support/payload.js';

const fx = brokerFixture();
const client = fx.client;

it('fan-out: three groups of two members on one topic each get every message exactly once, in order per key', async () => {
  fx.tb = await startTestBroker();
  const admin = await client(fx.tb.url);
  await admin.createTopic('events', { partitions: 4 });

  const groups = ['billing', 'search', 'audit'];
  // group → key → sequence numbers in the order the group's members handled them
  const received = new Map<string, Map<string, number[]>>();
  const counts = new Map<string, number>();
  const subs = new Map<string, Subscription[]>();
  for (const g of groups) {
    received.set(g, new Map());
    subs.set(g, []);
    for (let member = 0; member < 2; member++) {
      const c = await client(fx.tb.url);
      const sub = await c.subscribe('events', { group: g, from: 'earliest' }, (m: Message) => {
        const [key, seq] = new TextDecoder().decode(m.value).split(':');
        const perKey = received.get(g)!;
        perKey.set(key!, [...(perKey.get(key!) ?? []), Number(seq)]);
        counts.set(g, (counts.get(g) ?? 0) + 1);
      });
      subs.get(g)!.push(sub);
    }
  }
  // Every group settled: its two members own two partitions each.
  await until(() => groups.every((g) => subs.get(g)!.every((s) => s.assignment().length === 2)), 15_000, 'groups to settle');

  const keys = Array.from({ length: 25 }, (_, i) => `key${i}`);
  const total = 1000;
  for (let i = 0; i < total; i += 100) {
    await admin.produce('events', Array.from({ length: 100 }, (_, j) => {
      const key = keys[(i + j) % keys.length]!;
      return { key, value: `${key}:${i + j}` };
    }));
  }
  await until(() => groups.every((g) => (counts.get(g) ?? 0) >= total), 20_000, 'every group to get every message');
  await new Promise((r) => setTimeout(r, 200)); // and no more
  for (const g of groups) {
    expect(counts.get(g), g).toBe(total);
    const perKey = received.get(g)!;
    expect([...perKey.keys()].sort()).toEqual([...keys].sort());
    for (const [key, seqs] of perKey) {
      const expected = Array.from({ length: total }, (_, n) => n).filter((n) => keys[n % keys.length] === key);
      expect(seqs, `${g}/${key}`).toEqual(expected); // all of them, once, in produce order
    }
  }
});
