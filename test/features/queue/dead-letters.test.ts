import { expect, it } from 'vitest';
import { brokerFixture, startTestBroker } from '../../support/broker.js';
import { until } from '../../support/payload.js';
import { sleep, valueOf } from './helpers.js';

const fx = brokerFixture();
const open = (url: string) => fx.client(url, { reconnect: false });

it('dead-letters fatal nacks and exhausted messages with the reason headers, then redrive brings them back to that group only', async () => {
  fx.tb = await startTestBroker();
  const p = await open(fx.tb.url);
  await p.createTopic('dl', { partitions: 2, config: { maxDeliveries: 3, retryBackoff: { initialMs: 10, maxMs: 20, multiplier: 2, jitter: 0 } } });
  const acks = await p.produce('dl', Array.from({ length: 10 }, (_, i) => ({ key: `key-${i}`, value: String(i), headers: { 'x-trace': `t${i}` } })));

  // Another group on the same topic acks everything: it must not get the redriven letters.
  const otherGot: number[] = [];
  const o = await open(fx.tb.url);
  await o.subscribe('dl', { mode: 'queue', group: 'other' }, (m) => {
    otherGot.push(valueOf(m));
  });

  const deliveries = new Map<number, number>();
  const c = await open(fx.tb.url);
  const sub = await c.subscribe('dl', { mode: 'queue', group: 'g', concurrency: 10 }, (m) => {
    const v = valueOf(m);
    deliveries.set(v, m.deliveryCount);
    if (v < 5) m.nack({ fatal: true, reason: 'bad input' });
    else throw new Error('still failing');
  });
  await until(() => otherGot.length === 10, 10_000, 'the other group');
  let letters = await c.deadLetters('dl');
  const deadline = Date.now() + 15_000;
  while (letters.length < 10 && Date.now() < deadline) {
    await sleep(50);
    letters = await c.deadLetters('dl');
  }
  expect(letters.length).toBe(10);
  const byValue = new Map(letters.map((l) => [Number(new TextDecoder().decode(l.message.value)), l]));
  for (let i = 0; i < 10; i++) {
    const l = byValue.get(i)!;
    expect(l, `letter ${i}`).toBeDefined();
    expect(l.topic).toBe('dl');
    expect(l.group).toBe('g');
    expect(l.partition).toBe(acks[i]!.partition);
    expect(l.offset).toBe(acks[i]!.offset);
    expect(l.message.partition).toBe(acks[i]!.partition); // same partition of dl.dlq
    expect(l.message.key).toBe(`key-${i}`);
    expect(l.message.headers['x-trace']).toBe(`t${i}`);
    if (i < 5) {
      expect(l.reason).toBe('rejected: bad input');
      expect(l.deliveries).toBe(1);
    } else {
      expect(l.reason.startsWith('max-deliveries')).toBe(true);
      expect(l.deliveries).toBe(3);
    }
  }
  await sub.close();
  expect((await p.describeTopic('dl.dlq')).partitions).toBe(2);

  // Redrive: all ten come back to group g (as new messages), once; a second redrive moves nothing.
  const again = new Map<number, number>();
  await c.subscribe('dl', { mode: 'queue', group: 'g' }, (m) => {
    again.set(valueOf(m), m.deliveryCount);
    expect(m.headers['weir-dlq-reason']).toBeUndefined();
    expect(m.headers['x-trace']).toBe(`t${valueOf(m)}`);
  });
  expect(await c.redrive('dl')).toBe(10);
  await until(() => again.size === 10, 10_000, 'the redriven letters');
  expect(await c.redrive('dl')).toBe(0);
  await sleep(300);
  expect([...again.values()].every((n) => n === 1)).toBe(true);
  expect(otherGot.length).toBe(10);
});

it('expired messages are never delivered: dropped, or dead-lettered with reason "expired"', async () => {
  fx.tb = await startTestBroker();
  const p = await open(fx.tb.url);
  await p.createTopic('exp', { partitions: 1, config: { ttlMs: 150, deadLetterExpired: true } });
  await p.produce('exp', [{ value: 'old-1' }, { value: 'old-2' }]);
  await p.produce('exp', [{ value: 'short', headers: { 'weir-ttl': '1' } }]);
  await sleep(400);
  await p.produce('exp', [{ value: 'fresh' }]);
  const got: string[] = [];
  const c = await open(fx.tb.url);
  await c.subscribe('exp', { mode: 'queue', group: 'g' }, (m) => {
    got.push(new TextDecoder().decode(m.value));
  });
  await until(() => got.length === 1, 10_000, 'the fresh message');
  let letters = await c.deadLetters('exp');
  for (let i = 0; i < 100 && letters.length < 3; i++) {
    await sleep(50);
    letters = await c.deadLetters('exp');
  }
  expect(got).toEqual(['fresh']);
  expect(letters.map((l) => l.reason)).toEqual(['expired', 'expired', 'expired']);
  expect(letters.map((l) => new TextDecoder().decode(l.message.value))).toEqual(['old-1', 'old-2', 'short']);

  // Without deadLetterExpired they are just skipped.
  await p.createTopic('exp2', { partitions: 1, config: { ttlMs: 100 } });
  await p.produce('exp2', [{ value: 'old' }]);
  await sleep(300);
  await p.produce('exp2', [{ value: 'fresh' }]);
  const got2: string[] = [];
  await c.subscribe('exp2', { mode: 'queue', group: 'g' }, (m) => {
    got2.push(new TextDecoder().decode(m.value));
  });
  await until(() => got2.length === 1, 10_000, 'the fresh message');
  await sleep(200);
  expect(got2).toEqual(['fresh']);
  expect(await c.deadLetters('exp2')).toEqual([]);
});
