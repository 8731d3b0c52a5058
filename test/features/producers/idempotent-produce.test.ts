/**
 * Exactly-once append over the wire (no SDK): init_producer, produce with producerId/sequence,
 * retries acknowledged with their original offsets (on another connection after reclaiming the id
 * with its secret, as the SDK does), out-of-order and too-old sequences refused,
 * and the producer state surviving a partition-actor crash and a broker restart.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BatchBuilder } from '../../../src/protocol/batch-builder.js';
import { readMessages } from '../../../src/protocol/batch-reader.js';
import { Header } from '../../../src/protocol/headers.js';
import { PRODUCER_SNAPSHOT_FILE } from '../../../src/partition/producer-state-store.js';
import { startTestBroker, type TestBroker } from '../../support/broker.js';
import { RawClient, type Frame } from '../../support/raw-client.js';
import { until } from '../../support/payload.js';

let tb: TestBroker | undefined;
const raws: RawClient[] = [];
afterEach(async () => {
  for (const r of raws.splice(0)) r.close();
  await tb?.stop();
  tb = undefined;
});

async function rawClient(url: string): Promise<RawClient> {
  const r = await RawClient.connect(url);
  raws.push(r);
  return r;
}

/** `count` messages whose values say which producer batch they came from. */
function batch(tag: string, count: number): Uint8Array {
  const b = new BatchBuilder();
  for (let i = 0; i < count; i++) b.add(null, `${tag}-${i}`, i === 0 ? { app: 'x' } : null);
  return b.take();
}

/** Secrets of the producer ids this file got, to reclaim them on another connection. */
const secrets = new Map<number, Uint8Array>();

async function initProducer(raw: RawClient): Promise<number> {
  const r = await raw.request({ op: 'init_producer' });
  expect(r.op).toBe('result');
  expect(typeof r.producerId).toBe('number');
  secrets.set(r.producerId as number, (r.secret as Uint8Array).slice());
  return r.producerId as number;
}

/** Take producer id `pid` over on this connection (after a reconnect or a restart), as the SDK does. */
async function reclaim(raw: RawClient, pid: number): Promise<void> {
  const r = await raw.request({ op: 'init_producer', producerId: pid, secret: secrets.get(pid)! });
  expect(r, String(r.message)).toMatchObject({ op: 'result', producerId: pid });
}

async function readValues(raw: RawClient, topic: string, partition: number): Promise<Array<{ offset: number; value: string; headers: Record<string, string> }>> {
  const out: Array<{ offset: number; value: string; headers: Record<string, string> }> = [];
  let offset = 0;
  for (;;) {
    const r = await raw.request({ op: 'fetch', topic, partition, offset, maxRecords: 10_000 });
    expect(r.op).toBe('result');
    const msgs = readMessages(topic, partition, r.records as Uint8Array);
    if (msgs.length === 0) return out;
    for (const m of msgs) out.push({ offset: m.offset, value: new TextDecoder().decode(m.value), headers: m.headers });
    offset = r.next as number;
  }
}

function findFiles(dir: string, name: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...findFiles(p, name));
    else if (e.name === name) out.push(p);
  }
  return out;
}

function produce(raw: RawClient, topic: string, partition: number, producerId: number, sequence: number, records: Uint8Array): Promise<Frame> {
  return raw.request({ op: 'produce', topic, partition, producerId, sequence, records });
}

describe('idempotent produce', () => {
  it('hands out distinct producer ids, also across a broker restart', async () => {
    tb = await startTestBroker();
    const raw = await rawClient(tb.url);
    const a = await initProducer(raw);
    const b = await initProducer(raw);
    expect(b).not.toBe(a);
    raw.close();
    const dir = tb.dir;
    await tb.stop({ keepData: true });
    tb = await startTestBroker({ dataDir: dir });
    const raw2 = await rawClient(tb.url);
    const c = await initProducer(raw2);
    expect([a, b]).not.toContain(c);
    expect(c).toBeGreaterThan(b);
  });

  it('a producer that resends its last 10 batches after a reconnect gets the same offsets; each message is stored once', async () => {
    tb = await startTestBroker();
    const first = await rawClient(tb.url);
    await first.request({ op: 'create_topic', topic: 'eos', partitions: 2 });
    const pid = await initProducer(first);
    const sent: Array<{ seq: number; records: Uint8Array; parts: unknown }> = [];
    let seq = 0;
    for (let i = 0; i < 20; i++) {
      const n = 1 + (i % 5);
      const records = batch(`b${i}`, n);
      const r = await produce(first, 'eos', 1, pid, seq, records);
      expect(r.op, String(r.message)).toBe('result');
      sent.push({ seq, records, parts: r.parts });
      seq += n;
    }
    first.close();
    // A new connection (as after a reconnect) reclaims the id and resends the last 10 batches with the same sequences.
    const second = await rawClient(tb.url);
    await reclaim(second, pid);
    for (const s of sent.slice(10)) {
      const r = await produce(second, 'eos', 1, pid, s.seq, s.records);
      expect(r.op).toBe('result');
      expect(r.parts).toEqual(s.parts);
    }
    const stored = await readValues(second, 'eos', 1);
    expect(stored.length).toBe(seq);
    const values = stored.map((m) => m.value);
    expect(new Set(values).size).toBe(values.length);
    expect(values.slice(0, 3)).toEqual(['b0-0', 'b1-0', 'b1-1']);
    // The gateway stamped the first record of each batch; producers' own headers are kept.
    expect(stored[0]!.headers[Header.PRODUCER_ID]).toBe(String(pid));
    expect(stored[0]!.headers[Header.SEQUENCE]).toBe('0');
    expect(stored[0]!.headers[Header.BATCH_COUNT]).toBe('1');
    expect(stored[0]!.headers.app).toBe('x');
    expect(stored[1]!.headers[Header.SEQUENCE]).toBe('1');
    expect(stored[1]!.headers[Header.BATCH_COUNT]).toBe('2');
    expect(stored[2]!.headers[Header.PRODUCER_ID]).toBeUndefined();
  });

  it('refuses a sequence gap with OUT_OF_ORDER_SEQUENCE and a batch older than the window with DUPLICATE_SEQUENCE, writing nothing', async () => {
    tb = await startTestBroker();
    const raw = await rawClient(tb.url);
    await raw.request({ op: 'create_topic', topic: 'gaps', partitions: 1 });
    const pid = await initProducer(raw);
    // A new producer must start at 0.
    let r = await produce(raw, 'gaps', 0, pid, 5, batch('x', 1));
    expect(r).toMatchObject({ op: 'error', code: 'OUT_OF_ORDER_SEQUENCE', retryable: false });
    const sent: Array<{ seq: number; records: Uint8Array }> = [];
    for (let i = 0; i < 40; i++) {
      const records = batch(`g${i}`, 1);
      r = await produce(raw, 'gaps', 0, pid, i, records);
      expect(r.op).toBe('result');
      sent.push({ seq: i, records });
    }
    r = await produce(raw, 'gaps', 0, pid, 41, batch('gap', 1)); // 40 is missing
    expect(r).toMatchObject({ op: 'error', code: 'OUT_OF_ORDER_SEQUENCE', retryable: false });
    r = await produce(raw, 'gaps', 0, pid, 39, batch('g39', 2)); // same start, other count
    expect(r).toMatchObject({ op: 'error', code: 'OUT_OF_ORDER_SEQUENCE' });
    r = await produce(raw, 'gaps', 0, pid, 0, sent[0]!.records); // older than the remembered window
    expect(r).toMatchObject({ op: 'error', code: 'DUPLICATE_SEQUENCE', retryable: false });
    r = await produce(raw, 'gaps', 0, pid, 39, sent[39]!.records); // inside the window: original offset
    expect(r).toMatchObject({ op: 'result', parts: [[0, 39, 1]] });
    const stored = await readValues(raw, 'gaps', 0);
    expect(stored.map((m) => m.value)).toEqual(sent.map((_, i) => `g${i}-0`));
    // Bad fields are BAD_REQUEST with details.field.
    r = await raw.request({ op: 'produce', topic: 'gaps', producerId: pid, sequence: 40, records: batch('y', 1) });
    expect(r).toMatchObject({ op: 'error', code: 'BAD_REQUEST', details: { field: 'partition' } });
    r = await raw.request({ op: 'produce', topic: 'gaps', partition: 0, producerId: pid, records: batch('y', 1) });
    expect(r).toMatchObject({ op: 'error', code: 'BAD_REQUEST', details: { field: 'sequence' } });
    r = await raw.request({ op: 'produce', topic: 'gaps', partition: 0, producerId: -1, sequence: 40, records: batch('y', 1) });
    expect(r).toMatchObject({ op: 'error', code: 'BAD_REQUEST', details: { field: 'producerId' } });
  });

  it('keeps the producer state across a partition-actor crash (rebuilt from the log)', async () => {
    tb = await startTestBroker({ actorHost: 'threads', fsync: 'never', restartBackoff: { initialMs: 20, maxMs: 200 } });
    const raw = await rawClient(tb.url);
    await raw.request({ op: 'create_topic', topic: 'crashy', partitions: 1 });
    const pid = await initProducer(raw);
    const sent: Array<{ seq: number; records: Uint8Array; parts: unknown }> = [];
    for (let i = 0; i < 15; i++) {
      const records = batch(`c${i}`, 3);
      const r = await produce(raw, 'crashy', 0, pid, i * 3, records);
      expect(r.op).toBe('result');
      sent.push({ seq: i * 3, records, parts: r.parts });
    }
    let exits = 0;
    const actor = tb.broker.partitionActor('crashy', 0);
    actor.onExit(() => exits++);
    await actor.worker.terminate();
    await until(() => exits === 1, 10_000, 'the crash to be observed');
    await tb.broker.waitHealthy();
    for (const s of sent.slice(5)) {
      const r = await produce(raw, 'crashy', 0, pid, s.seq, s.records);
      expect(r).toMatchObject({ op: 'result', parts: s.parts });
    }
    const r = await produce(raw, 'crashy', 0, pid, 45, batch('c15', 1));
    expect(r).toMatchObject({ op: 'result', parts: [[0, 45, 1]] });
    expect((await readValues(raw, 'crashy', 0)).length).toBe(46);
  });

  it('keeps the producer state across a broker restart, with and without a clean shutdown snapshot', async () => {
    tb = await startTestBroker();
    let raw = await rawClient(tb.url);
    await raw.request({ op: 'create_topic', topic: 'restart', partitions: 1 });
    const pid = await initProducer(raw);
    const sent: Array<{ seq: number; records: Uint8Array; parts: unknown }> = [];
    for (let i = 0; i < 12; i++) {
      const records = batch(`r${i}`, 2);
      const r = await produce(raw, 'restart', 0, pid, i * 2, records);
      sent.push({ seq: i * 2, records, parts: r.parts });
    }
    raw.close();
    const dir = tb.dir;
    await tb.stop({ keepData: true });
    tb = await startTestBroker({ dataDir: dir });
    raw = await rawClient(tb.url);
    await reclaim(raw, pid);
    for (const s of sent.slice(2)) {
      const r = await produce(raw, 'restart', 0, pid, s.seq, s.records);
      expect(r).toMatchObject({ op: 'result', parts: s.parts });
    }
    // Out of order after the restart, too.
    expect(await produce(raw, 'restart', 0, pid, 30, batch('z', 1))).toMatchObject({ op: 'error', code: 'OUT_OF_ORDER_SEQUENCE' });
    expect((await readValues(raw, 'restart', 0)).length).toBe(24);
    raw.close();
    // Without any snapshot the state is rebuilt from the log alone.
    await tb.stop({ keepData: true });
    const snapshots = findFiles(dir, PRODUCER_SNAPSHOT_FILE);
    expect(snapshots.length).toBe(1);
    fs.rmSync(snapshots[0]!);
    tb = await startTestBroker({ dataDir: dir });
    raw = await rawClient(tb.url);
    await reclaim(raw, pid);
    for (const s of sent.slice(2)) {
      const r = await produce(raw, 'restart', 0, pid, s.seq, s.records);
      expect(r).toMatchObject({ op: 'result', parts: s.parts });
    }
    expect(await produce(raw, 'restart', 0, pid, 24, batch('r12', 1))).toMatchObject({ op: 'result', parts: [[0, 24, 1]] });
    expect((await readValues(raw, 'restart', 0)).length).toBe(25);
  });
  it('refuses producer ids init_producer never handed out, also after a restart', async () => {
    tb = await startTestBroker();
    let raw = await rawClient(tb.url);
    await raw.request({ op: 'create_topic', topic: 'ids', partitions: 1 });
    const pid = await initProducer(raw);
    let r = await produce(raw, 'ids', 0, pid + 1, 0, batch('invented', 1));
    expect(r).toMatchObject({ op: 'error', code: 'BAD_REQUEST', details: { field: 'producerId' } });
    r = await produce(raw, 'ids', 0, 2 ** 40, 0, batch('invented', 1));
    expect(r).toMatchObject({ op: 'error', code: 'BAD_REQUEST', details: { field: 'producerId' } });
    expect(await produce(raw, 'ids', 0, pid, 0, batch('given', 1))).toMatchObject({ op: 'result' });
    raw.close();
    const dir = tb.dir;
    await tb.stop({ keepData: true });
    tb = await startTestBroker({ dataDir: dir });
    raw = await rawClient(tb.url);
    await reclaim(raw, pid);
    expect(await produce(raw, 'ids', 0, pid, 1, batch('given', 1))).toMatchObject({ op: 'result', parts: [[0, 1, 1]] });
    const next = await initProducer(raw);
    expect(next).toBeGreaterThan(pid);
    expect(await produce(raw, 'ids', 0, next + 1, 0, batch('invented', 1))).toMatchObject({ op: 'error', code: 'BAD_REQUEST', details: { field: 'producerId' } });
    expect((await readValues(raw, 'ids', 0)).map((m) => m.value)).toEqual(['given-0', 'given-0']);
  });

  it('refuses delayed messages in an idempotent batch (BAD_REQUEST, field records) and stores ttl headers as given', async () => {
    tb = await startTestBroker();
    const raw = await rawClient(tb.url);
    await raw.request({ op: 'create_topic', topic: 'timed', partitions: 1 });
    const pid = await initProducer(raw);
    for (const header of [Header.DELAY, Header.DELIVER_AT]) {
      const b = new BatchBuilder();
      b.add(null, 'now', null);
      b.add(null, 'later', { [header]: String(header === Header.DELAY ? 60_000 : Date.now() + 60_000) });
      const r = await produce(raw, 'timed', 0, pid, 0, b.take());
      expect(r).toMatchObject({ op: 'error', code: 'BAD_REQUEST', details: { field: 'records', record: 1 } });
    }
    const b = new BatchBuilder();
    b.add(null, 'ttl', { [Header.TTL]: '60000' });
    expect(await produce(raw, 'timed', 0, pid, 0, b.take())).toMatchObject({ op: 'result', parts: [[0, 0, 1]] });
    const stored = await readValues(raw, 'timed', 0);
    expect(stored.map((m) => m.value)).toEqual(['ttl']);
    expect(stored[0]!.headers[Header.TTL]).toBe('60000');
  });
  it('completes a batch a power loss cut in two when it is resent: every record once, at its original offset', async () => {
    for (const withSnapshot of [true, false]) {
      tb = await startTestBroker();
      let raw = await rawClient(tb.url);
      await raw.request({ op: 'create_topic', topic: 'torn', partitions: 1 });
      const pid = await initProducer(raw);
      expect(await produce(raw, 'torn', 0, pid, 0, batch('a', 1))).toMatchObject({ op: 'result', parts: [[0, 0, 1]] });
      const b = batch('b', 3);
      expect(await produce(raw, 'torn', 0, pid, 1, b)).toMatchObject({ op: 'result', parts: [[0, 1, 3]] });
      raw.close();
      const dir = tb.dir;
      await tb.stop({ keepData: true });
      // A power loss: the last record of batch b is torn (the log's recovery cuts it off).
      const snapshot = findFiles(dir, PRODUCER_SNAPSHOT_FILE).find((f) => f.includes('torn'))!;
      const partitionDir = path.dirname(snapshot);
      const segment = path.join(partitionDir, fs.readdirSync(partitionDir).filter((f) => f.endsWith('.log')).sort().at(-1)!);
      fs.truncateSync(segment, fs.statSync(segment).size - 5);
      if (!withSnapshot) fs.rmSync(snapshot);
      tb = await startTestBroker({ dataDir: dir });
      raw = await rawClient(tb.url);
      await reclaim(raw, pid);
      expect((await readValues(raw, 'torn', 0)).map((m) => m.value)).toEqual(['a-0', 'b-0', 'b-1']);
      expect(await produce(raw, 'torn', 0, pid, 1, b), `snapshot ${withSnapshot}`).toMatchObject({ op: 'result', parts: [[0, 1, 3]] });
      expect(await produce(raw, 'torn', 0, pid, 1, b)).toMatchObject({ op: 'result', parts: [[0, 1, 3]] }); // and again: a duplicate now
      expect(await produce(raw, 'torn', 0, pid, 4, batch('c', 1))).toMatchObject({ op: 'result', parts: [[0, 4, 1]] });
      const stored = await readValues(raw, 'torn', 0);
      expect(stored.map((m) => [m.offset, m.value])).toEqual([[0, 'a-0'], [1, 'b-0'], [2, 'b-1'], [3, 'b-2'], [4, 'c-0']]);
      raw.close();
      await tb.stop();
      tb = undefined;
    }
  });
});
