/**
 * Damaged records through a real broker: bytes changed in a value, a key, a header, a length field,
 * and a block zeroed, in a partition's segment while the broker was stopped (cleanly, or by a
 * SIGKILL). No altered record reaches a consumer by any read path (subscription, fetch, queue
 * window, delayed messages, transaction apply); every intact one does; the lost offsets are
 * reported exactly: in `weir start`'s log, in the damage record, and to the consumer (DATA_LOSS).
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type WeirClient } from '../../src/client/index.js';
import type { WeirClientError } from '../../src/client/errors.js';
import { parseDamage } from '../../src/log/damage.js';
import { exited, startBrokerProcess } from '../support/child-broker.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { flipByte, overwrite, partitionRecords, segmentFiles, storedRecords } from '../support/damage.js';
import { tmpDir } from '../support/tmp-dir.js';

const clients: WeirClient[] = [];
let child: ChildProcess | undefined;
let inProcess: TestBroker | undefined;
const tmp = tmpDir('weir-damage-e2e-');
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => undefined);
  child?.kill('SIGKILL');
  if (child) await exited(child);
  child = undefined;
  await inProcess?.stop({ keepData: true }).catch(() => undefined);
  inProcess = undefined;
  tmp.cleanup();
});

async function client(url: string, options: Parameters<typeof connect>[1] = {}): Promise<WeirClient> {
  const c = await connect(url, { reconnect: false, ...options });
  clients.push(c);
  return c;
}

const N = 400;
const valueOf = (i: number): string => `message-${i}-${'x'.repeat(i % 40)}`;

function partitionDir(dataDir: string, topic: string, p: number): string {
  return path.join(dataDir, 'topics', topic, String(p));
}

/** Consume partition 0 of `topic` from earliest until `expected` messages are handled or lost. */
async function consumeAll(url: string, topic: string, total: number, onDataLoss?: 'skip' | 'stop'): Promise<{ got: Map<number, string>; errors: WeirClientError[] }> {
  const c = await client(url);
  const got = new Map<number, string>();
  const errors: WeirClientError[] = [];
  let lost = 0;
  const sub = await c.subscribe(topic, { from: 'earliest', ...(onDataLoss ? { onDataLoss } : {}), onError: (e) => {
    errors.push(e);
    if (e.code === 'DATA_LOSS') lost += Number(e.details!.to) - Number(e.details!.from);
  } }, (m) => {
    expect(got.has(m.offset)).toBe(false);
    got.set(m.offset, new TextDecoder().decode(m.value));
  });
  const deadline = Date.now() + 20_000;
  while (got.size + lost < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 200)); // nothing more arrives
  await sub.close();
  return { got, errors };
}

describe.each([
  ['stopped cleanly', 'SIGTERM'],
  ['SIGKILLed', 'SIGKILL'],
] as const)('damage while the broker was %s', (_name, signal) => {
  it.each(['threads', 'gateway'] as const)('partition actors on %s: intact records delivered, damaged ones never, lost offsets reported exactly everywhere', async (host) => {
    // Small segments: the damage lands in sealed segments and in the active one.
    const args = ['--actor-host', host, '--segment-bytes', '16384'];
    const first = await startBrokerProcess(tmp.dir, { args });
    child = first.proc;
    let c = await client(first.url);
    await c.createTopic('t', { partitions: 1 });
    for (let i = 0; i < N; i += 50) {
      await c.produce('t', Array.from({ length: 50 }, (_, k) => ({ key: `key-${i + k}`, value: valueOf(i + k), headers: { n: String(i + k) } })));
    }
    await c.close();
    first.proc.kill(signal);
    await exited(first.proc);
    child = undefined;

    const recs = partitionRecords(partitionDir(tmp.dir, 't', 0));
    expect(recs.length).toBe(N);
    const files = [...new Set(recs.map((r) => r.file))];
    expect(files.length).toBeGreaterThan(2);
    // The block below must lie in one segment (sealed), with records of that segment on both sides.
    const block = recs.findIndex((r, i) => i > 200 && r.file === recs[i + 6]?.file && r.file === recs[i - 1]?.file && r.file !== files[files.length - 1]);
    expect(block).toBeGreaterThan(0);
    const lost = new Set<number>();
    flipByte(recs[20]!.file, recs[20]!.valueAt + 3); // a value
    lost.add(20);
    flipByte(recs[60]!.file, recs[60]!.at + 36 + 2); // the key
    lost.add(60);
    flipByte(recs[100]!.file, recs[100]!.at + recs[100]!.size - 2); // the header's value
    lost.add(100);
    flipByte(recs[150]!.file, recs[150]!.at + 1, 0x01); // the length field
    lost.add(150);
    // a block of zeros over six records in the middle of a sealed segment
    overwrite(recs[block]!.file, recs[block]!.at + 10, recs[block + 6]!.at - recs[block]!.at - 20);
    for (let o = block; o < block + 6; o++) lost.add(o);
    // and a byte of the active segment's value (the last segment is read by recovery after a SIGKILL)
    const last = recs.findIndex((r) => r.file === files[files.length - 1]) + 1;
    expect(last).toBeLessThan(N - 1);
    flipByte(recs[last]!.file, recs[last]!.valueAt);
    lost.add(last);

    const second = await startBrokerProcess(tmp.dir, { args });
    child = second.proc;
    const { got, errors } = await consumeAll(second.url, 't', N);
    const intact = Array.from({ length: N }, (_, i) => i).filter((i) => !lost.has(i));
    expect([...got.keys()].sort((a, b) => a - b)).toEqual(intact);
    for (const [o, v] of got) expect(v).toBe(valueOf(o));
    const reported = errors.filter((e) => e.code === 'DATA_LOSS').map((e) => [e.details!.from, e.details!.to]);
    expect(reported).toEqual([[20, 21], [60, 61], [100, 101], [150, 151], [block, block + 6], [last, last + 1]]);
    expect(errors.every((e) => e.code === 'DATA_LOSS' && e.details!.topic === 't' && e.details!.partition === 0)).toBe(true);

    // fetch: a damaged offset answers DATA_LOSS naming the range; intact ones read back.
    c = await client(second.url);
    await expect(c.fetch('t', 0, block + 2, { maxRecords: 5 })).rejects.toMatchObject({ code: 'DATA_LOSS', details: { topic: 't', partition: 0, from: block + 2, to: block + 6 } });
    const after = await c.fetch('t', 0, block + 6, { maxRecords: 1 });
    expect(after.messages.map((m) => [m.offset, new TextDecoder().decode(m.value)])).toEqual([[block + 6, valueOf(block + 6)]]);
    const before = await c.fetch('t', 0, 19, { maxRecords: 10 });
    expect(before.messages.map((m) => m.offset)).toEqual([19]); // stops before the damage

    // The damage record and the broker's log say the same.
    const record = parseDamage(fs.readFileSync(path.join(partitionDir(tmp.dir, 't', 0), '.weir-damage'), 'utf8')).filter((d) => d.kind === 'damaged');
    expect(record.map((d) => [d.from, d.to]).sort((a, b) => a[0]! - b[0]!)).toEqual(reported);
    const out = second.output();
    for (const [from, to] of reported as Array<[number, number]>) {
      expect(out).toMatch(new RegExp(`ERROR partition t/0: damaged data in segment \\d{20}\\.log at byte \\d+ \\(\\d+ bytes, \\w+, found by \\w+\\): ${to - from} record\\(s\\) lost, offsets ${from} to ${to - 1}`));
    }
    // After a SIGKILL recovery scans the last segment: that damage is found (and logged) at start.
    if (signal === 'SIGKILL') expect(record.find((d) => d.from === last)!.detectedBy).toBe('recovery');

    // New messages get new offsets (none reused) and are delivered after the intact ones.
    await c.produce('t', [{ key: 'new', value: 'after the damage' }]);
    const tail = await c.fetch('t', 0, N, { maxRecords: 10 });
    expect(tail.messages.map((m) => [m.offset, new TextDecoder().decode(m.value)])).toEqual([[N, 'after the damage']]);
  });
});

describe('the SDK on lost offsets', () => {
  it("onDataLoss 'stop' stops the partition at the loss; a group commits nothing past it, and 'skip' commits past it", async () => {
    inProcess = await startTestBroker({ dataDir: tmp.dir });
    let c = await client(inProcess.url);
    await c.createTopic('g', { partitions: 1 });
    await c.produce('g', Array.from({ length: 50 }, (_, i) => ({ value: valueOf(i) })));
    await c.close();
    await inProcess.stop({ keepData: true });
    const [file] = segmentFiles(partitionDir(tmp.dir, 'g', 0));
    flipByte(file!, storedRecords(file!)[30]!.valueAt);
    inProcess = await startTestBroker({ dataDir: tmp.dir });
    c = await client(inProcess.url);
    const seen: number[] = [];
    const errors: WeirClientError[] = [];
    let sub = await c.subscribe('g', { group: 'stopper', from: 'earliest', onDataLoss: 'stop', commitIntervalMs: 10, onError: (e) => errors.push(e) }, (m) => void seen.push(m.offset));
    while (errors.length === 0) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 200));
    await sub.close();
    expect(seen).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(errors.map((e) => [e.code, e.details!.from, e.details!.to])).toEqual([['DATA_LOSS', 30, 31]]);
    // Counted where the operators' metrics will read it.
    expect(inProcess.broker.dataLoss()).toEqual([{ topic: 'g', partition: 0, regions: 1, offsets: 1 }]);
    // Resubscribing resumes at the loss (it was not committed past), and the same loss is reported.
    const again: number[] = [];
    const errs2: WeirClientError[] = [];
    sub = await c.subscribe('g', { group: 'stopper', onDataLoss: 'skip', commitIntervalMs: 10, onError: (e) => errs2.push(e) }, (m) => void again.push(m.offset));
    while (again.length < 19) await new Promise((r) => setTimeout(r, 10));
    await sub.close();
    expect(again).toEqual(Array.from({ length: 19 }, (_, i) => 31 + i));
    expect(errs2.map((e) => e.code)).toEqual(['DATA_LOSS']);
    // 'skip' committed past the loss: a third subscription starts at the end.
    const third: number[] = [];
    sub = await c.subscribe('g', { group: 'stopper' }, (m) => void third.push(m.offset));
    await c.produce('g', [{ value: 'new' }]);
    while (third.length < 1) await new Promise((r) => setTimeout(r, 10));
    await sub.close();
    expect(third).toEqual([50]);
  });
});

describe.each([
  ['stopped cleanly', 'SIGTERM'],
  ['SIGKILLed', 'SIGKILL'],
] as const)("the broker's own readers skip damage instead of stalling (damage while the broker was %s)", (_name, signal) => {
  /** A broker process on the test's data directory; `stop()` ends it with the describe's signal. */
  async function broker(): Promise<{ url: string; stop(): Promise<void> }> {
    const b = await startBrokerProcess(tmp.dir);
    child = b.proc;
    return {
      url: b.url,
      stop: async () => {
        b.proc.kill(signal);
        await exited(b.proc);
        child = undefined;
      },
    };
  }

  it('queue window: every intact message is handled once, the damaged one never', async () => {
    let b = await broker();
    let c = await client(b.url);
    await c.createTopic('jobs', { partitions: 1 });
    await c.produce('jobs', Array.from({ length: 100 }, (_, i) => ({ value: valueOf(i) })));
    await c.close();
    await b.stop();
    const [file] = segmentFiles(partitionDir(tmp.dir, 'jobs', 0));
    flipByte(file!, storedRecords(file!)[42]!.valueAt + 1);
    b = await broker();
    c = await client(b.url);
    const handled = new Map<number, string>();
    const q = await c.subscribe('jobs', { mode: 'queue', group: 'w', prefetch: 10 }, (m) => {
      expect(handled.has(m.offset)).toBe(false);
      handled.set(m.offset, new TextDecoder().decode(m.value));
    });
    while (handled.size < 99) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 200));
    await q.close();
    expect([...handled.keys()].sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i).filter((i) => i !== 42));
    for (const [o, v] of handled) expect(v).toBe(valueOf(o));
  });

  it('delayed messages: a damaged one in the schedule never fires; the others fire, intact', async () => {
    let b = await broker();
    let c = await client(b.url);
    await c.createTopic('later', { partitions: 1 });
    await c.produce('later', Array.from({ length: 20 }, (_, i) => ({ value: valueOf(i), delay: 1_500 })));
    await c.close();
    await b.stop();
    const scheduleDir = fs.readdirSync(path.join(tmp.dir, 'topics')).find((n) => n.startsWith('__delay.'))!;
    const [file] = segmentFiles(path.join(tmp.dir, 'topics', scheduleDir, '0'));
    const recs = storedRecords(file!);
    expect(recs.length).toBe(20);
    flipByte(file!, recs[7]!.valueAt + 2);
    b = await broker();
    const { got } = await consumeAll(b.url, 'later', 19);
    expect([...got.values()].sort()).toEqual(Array.from({ length: 20 }, (_, i) => i).filter((i) => i !== 7).map(valueOf).sort());
  });

  it('transactions: a committed transaction whose half messages were damaged applies the intact ones and completes', async () => {
    let b = await broker();
    let c = await client(b.url);
    await c.createTopic('orders', { partitions: 1 });
    const tx = await c.beginTransaction('orders', { producerGroup: 'billing' });
    await tx.produce(Array.from({ length: 10 }, (_, i) => ({ value: valueOf(i) })));
    const txn = tx.id;
    await c.close();
    await b.stop();
    const [file] = segmentFiles(path.join(tmp.dir, 'topics', '__txn_half', '0'));
    const recs = storedRecords(file!);
    expect(recs.length).toBe(10);
    flipByte(file!, recs[4]!.valueAt + 1);
    b = await broker();
    c = await client(b.url);
    await c.decideTransaction(txn, 'commit');
    const { got } = await consumeAll(b.url, 'orders', 9);
    expect([...got.values()].sort()).toEqual(Array.from({ length: 10 }, (_, i) => i).filter((i) => i !== 4).map(valueOf).sort());
  });
});
