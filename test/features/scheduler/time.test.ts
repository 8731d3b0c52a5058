/**
 * Delayed messages and TTL end to end: a real broker, the SDK over a real WebSocket (and a raw
 * protocol client where the SDK would refuse to send the bytes).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type Message, type WeirClient } from '../../../src/client/index.js';
import { BatchBuilder } from '../../../src/protocol/batch-builder.js';
import { Header } from '../../../src/protocol/headers.js';
import { ErrorCode } from '../../../src/protocol/codes.js';
import { WeirError } from '../../../src/common/errors.js';
import type { ControlInterceptor } from '../../../src/core/feature-host.js';
import { startTestBroker, type TestBroker } from '../../support/broker.js';
import { until } from '../../support/payload.js';
import { RawClient } from '../../support/raw-client.js';

let tb: TestBroker | undefined;
const clients: WeirClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => undefined);
  await tb?.stop();
  tb = undefined;
});

async function client(): Promise<WeirClient> {
  const c = await connect(tb!.url);
  clients.push(c);
  return c;
}

const text = (m: Message): string => new TextDecoder().decode(m.value);

/** Every message of a topic partition from offset 0, via fetch. */
async function readAll(c: WeirClient, topic: string, partition: number): Promise<Message[]> {
  const out: Message[] = [];
  for (let offset = 0; ; ) {
    const r = await c.fetch(topic, partition, offset);
    out.push(...r.messages);
    if (r.next >= r.end) return out;
    offset = r.next;
  }
}

/** Subscribe from the earliest offset and collect what arrives (value → receipt time). */
async function collect(c: WeirClient, topic: string): Promise<Map<string, { at: number; message: Message }>> {
  const got = new Map<string, { at: number; message: Message }>();
  await c.subscribe(topic, { from: 'earliest' }, (m) => {
    const v = text(m);
    if (got.has(v)) throw new Error(`${v} delivered twice`);
    got.set(v, { at: Date.now(), message: m });
  });
  return got;
}

describe('delayed messages', () => {
  it('keeps a delayed message invisible until due, then delivers it once without its delay headers', async () => {
    tb = await startTestBroker();
    const c = await client();
    await c.createTopic('d', { partitions: 2 });
    const got = await collect(c, 'd');
    const sentAt = Date.now();
    const acks = await c.produce('d', [
      { key: 'a', value: 'now' },
      { key: 'a', value: 'in-600ms', delay: 600, headers: { trace: 't1' } },
      { key: 'b', value: 'at+300ms', deliverAt: new Date(sentAt + 300), ttl: 60_000 },
    ]);
    // Immediate and scheduled messages are acknowledged separately: the scheduled ones with their
    // place in the schedule log, on the partition they will be delivered to.
    expect(acks[0]!.scheduled).toBeUndefined();
    expect(acks[1]!.scheduled).toBe(true);
    expect(acks[2]!.scheduled).toBe(true);
    expect(acks[1]!.partition).toBe(acks[0]!.partition); // same key, same partition
    await until(() => got.has('now'), 5_000, 'the immediate message');
    expect(got.has('in-600ms')).toBe(false);
    await until(() => got.size === 3, 10_000, 'the delayed messages');
    const later = got.get('in-600ms')!;
    expect(later.at).toBeGreaterThanOrEqual(sentAt + 600);
    expect(later.message.timestamp).toBeGreaterThanOrEqual(sentAt + 600);
    expect(later.message.partition).toBe(acks[1]!.partition);
    expect(later.message.key).toBe('a');
    expect(later.message.headers).toEqual({ trace: 't1' }); // weir-delay / weir-deliver-at stripped
    const at = got.get('at+300ms')!;
    expect(at.message.timestamp).toBeGreaterThanOrEqual(sentAt + 300);
    expect(at.message.headers).toEqual({ [Header.TTL]: '60000' });
    // Due order on a partition, and nothing else in the topic.
    const all = [...(await readAll(c, 'd', 0)), ...(await readAll(c, 'd', 1))].map(text).sort();
    expect(all).toEqual(['at+300ms', 'in-600ms', 'now']);
    // The schedule topic is internal: not listed.
    expect((await c.listTopics()).map((t) => t.topic)).toEqual(['d']);
  });

  it('delivers a delayed message once after its schedule partition and its topic partition crash', async () => {
    tb = await startTestBroker({ restartBackoff: { initialMs: 20, maxMs: 200 } });
    const c = await client();
    await c.createTopic('crashy', { partitions: 2 });
    const sentAt = Date.now();
    const [ack] = await c.produce('crashy', [{ key: 'k', value: 'survivor', delay: 1_500 }]);
    const p = ack!.partition;
    const schedule = tb.broker.partitionActor('__delay.crashy', p);
    const exited = new Promise<void>((resolve) => schedule.onExit(() => resolve()));
    schedule.crash('throw');
    await exited;
    await tb.broker.waitHealthy();
    const target = tb.broker.partitionActor('crashy', p);
    const targetExited = new Promise<void>((resolve) => target.onExit(() => resolve()));
    target.crash('throw');
    await targetExited;
    await tb.broker.waitHealthy();
    const got = await collect(c, 'crashy');
    await until(() => got.has('survivor'), 15_000, 'the delayed message');
    expect(got.get('survivor')!.message.timestamp).toBeGreaterThanOrEqual(sentAt + 1_500);
    await new Promise((r) => setTimeout(r, 300));
    expect((await readAll(c, 'crashy', p)).map(text)).toEqual(['survivor']);
  });

  it('dead-letters a delayed message that expired before it was due when the topic says so, else drops it', async () => {
    tb = await startTestBroker();
    const c = await client();
    await c.createTopic('exp', { partitions: 1, config: { deadLetterExpired: true } });
    await c.createTopic('exp-drop', { partitions: 1 });
    const now = Date.now();
    const late = { value: 'too-late', delay: 400, expiresAt: now + 100 };
    const fine = { value: 'fine', delay: 400, expiresAt: now + 60_000 };
    await c.produce('exp', [late, fine]);
    await c.produce('exp-drop', [late, fine]);
    const got = await collect(c, 'exp');
    const dropGot = await collect(c, 'exp-drop');
    await until(() => got.has('fine') && dropGot.has('fine'), 10_000, 'the unexpired ones');
    await until(() => tb!.broker.topics.get('exp.dlq') !== undefined, 5_000, 'the dead-letter topic');
    let dead: Message[] = [];
    for (const deadline = Date.now() + 5_000; dead.length === 0 && Date.now() < deadline; ) {
      dead = await readAll(c, 'exp.dlq', 0);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(dead.map(text)).toEqual(['too-late']);
    expect(dead[0]!.headers[Header.DLQ_REASON]).toBe('expired');
    expect(dead[0]!.headers[Header.DLQ_TOPIC]).toBe('exp');
    expect(dead[0]!.headers[Header.DELAY]).toBeUndefined();
    expect(dead[0]!.headers[Header.EXPIRES_AT]).toBeUndefined(); // or the dead letter would be hidden too
    await new Promise((r) => setTimeout(r, 200));
    expect([...got.keys()]).toEqual(['fine']);
    expect([...dropGot.keys()]).toEqual(['fine']);
    expect(tb.broker.topics.get('exp-drop.dlq')).toBeUndefined();
  });

  it('refuses bad time values with BAD_REQUEST naming the field', async () => {
    tb = await startTestBroker();
    const c = await client();
    await c.createTopic('bad', { partitions: 1 });
    const code = async (m: Parameters<WeirClient['produce']>[1][number]): Promise<unknown> => {
      const err = (await c.produce('bad', [m]).then(() => null, (e: unknown) => e)) as { code: string; details?: { field?: string } } | null;
      return err && [err.code, err.details?.field];
    };
    // Broker-side: header values as any client could send them.
    expect(await code({ value: 'x', headers: { [Header.DELAY]: 'soon' } })).toEqual(['BAD_REQUEST', 'headers.weir-delay']);
    expect(await code({ value: 'x', headers: { [Header.DELIVER_AT]: '-1' } })).toEqual(['BAD_REQUEST', 'headers.weir-deliver-at']);
    expect(await code({ value: 'x', headers: { [Header.TTL]: '1e3' } })).toEqual(['BAD_REQUEST', 'headers.weir-ttl']);
    expect(await code({ value: 'x', headers: { [Header.EXPIRES_AT]: 'tomorrow' } })).toEqual(['BAD_REQUEST', 'headers.weir-expires-at']);
    expect(await code({ value: 'x', headers: { [Header.DELAY]: '5', [Header.DELIVER_AT]: '1700000000000' } })).toEqual(['BAD_REQUEST', 'headers.weir-delay']);
    // SDK-side: the same mistakes in the message fields.
    expect(await code({ value: 'x', delay: -5 })).toEqual(['BAD_REQUEST', 'delay']);
    expect(await code({ value: 'x', deliverAt: 12.5 })).toEqual(['BAD_REQUEST', 'deliverAt']);
    expect(await code({ value: 'x', delay: 5, deliverAt: Date.now() })).toEqual(['BAD_REQUEST', 'delay']);
    expect(await code({ value: 'x', ttl: Number.NaN })).toEqual(['BAD_REQUEST', 'ttl']);
    // A raw request mixing scheduled and immediate messages.
    const raw = await RawClient.connect(tb.url);
    try {
      const b = new BatchBuilder();
      b.add(null, 'now');
      b.add(null, 'later', { [Header.DELAY]: '100' });
      const f = await raw.request({ op: 'produce', topic: 'bad', records: b.take() });
      expect([f.op, f.code, (f.details as { field?: string }).field]).toEqual(['error', 'BAD_REQUEST', 'records']);
    } finally {
      raw.close();
    }
    // Nothing of the refused requests was stored.
    await new Promise((r) => setTimeout(r, 200));
    expect(await readAll(c, 'bad', 0)).toEqual([]);
  });
});

describe('message TTL', () => {
  it('never delivers a message past its own ttl or expiry, to a subscription or a fetch', async () => {
    tb = await startTestBroker();
    const c = await client();
    await c.createTopic('ttl', { partitions: 1 });
    const now = Date.now();
    await c.produce('ttl', [
      { value: 'ttl-300', ttl: 300 },
      { value: 'keeps' },
      { value: 'expires-at+300', expiresAt: now + 300 },
      { value: 'ttl-long', ttl: 60_000 },
      { value: 'expires-later', expiresAt: new Date(now + 60_000) },
    ]);
    // Before expiry everything is there.
    expect((await c.fetch('ttl', 0, 0)).messages.map(text)).toEqual(['ttl-300', 'keeps', 'expires-at+300', 'ttl-long', 'expires-later']);
    await new Promise((r) => setTimeout(r, 500));
    const r = await c.fetch('ttl', 0, 0);
    expect(r.messages.map(text)).toEqual(['keeps', 'ttl-long', 'expires-later']);
    expect(r.next).toBe(5); // the expired ones are skipped, not a stop
    const got = await collect(c, 'ttl');
    await c.produce('ttl', [{ value: 'after' }]);
    await until(() => got.has('after'), 5_000, 'the last message');
    expect([...got.keys()]).toEqual(['keeps', 'ttl-long', 'expires-later', 'after']);
    expect([...got.values()].map((g) => g.message.offset)).toEqual([1, 3, 4, 5]);
  });

  it('applies the topic ttlMs: old messages are skipped, new ones delivered', async () => {
    tb = await startTestBroker();
    const c = await client();
    await c.createTopic('ttl-topic', { partitions: 2, config: { ttlMs: 400 } });
    await c.produce('ttl-topic', Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, value: `old-${i}` })));
    await new Promise((r) => setTimeout(r, 700));
    const got = await collect(c, 'ttl-topic');
    await c.produce('ttl-topic', Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, value: `new-${i}` })));
    await until(() => got.size === 100, 10_000, 'the 100 new messages');
    await new Promise((r) => setTimeout(r, 200));
    expect([...got.keys()].filter((v) => v.startsWith('old-'))).toEqual([]);
    expect(got.size).toBe(100);
    // A fetch also skips the expired ones; the group keeps its credit (all 100 arrived above).
    const fetched = [...(await c.fetch('ttl-topic', 0, 0)).messages, ...(await c.fetch('ttl-topic', 1, 0)).messages].map(text);
    expect(fetched.every((v) => v.startsWith('new-'))).toBe(true);
    // Turning the TTL off makes the old ones visible again (they are skipped, never deleted).
    await c.alterTopic('ttl-topic', { ttlMs: null });
    const all = [...(await readAll(c, 'ttl-topic', 0)), ...(await readAll(c, 'ttl-topic', 1))];
    expect(all.length).toBe(200);
  });
});

describe('control interceptors', () => {
  it('chain: a second interceptor sees requests after the time feature passed them on, and may refuse them', async () => {
    tb = await startTestBroker();
    const gateway = tb.broker.core;
    const seen: string[] = [];
    const audit: ControlInterceptor = (req, next) => {
      seen.push(req.topic.name);
      if (req.topic.name === 'refused') throw new WeirError(ErrorCode.BAD_REQUEST, 'refused by the audit interceptor');
      next(req);
    };
    gateway.addControlInterceptor(audit);
    expect(() => gateway.addControlInterceptor(audit)).toThrow(/already/);
    const c = await client();
    await c.createTopic('ok', { partitions: 1 });
    await c.createTopic('refused', { partitions: 1 });
    await c.produce('ok', [{ value: 'x', ttl: 60_000 }]);
    await c.produce('ok', [{ value: 'later', delay: 60_000 }]); // diverted by the time feature: not passed on
    await expect(c.produce('refused', [{ value: 'y', ttl: 60_000 }])).rejects.toMatchObject({ code: ErrorCode.BAD_REQUEST });
    await c.produce('ok', [{ value: 'plain' }]); // no weir- headers: no interceptor at all
    expect(seen).toEqual(['ok', 'refused']);
    expect((await readAll(c, 'ok', 0)).map(text)).toEqual(['x', 'plain']);
  });
});

describe('expired records and consumer groups', () => {
  it('a group commits past a range whose records all expired; after a broker restart nothing is redelivered', async () => {
    tb = await startTestBroker();
    const dir = tb.dir;
    let c = await client();
    await c.createTopic('exp', { partitions: 1 });
    await c.produce('exp', [{ value: 'first' }]);
    await c.produce('exp', Array.from({ length: 20 }, (_, i) => ({ value: `short-${i}`, ttl: 50 })));
    await new Promise((r) => setTimeout(r, 300));
    const seen: string[] = [];
    const sub = await c.subscribe('exp', { group: 'g', from: 'earliest' }, (m) => void seen.push(text(m)));
    await until(() => seen.length === 1, 5_000, 'the first message');
    // The 20 expired records are never delivered, yet the group's commit moves past them.
    await until(() => sub.stats()[0]?.committed === 21, 5_000, 'a commit past the expired records');
    expect(seen).toEqual(['first']);
    await c.close();
    clients.length = 0;
    await tb.stop({ keepData: true });
    tb = await startTestBroker({ dataDir: dir });
    c = await client();
    const again: string[] = [];
    const sub2 = await c.subscribe('exp', { group: 'g', from: 'earliest' }, (m) => void again.push(text(m)));
    await c.produce('exp', [{ value: 'after-restart' }]);
    await until(() => again.length === 1, 5_000, 'the new message');
    expect(again).toEqual(['after-restart']);
    expect(sub2.stats()[0]?.nextExpected).toBe(22);
  });

  it('remembers across a restart that a topic holds records with weir- headers (their expiry still applies)', async () => {
    tb = await startTestBroker();
    const dir = tb.dir;
    let c = await client();
    await c.createTopic('flag', { partitions: 1 });
    await c.produce('flag', [{ value: 'plain' }]);
    await c.produce('flag', [{ value: 'short', ttl: 100 }]);
    const stored = JSON.parse(fs.readFileSync(path.join(dir, 'topics.json'), 'utf8')) as { topics: Array<{ topic: string; controlRecords?: boolean }> };
    expect(stored.topics.find((t) => t.topic === 'flag')?.controlRecords).toBe(true);
    await c.close();
    clients.length = 0;
    await tb.stop({ keepData: true });
    await new Promise((r) => setTimeout(r, 200));
    tb = await startTestBroker({ dataDir: dir });
    c = await client();
    expect((await c.fetch('flag', 0, 0)).messages.map(text)).toEqual(['plain']);
  });
});

describe('retention', () => {
  it('never deletes delayed messages that are not yet due (schedule topics are exempt)', async () => {
    // Every sealed segment is over the byte budget at once; the partition checks retention every
    // 5 s. A restart after that check makes the scheduler re-read the schedule log (not its cache).
    tb = await startTestBroker({ retentionBytes: 1, segmentBytes: 4096 });
    const dir = tb.dir;
    let c = await client();
    await c.createTopic('kept', { partitions: 1 });
    const payload = 'x'.repeat(1000);
    const sentAt = Date.now();
    for (let i = 0; i < 40; i++) await c.produce('kept', [{ value: `m${i}-${payload}`, delay: 9_000 }]); // ~10 segments
    await new Promise((r) => setTimeout(r, 6_000));
    await c.close();
    clients.length = 0;
    await tb.stop({ keepData: true });
    tb = await startTestBroker({ dataDir: dir, retentionBytes: 1, segmentBytes: 4096 });
    c = await client();
    const got = await collect(c, 'kept');
    await until(() => got.size === 40, 20_000, 'every delayed message');
    expect(Math.min(...[...got.values()].map((g) => g.at))).toBeGreaterThanOrEqual(sentAt + 9_000);
  });
});
