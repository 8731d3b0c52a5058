import { afterEach, expect, it } from 'vitest';
import { readMessages } from '../../../src/protocol/batch-reader.js';
import { brokerFixture, startTestBroker } from '../../support/broker.js';
import { RawClient } from '../../support/raw-client.js';
import { sleep } from './helpers.js';

const raws: RawClient[] = [];
const fx = brokerFixture();
const open = (url: string) => fx.client(url, { reconnect: false });
afterEach(() => {
  for (const r of raws.splice(0)) r.close();
});

async function raw(url: string): Promise<RawClient> {
  const r = await RawClient.connect(url);
  raws.push(r);
  return r;
}

it('speaks the queue protocol: deliver frames with delivery counts, acks and nacks in ranges, errors with fields', async () => {
  fx.tb = await startTestBroker();
  const p = await open(fx.tb.url);
  await p.createTopic('wire', { partitions: 1, config: { retryBackoff: { initialMs: 10, maxMs: 10, multiplier: 1, jitter: 0 } } });
  await p.produce('wire', ['a', 'b', 'c', 'd'].map((value) => ({ value })));

  const r = await raw(fx.tb.url);
  const sub = await r.request({ op: 'queue_subscribe', topic: 'wire', group: 'g', prefetch: 4 });
  expect(sub.op).toBe('result');
  expect(sub.sub).toBeGreaterThanOrEqual(2 ** 30);
  const first = await r.waitFor((f) => f.op === 'deliver');
  expect(first).toMatchObject({ sub: sub.sub, topic: 'wire', partition: 0, count: 4 });
  expect(first.deliveries).toBeUndefined(); // all first deliveries
  expect(readMessages('wire', 0, first.records as Uint8Array).map((m) => m.offset)).toEqual([0, 1, 2, 3]);

  // Ack 0 and 2 (two ranges), nack 1 and 3 with retry: they come back with delivery count 2.
  expect(await r.request({ op: 'ack', sub: sub.sub, partition: 0, ranges: [0, 1, 2, 3] })).toMatchObject({ op: 'result', count: 2 });
  expect(await r.request({ op: 'nack', sub: sub.sub, partition: 0, ranges: [1, 2, 3, 4], action: 'retry' })).toMatchObject({ op: 'result', count: 2 });
  const again = await r.waitFor((f) => f.op === 'deliver');
  expect(readMessages('wire', 0, again.records as Uint8Array).map((m) => m.offset)).toEqual([1, 3]);
  const d = again.deliveries as Uint8Array;
  expect([...d]).toEqual([2, 0, 2, 0]); // u16 LE per record
  // Acking what is not held (already acked, never delivered) applies nothing.
  expect(await r.request({ op: 'ack', sub: sub.sub, partition: 0, ranges: [0, 1, 7, 9] })).toMatchObject({ count: 0 });

  expect(await r.request({ op: 'ack', sub: 12345, partition: 0, ranges: [0, 1] })).toMatchObject({ op: 'error', code: 'UNKNOWN_SUBSCRIPTION' });
  expect(await r.request({ op: 'ack', sub: sub.sub, partition: 0, ranges: [0] })).toMatchObject({ code: 'BAD_REQUEST', details: { field: 'ranges' } });
  // Overlapping or unsorted ranges would cost (ranges × window) on the broker's main thread.
  expect(await r.request({ op: 'ack', sub: sub.sub, partition: 0, ranges: [0, 1_000_000, 0, 1_000_000] })).toMatchObject({ code: 'BAD_REQUEST', details: { field: 'ranges' } });
  expect(await r.request({ op: 'nack', sub: sub.sub, partition: 0, ranges: [5, 6, 1, 2], action: 'retry' })).toMatchObject({ code: 'BAD_REQUEST', details: { field: 'ranges' } });
  expect(await r.request({ op: 'ack', sub: sub.sub, partition: 0, ranges: [3, 3] })).toMatchObject({ code: 'BAD_REQUEST', details: { field: 'ranges' } });
  expect(await r.request({ op: 'nack', sub: sub.sub, partition: 0, ranges: [1, 2], action: 'later' })).toMatchObject({ code: 'BAD_REQUEST', details: { field: 'action' } });
  expect(await r.request({ op: 'queue_subscribe', topic: 'wire' })).toMatchObject({ code: 'BAD_REQUEST', details: { field: 'group' } });
  expect(await r.request({ op: 'dlq_redrive', topic: 'nope' })).toMatchObject({ code: 'TOPIC_NOT_FOUND' });
  // An ack without id that fails answers with the subscription.
  r.send({ op: 'ack', sub: 999, partition: 0, ranges: [0, 1] });
  expect(await r.waitFor((f) => f.op === 'error' && f.sub === 999)).toMatchObject({ code: 'UNKNOWN_SUBSCRIPTION' });
  expect(await r.request({ op: 'queue_unsubscribe', sub: sub.sub })).toMatchObject({ op: 'result' });
});

it('a graceful close gives back what the consumer never handled without raising its delivery count', async () => {
  fx.tb = await startTestBroker();
  const p = await open(fx.tb.url);
  await p.createTopic('give', { partitions: 1 });
  await p.produce('give', Array.from({ length: 50 }, (_, i) => ({ value: String(i) })));
  const a = await open(fx.tb.url);
  let handled = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const sub = await a.subscribe('give', { mode: 'queue', group: 'g', prefetch: 50 }, async () => {
    handled++;
    await gate; // the first message blocks; the other 49 wait in the SDK, never handled
  });
  await sleep(300);
  expect(handled).toBe(1);
  const closing = sub.close();
  release();
  await closing;
  const counts = new Map<number, number>();
  const b = await open(fx.tb.url);
  await b.subscribe('give', { mode: 'queue', group: 'g' }, (m) => {
    counts.set(Number(new TextDecoder().decode(m.value)), m.deliveryCount);
  });
  const deadline = Date.now() + 10_000;
  while (counts.size < 49 && Date.now() < deadline) await sleep(20);
  expect(counts.size).toBe(49);
  expect(counts.has(0)).toBe(false); // handled and acked by the first consumer
  expect([...counts.values()].every((n) => n === 1)).toBe(true);
});
