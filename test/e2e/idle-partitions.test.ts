/**
 * Idle partitions are cheap (issue 21): before, every single-partition topic held two 4 MiB rings,
 * two 1 MiB buffers and two open files for good, and at about 2,000 topics the broker ran out of
 * fds and failed topic creation half-way (CHILD_START_FAILED). Here: thousands of idle topics hold
 * no rings, buffers or files (by the broker's accounting and by /proc/self/fd); the lazy paths
 * (rings, buffers and files allocated on the first request) serve every message; a partition that
 * goes quiet gives them back and serves again, across a restart too; and a broker near its
 * open-file limit refuses a new topic with RESOURCE_LIMIT instead of running out.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { connect, type Message, type WeirClient } from '../../src/client/index.js';
import { brokerFixture, startTestBroker } from '../support/broker.js';
import { exited, openFilesIn, startBrokerProcess } from '../support/child-broker.js';
import { payload, sameBytes, until } from '../support/payload.js';
import { RawClient, type Frame } from '../support/raw-client.js';
import { BatchBuilder } from '../../src/protocol/batch-builder.js';
import { readMessages } from '../../src/protocol/batch-reader.js';
import { tmpDir } from '../support/tmp-dir.js';

const fx = brokerFixture();

/** Fds this process has open now (the listing's own excluded). */
function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length - 1;
}

/** Subscribe to `topic` from earliest and collect what arrives, by offset. */
async function collect(client: WeirClient, topic: string, group: string): Promise<{ got: Map<number, Message>; close(): Promise<void> }> {
  const got = new Map<number, Message>();
  const sub = await client.subscribe(topic, { group, from: 'earliest' }, (m) => {
    got.set(m.offset, m);
  });
  return { got, close: () => sub.close() };
}

function expectMessages(got: Map<number, Message>, count: number, producer: number): void {
  expect(got.size).toBe(count);
  for (let i = 0; i < count; i++) {
    const m = got.get(i);
    expect(m, `offset ${i}`).toBeDefined();
    expect(m!.key).toBe(`k${i}`);
    expect(sameBytes(m!.value, payload(producer, i, 120)), `offset ${i}: value`).toBe(true);
  }
}

function messages(producer: number, from: number, count: number): Array<{ key: string; value: Uint8Array }> {
  return Array.from({ length: count }, (_, i) => ({ key: `k${from + i}`, value: payload(producer, from + i, 120) }));
}

it('2,000 idle single-partition topics hold no rings, buffers or files; a sample of them produces and consumes every message', async () => {
  fx.tb = await startTestBroker({ fsync: 'never' }); // actorHost 'auto': quiet topics on the gateway's thread
  const { broker } = fx.tb;
  const admin = await fx.client(fx.tb.url);
  const fdsBefore = openFds();
  const TOPICS = 2_000;
  for (let i = 0; i < TOPICS; i += 50) {
    await Promise.all(Array.from({ length: 50 }, (_, k) => admin.createTopic(`idle.${i + k}`, { partitions: 1 })));
  }
  const idle = broker.partitionResources();
  expect(idle.partitions).toBeGreaterThanOrEqual(TOPICS);
  expect(idle).toMatchObject({ onThreads: 0, withRings: 0, ringBytes: 0, withBuffers: 0, bufferBytes: 0, withFds: 0, fds: 0 });
  // Two files per topic before; now none (a few fds for other things come and go).
  expect(openFds() - fdsBefore).toBeLessThan(40);
  expect(openFilesIn(path.join(fx.tb.dir, 'topics'))).toBe(0);

  const sample = Array.from({ length: 20 }, (_, i) => i * 100 + 7);
  const producer = await fx.client(fx.tb.url);
  for (const t of sample) await producer.produce(`idle.${t}`, messages(t, 0, 5));
  const consumer = await fx.client(fx.tb.url);
  const subs = await Promise.all(sample.map((t) => collect(consumer, `idle.${t}`, 'g')));
  await until(() => subs.every((s) => s.got.size >= 5), 20_000, 'every sampled message');
  sample.forEach((t, i) => expectMessages(subs[i]!.got, 5, t));
  // Used: rings, buffers and files now; the rest are still idle.
  for (const t of sample) expect(broker.partitionActor(`idle.${t}`, 0).resources().ringBytes).toBeGreaterThan(0);
  expect(broker.partitionActor('idle.8', 0).resources()).toEqual({ host: 'gateway', ringBytes: 0, bufferBytes: 0, fds: 0 });
  const used = broker.partitionResources();
  expect(used.withRings).toBe(sample.length);
  expect(used.withFds).toBeLessThanOrEqual(sample.length);
}, 600_000);

it('a partition quiet for its idle period releases its buffers and files (and, once nobody polls it, its rings), then serves again, also after a restart', async () => {
  const data = tmpDir('weir-idle-');
  fx.defer(data.cleanup);
  const opts = { fsync: 'never', idleReleaseMs: 200, segmentBytes: 16 * 1024, dataDir: data.dir } as const;
  fx.tb = await startTestBroker(opts);
  const partitionDir = path.join(data.dir, 'topics', 'quiet', '0');
  const client = await fx.client(fx.tb.url);
  await client.createTopic('quiet', { partitions: 1 });
  const actor = () => fx.tb!.broker.partitionActor('quiet', 0);
  expect(actor().resources()).toEqual({ host: 'gateway', ringBytes: 0, bufferBytes: 0, fds: 0 });

  const live = await collect(client, 'quiet', 'live');
  await client.produce('quiet', messages(1, 0, 200)); // ≈ 30 KiB: two segments
  await until(() => live.got.size === 200, 20_000, 'the first 200');
  expect(actor().resources().fds).toBeGreaterThan(0);
  expect(actor().resources().bufferBytes).toBeGreaterThan(0);

  // The subscriber's long polls keep the rings in use; the log is idle all the same.
  await until(() => actor().resources().bufferBytes === 0 && actor().resources().fds === 0, 20_000, 'buffers and files released');
  expect(openFilesIn(partitionDir)).toBe(0);
  await client.produce('quiet', messages(1, 200, 100));
  await until(() => live.got.size === 300, 20_000, 'the next 100, to the subscriber parked across the release');
  expectMessages(live.got, 300, 1);

  await live.close();
  await until(() => actor().resources().ringBytes === 0 && actor().resources().fds === 0 && actor().resources().bufferBytes === 0, 20_000, 'everything released');
  expect(openFilesIn(partitionDir)).toBe(0);
  await client.produce('quiet', messages(1, 300, 100));
  const fresh = await collect(client, 'quiet', 'fresh'); // reads the sealed segments again
  await until(() => fresh.got.size === 400, 20_000, 'all 400 from earliest');
  expectMessages(fresh.got, 400, 1);
  await fresh.close();
  await until(() => actor().resources().fds === 0, 20_000, 'files released again');

  await fx.closeClients();
  await fx.tb.stop({ keepData: true });
  fx.tb = await startTestBroker(opts);
  const again = await fx.client(fx.tb.url);
  const after = await collect(again, 'quiet', 'after-restart');
  await until(() => after.got.size === 400, 20_000, 'all 400 after the restart');
  expectMessages(after.got, 400, 1);
  await again.produce('quiet', messages(1, 400, 1));
  await until(() => after.got.size === 401, 20_000, 'the next one at offset 400');
  expectMessages(after.got, 401, 1);
}, 120_000);

const children: ChildProcess[] = [];
afterEach(async () => {
  for (const p of children.splice(0)) {
    p.kill('SIGKILL');
    await exited(p);
  }
});

/** `weir start` under `ulimit -n` (soft and hard): the broker cannot raise it. */
async function startLimitedBroker(dataDir: string, openFiles: number, args: string[] = []): Promise<{ proc: ChildProcess; url: string }> {
  const b = await startBrokerProcess(dataDir, { openFiles, args });
  children.push(b.proc);
  return b;
}

it('near its open-file limit the broker refuses a new topic with RESOURCE_LIMIT (how many it has, of what limit), keeps serving, and creates it once fds are free', async () => {
  const data = tmpDir('weir-nofile-');
  fx.defer(data.cleanup);
  // Up to 300 connections, all from 127.0.0.1: above the default limit per address.
  const { proc, url } = await startLimitedBroker(data.dir, 256, ['--max-connections-per-ip', '1000']);
  const clients: WeirClient[] = [];
  fx.defer(() => {
    for (const c of clients) void c.close().catch(() => undefined);
  });
  const admin = await connect(url, { reconnect: false });
  clients.push(admin);
  // Each connection is one of the broker's fds; each topic, once created, none.
  let created = 0;
  let refusal: unknown = null;
  while (refusal === null && clients.length < 300) {
    for (let k = 0; k < 8; k++) clients.push(await connect(url, { reconnect: false }));
    try {
      await admin.createTopic(`t${created}`, { partitions: 1 });
      created++;
    } catch (err) {
      refusal = err;
    }
  }
  expect(refusal).toMatchObject({ code: 'RESOURCE_LIMIT', retryable: true });
  expect((refusal as Error).message).toMatch(/files open of its limit of 256/);
  expect((refusal as { details?: unknown }).details).toMatchObject({ limit: 256 });
  expect(created).toBeGreaterThan(10);
  expect(proc.exitCode).toBeNull();

  // The topics created before serve: produce to and read back the first and the last.
  for (const t of [0, created - 1]) {
    await admin.produce(`t${t}`, messages(t, 0, 3));
    const r = await admin.fetch(`t${t}`, 0, 0);
    expect(r.messages.map((m) => m.key)).toEqual(['k0', 'k1', 'k2']);
    expect(sameBytes(r.messages[2]!.value, payload(t, 2, 120))).toBe(true);
  }

  // Free 100 connections: the same topic is created (once the broker has seen them close).
  for (const c of clients.splice(1, 100)) await c.close();
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      expect(await admin.createTopic(`t${created}`, { partitions: 1 })).toMatchObject({ created: true });
      break;
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'RESOURCE_LIMIT' || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  await admin.produce(`t${created}`, messages(created, 0, 1));
  expect((await admin.fetch(`t${created}`, 0, 0)).messages).toHaveLength(1);
}, 120_000);

it('more active partitions than open files: a produce or read that cannot open its files answers RESOURCE_LIMIT (nothing written), the partition keeps serving, and the retry succeeds once others went idle', async () => {
  const data = tmpDir('weir-nofile-');
  fx.defer(data.cleanup);
  const { proc, url } = await startLimitedBroker(data.dir, 128, ['--idle-release-ms', '300']);
  const raw = await RawClient.connect(url);
  fx.defer(() => raw.close());
  const TOPICS = 100; // idle, they hold no files; all active, 2 each: more than the limit
  for (let t = 0; t < TOPICS; t++) expect(await raw.request({ op: 'create_topic', topic: `a${t}`, partitions: 1 })).toMatchObject({ op: 'result' });
  const batch = (t: number): Uint8Array => {
    const b = new BatchBuilder();
    b.add(`k${t}`, payload(t, 0, 120));
    return b.take();
  };
  // Every request at once, so the partitions are active together; then the refused ones again
  // until none is (the others release their files 300 ms after their last use).
  const retryAll = async (op: (t: number) => Frame): Promise<{ refused: number; results: Map<number, Frame> }> => {
    const results = new Map<number, Frame>();
    let refused = 0;
    let todo = Array.from({ length: TOPICS }, (_, t) => t);
    const deadline = Date.now() + 60_000;
    while (todo.length > 0) {
      const answers = await Promise.all(todo.map((t) => raw.request(op(t))));
      const again: number[] = [];
      answers.forEach((r, i) => {
        const t = todo[i]!;
        if (r.op === 'result') results.set(t, r);
        else {
          expect(r, `topic a${t}`).toMatchObject({ op: 'error', code: 'RESOURCE_LIMIT', retryable: true });
          again.push(t);
        }
      });
      refused += again.length;
      todo = again;
      if (todo.length > 0) {
        expect(Date.now()).toBeLessThan(deadline);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    return { refused, results };
  };
  const produced = await retryAll((t) => ({ op: 'produce', topic: `a${t}`, partition: 0, records: batch(t) }));
  expect(produced.refused).toBeGreaterThan(0); // the limit was reached
  // Small fetches: a hundred of the default 1 MiB at once would pass the connection's buffered-bytes bound (THROTTLED).
  const read = await retryAll((t) => ({ op: 'fetch', topic: `a${t}`, partition: 0, offset: 0, maxBytes: 4096 }));
  for (let t = 0; t < TOPICS; t++) {
    // Exactly the one message: a refused produce wrote nothing.
    const msgs = readMessages(`a${t}`, 0, read.results.get(t)!.records as Uint8Array);
    expect(msgs.map((m) => [m.offset, m.key])).toEqual([[0, `k${t}`]]);
    expect(sameBytes(msgs[0]!.value, payload(t, 0, 120))).toBe(true);
  }
  expect(proc.exitCode).toBeNull();
}, 120_000);
