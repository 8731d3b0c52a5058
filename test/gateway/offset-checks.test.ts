/**
 * Offsets a client names are checked against the partition's log: a commit past the log end is
 * refused (OFFSET_OUT_OF_RANGE), a subscription starting past it is told so once and reads from the
 * end (auto.offset.reset=latest).
 */
import { expect, it } from 'vitest';
import { brokerFixture, startTestBroker } from '../support/broker.js';
import { RawClient, type Frame } from '../support/raw-client.js';
import { until } from '../support/payload.js';
import { readMessages } from '../../src/protocol/batch-reader.js';
import type { WeirClientError } from '../../src/client/index.js';

const fx = brokerFixture();

async function rawClient(url: string): Promise<RawClient> {
  const c = await RawClient.connect(url);
  fx.defer(() => c.close());
  return c;
}

it('refuses a commit past the log end with OFFSET_OUT_OF_RANGE, and the group keeps receiving', async () => {
  const tb = (fx.tb = await startTestBroker());
  const producer = await fx.client(tb.url);
  await producer.createTopic('commits', { partitions: 1 });
  await producer.produce('commits', Array.from({ length: 10 }, (_, i) => ({ value: `a${i}` })));

  const c = await rawClient(tb.url);
  const s = await c.request({ op: 'subscribe', topic: 'commits', group: 'g', from: 'earliest', credits: 100 });
  const sub = s.sub as number;
  await c.waitFor((f) => f.op === 'deliver' && f.sub === sub);

  // Before this fix the broker stored it, and the group never received anything again.
  const bad = await c.request({ op: 'commit', sub, offsets: [[0, 1e12]] });
  expect(bad).toMatchObject({ op: 'error', code: 'OFFSET_OUT_OF_RANGE', retryable: false, details: { partition: 0, offset: 1e12, start: 0, end: 10 } });
  // One past the end in a commit of two entries: nothing of it is stored.
  expect(await c.request({ op: 'commit', sub, offsets: [[0, 11]] })).toMatchObject({ op: 'error', code: 'OFFSET_OUT_OF_RANGE', details: { end: 10 } });
  expect((await c.request({ op: 'commit', sub, offsets: [[0, 10]] })).op).toBe('result'); // the end itself is valid
  expect((await c.request({ op: 'commit', sub, offsets: [[0, 4]] })).op).toBe('result'); // and so is going back
  expect((await c.request({ op: 'unsubscribe', sub })).op).toBe('result');

  await producer.produce('commits', Array.from({ length: 3 }, (_, i) => ({ value: `b${i}` })));
  const again = await c.request({ op: 'subscribe', topic: 'commits', group: 'g', from: 'earliest', credits: 100 });
  const assign = await c.waitFor((f) => f.op === 'assign' && f.sub === again.sub);
  expect(assign.partitions).toEqual([[0, 4]]);
  const offsets: number[] = [];
  while (offsets.length < 9) {
    const d = await c.waitFor((f) => f.op === 'deliver' && f.sub === again.sub);
    for (const m of readMessages('commits', 0, d.records as Uint8Array)) offsets.push(m.offset);
  }
  expect(offsets).toEqual([4, 5, 6, 7, 8, 9, 10, 11, 12]);
});

it('a subscription from an offset past the log end gets one error per partition and reads from the end', async () => {
  const tb = (fx.tb = await startTestBroker());
  const producer = await fx.client(tb.url);
  await producer.createTopic('far', { partitions: 2 });
  await producer.produce('far', Array.from({ length: 5 }, (_, i) => ({ value: `old${i}` })), { partition: 0 });

  const c = await rawClient(tb.url);
  const s = await c.request({ op: 'subscribe', topic: 'far', from: { offset: 1e15 }, credits: 100 });
  const errors: Frame[] = [];
  for (let i = 0; i < 2; i++) errors.push(await c.waitFor((f) => f.op === 'error' && f.sub === s.sub));
  errors.sort((a, b) => (a.details as { partition: number }).partition - (b.details as { partition: number }).partition);
  expect(errors[0]).toMatchObject({ code: 'OFFSET_OUT_OF_RANGE', retryable: false, details: { partition: 0, offset: 1e15, start: 0, end: 5 } });
  expect(errors[1]).toMatchObject({ code: 'OFFSET_OUT_OF_RANGE', details: { partition: 1, offset: 1e15, start: 0, end: 0 } });

  await producer.produce('far', [{ value: 'new0' }], { partition: 0 });
  await producer.produce('far', [{ value: 'new1' }], { partition: 1 });
  const got: string[] = [];
  while (got.length < 2) {
    const d = await c.waitFor((f) => f.op === 'deliver' && f.sub === s.sub);
    for (const m of readMessages('far', d.partition as number, d.records as Uint8Array)) got.push(`${m.partition}@${m.offset}:${new TextDecoder().decode(m.value)}`);
  }
  expect(got.sort()).toEqual(['0@5:new0', '1@0:new1']);
  // Said once: no error frame after those (nothing retries the bad offset).
  await new Promise((r) => setTimeout(r, 300));
  expect(c.frames.filter((f) => f.op === 'error')).toEqual([]);
});

it('the SDK reports the bad start and consumes from the end; a group then commits from there', async () => {
  const tb = (fx.tb = await startTestBroker());
  const producer = await fx.client(tb.url);
  await producer.createTopic('sdkfar', { partitions: 1 });
  await producer.produce('sdkfar', Array.from({ length: 3 }, (_, i) => ({ value: `old${i}` })));

  const consumer = await fx.client(tb.url);
  const errors: WeirClientError[] = [];
  const seen: number[] = [];
  const sub = await consumer.subscribe('sdkfar', { group: 'g', from: { offset: 1e15 }, commitIntervalMs: 10, onError: (e) => void errors.push(e) }, (m) => {
    seen.push(m.offset);
  });
  await until(() => errors.length === 1, 10_000, 'the out-of-range error');
  expect(errors[0]!.code).toBe('OFFSET_OUT_OF_RANGE');
  expect(errors[0]!.details).toMatchObject({ partition: 0, end: 3 });
  await producer.produce('sdkfar', [{ value: 'new' }]);
  await until(() => seen.length === 1, 10_000, 'the new message');
  expect(seen).toEqual([3]);
  await sub.close(); // commits 4
  await producer.produce('sdkfar', [{ value: 'newer' }]);
  const seen2: number[] = [];
  const sub2 = await consumer.subscribe('sdkfar', { group: 'g', from: { offset: 1e15 } }, (m) => void seen2.push(m.offset));
  await until(() => seen2.length === 1, 10_000, 'the message after the commit');
  expect(seen2).toEqual([4]);
  await sub2.close();
  expect(errors).toHaveLength(1);
});

it('a subscription from an offset below the log start (deleted by retention) starts at the log start, without an error', async () => {
  // Every sealed segment is over the byte budget; the partition checks retention every 5 s.
  const tb = (fx.tb = await startTestBroker({ retentionBytes: 1, segmentBytes: 4096 }));
  const producer = await fx.client(tb.url);
  await producer.createTopic('trimmed', { partitions: 1 });
  const pad = 'x'.repeat(1000);
  for (let i = 0; i < 20; i++) await producer.produce('trimmed', [{ value: `${i}-${pad}` }]);
  let start = 0;
  for (let waited = 0; start === 0; waited += 200) {
    if (waited > 20_000) throw new Error('retention deleted nothing');
    await new Promise((r) => setTimeout(r, 200));
    start = (await producer.describeTopic('trimmed')).offsets[0]!.start;
  }

  const c = await rawClient(tb.url);
  const s = await c.request({ op: 'subscribe', topic: 'trimmed', group: 'g', from: { offset: 0 }, credits: 100 });
  const d = await c.waitFor((f) => f.op === 'deliver' && f.sub === s.sub);
  expect(readMessages('trimmed', 0, d.records as Uint8Array)[0]!.offset).toBe(start);
  expect((await c.request({ op: 'commit', sub: s.sub, offsets: [[0, start + 1]] })).op).toBe('result');
  expect(c.frames.filter((f) => f.op === 'error')).toEqual([]);
});
