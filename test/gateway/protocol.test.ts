import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { RawClient } from '../support/raw-client.js';
import { BatchBuilder } from '../../src/protocol/batch-builder.js';
import { readMessages } from '../../src/protocol/batch-reader.js';
import { writeU32 } from '../../src/protocol/record.js';

const LIMIT = 256 * 1024;
let tb: TestBroker;
let c: RawClient;

function batch(n: number, prefix = 'v'): Uint8Array {
  const b = new BatchBuilder();
  for (let i = 0; i < n; i++) b.add(`k${i}`, `${prefix}${i}`, { h: String(i) });
  return b.take();
}

async function end(client: RawClient, topic: string): Promise<number[]> {
  const r = await client.request({ op: 'describe_topic', topic });
  return (r.offsets as Array<{ end: number }>).map((o) => o.end);
}

beforeAll(async () => {
  tb = await startTestBroker({ gateway: { maxFrameBytes: LIMIT, maxMessageBytes: 64 * 1024 } });
  c = await RawClient.connect(tb.url);
  const r = await c.request({ op: 'create_topic', topic: 'orders', partitions: 4 });
  expect(r).toMatchObject({ op: 'result', topic: 'orders', partitions: 4, created: true });
});
afterAll(async () => {
  c?.close();
  await tb?.stop();
});

describe('gateway protocol', () => {
  it('says hello with its limits', async () => {
    const r = await c.request({ op: 'hello', version: 1 });
    expect(r).toMatchObject({ op: 'result', version: 1, maxFrameBytes: LIMIT, fsync: 'never' });
    const bad = await c.request({ op: 'hello', version: 99 });
    expect(bad).toMatchObject({ op: 'error', code: 'UNSUPPORTED_VERSION', retryable: false });
  });

  it('creates topics idempotently and refuses a different count', async () => {
    expect(await c.request({ op: 'create_topic', topic: 'orders', partitions: 4 })).toMatchObject({ created: false, partitions: 4 });
    expect(await c.request({ op: 'create_topic', topic: 'orders', partitions: 5 })).toMatchObject({ op: 'error', code: 'TOPIC_EXISTS' });
    expect(await c.request({ op: 'create_topic', topic: 'x', partitions: 0 })).toMatchObject({ op: 'error', code: 'INVALID_PARTITIONS' });
    const list = await c.request({ op: 'list_topics' });
    expect(list.topics).toContainEqual({ topic: 'orders', partitions: 4 });
  });

  it('refuses bad topic names with INVALID_TOPIC_NAME', async () => {
    for (const topic of ['a/b', 'x'.repeat(300), '..', '', '__internal', 'sp ace']) {
      const r = await c.request({ op: 'create_topic', topic, partitions: 1 });
      expect(r, topic.slice(0, 20)).toMatchObject({ op: 'error', code: 'INVALID_TOPIC_NAME', retryable: false });
    }
  });

  it('acknowledges a produce with partition and offset per message, then serves them by fetch', async () => {
    const r = await c.request({ op: 'produce', topic: 'orders', records: batch(50) });
    expect(r.op).toBe('result');
    const parts = r.parts as Array<[number, number, number]>;
    expect(parts.reduce((s, p) => s + p[2], 0)).toBe(50);
    const route = new Uint16Array(new Uint8Array(r.route as Uint8Array).slice().buffer);
    expect(route.length).toBe(50);
    // Each partition's messages come back from fetch in order, with their content.
    for (const [p, base, count] of parts) {
      const f = await c.request({ op: 'fetch', topic: 'orders', partition: p, offset: base, maxRecords: count });
      const msgs = readMessages('orders', p, f.records as Uint8Array);
      expect(msgs.length).toBe(count);
      const mine = [...route.keys()].filter((i) => route[i] === p);
      msgs.forEach((m, j) => {
        expect(m.offset).toBe(base + j);
        expect(m.key).toBe(`k${mine[j]}`);
        expect(new TextDecoder().decode(m.value)).toBe(`v${mine[j]}`);
        expect(m.headers).toEqual({ h: String(mine[j]) });
      });
    }
  });

  it('answers malformed CBOR with BAD_FRAME and keeps the connection', async () => {
    c.sendRaw(new Uint8Array([0xff, 0x01, 0x02]));
    const e = await c.waitFor((f) => f.op === 'error' && f.code === 'BAD_FRAME');
    expect(e.id).toBeUndefined();
    c.sendRaw(new Uint8Array([0x01])); // valid CBOR, not a map
    await c.waitFor((f) => f.op === 'error' && f.code === 'BAD_FRAME');
    c.sendRaw('{"op":"ping"}');
    await c.waitFor((f) => f.op === 'error' && f.code === 'BAD_FRAME');
    expect((await c.request({ op: 'ping' })).op).toBe('result');
  });

  it('answers a request without an id with BAD_REQUEST naming the op and the field', async () => {
    c.send({ op: 'ping' });
    const e = await c.waitFor((f) => f.op === 'error' && f.code === 'BAD_REQUEST');
    expect(e).toMatchObject({ details: { field: 'id' } });
    expect(String(e.message)).toContain('"ping" needs a non-negative integer "id"');
    expect(e.id).toBeUndefined();
    expect((await c.request({ op: 'ping' })).op).toBe('result');
  });

  it('answers a credit for an unknown subscription with an error frame naming it', async () => {
    c.send({ op: 'credit', sub: 4242, partition: 0, credits: 10 });
    const e = await c.waitFor((f) => f.op === 'error' && f.code === 'UNKNOWN_SUBSCRIPTION');
    expect(e).toMatchObject({ sub: 4242, retryable: false });
    expect(e.id).toBeUndefined();
  });

  it('answers an unknown operation with UNKNOWN_OP and a missing field with BAD_REQUEST', async () => {
    expect(await c.request({ op: 'frobnicate' })).toMatchObject({ op: 'error', code: 'UNKNOWN_OP' });
    expect(await c.request({ op: 'produce', topic: 'orders', records: 'not bytes' })).toMatchObject({ code: 'BAD_REQUEST', details: { field: 'records' } });
    expect(await c.request({ op: 'produce', topic: 'nope', records: batch(1) })).toMatchObject({ code: 'TOPIC_NOT_FOUND' });
    expect(await c.request({ op: 'fetch', topic: 'orders', partition: 9, offset: 0 })).toMatchObject({ code: 'PARTITION_NOT_FOUND' });
  });

  it('refuses a batch whose lengths lie, whole, and appends nothing', async () => {
    const before = await end(c, 'orders');
    const good = batch(10);
    const lying = good.slice();
    writeU32(lying, 0, 5000); // first record claims to run past the batch
    expect(await c.request({ op: 'produce', topic: 'orders', records: lying })).toMatchObject({
      op: 'error', code: 'BAD_BATCH', details: { defect: 'LENGTH_OVERRUNS_BATCH', record: 0 },
    });
    const inner = good.slice();
    writeU32(inner, 28, 9999); // value length runs past its record
    expect(await c.request({ op: 'produce', topic: 'orders', records: inner })).toMatchObject({ code: 'BAD_BATCH', details: { defect: 'VALUE_OVERRUNS_RECORD' } });
    const truncated = good.slice(0, good.length - 3);
    expect(await c.request({ op: 'produce', topic: 'orders', records: truncated })).toMatchObject({ code: 'BAD_BATCH' });
    expect(await end(c, 'orders')).toEqual(before);
  });

  it('refuses an oversize message with MESSAGE_TOO_LARGE', async () => {
    const b = new BatchBuilder();
    b.add('k', new Uint8Array(100 * 1024));
    expect(await c.request({ op: 'produce', topic: 'orders', records: b.take() })).toMatchObject({ code: 'MESSAGE_TOO_LARGE' });
  });

  it('closes a connection whose frame is over the limit with 1009, and only that one', async () => {
    const victim = await RawClient.connect(tb.url);
    const before = await end(c, 'orders');
    victim.sendRaw(new Uint8Array(LIMIT + 1000));
    const closed = await victim.waitClose();
    expect(closed.code).toBe(1009);
    expect(closed.reason).toMatch(/^FRAME_TOO_LARGE/);
    // The other connection still works, and acknowledged data is intact.
    expect((await c.request({ op: 'ping' })).op).toBe('result');
    expect(await end(c, 'orders')).toEqual(before);
    const r = await c.request({ op: 'produce', topic: 'orders', records: batch(3) });
    expect(r.op).toBe('result');
  });
});
