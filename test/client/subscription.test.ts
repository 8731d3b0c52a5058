import { afterEach, describe, expect, it } from 'vitest';
import { connect, type ClientOptions, type Message, type WeirClient, type WeirClientError } from '../../src/client/index.js';
import { BatchBuilder } from '../../src/protocol/batch-builder.js';
import { FakeBroker, sleep, until, type FakeBrokerOptions } from './support/fake-broker.js';

let broker: FakeBroker | null = null;
let client: WeirClient | null = null;

async function setup(brokerOpts: FakeBrokerOptions = {}, clientOpts: ClientOptions = {}): Promise<{ broker: FakeBroker; client: WeirClient }> {
  broker = await FakeBroker.start(brokerOpts);
  client = await connect(broker.url, { reconnectDelayMs: 10, ...clientOpts });
  return { broker, client };
}

afterEach(async () => {
  client?.destroy();
  await broker?.close();
  client = null;
  broker = null;
});

const text = new TextDecoder();

/** Put `n` messages (values "p:i") into each listed partition, as another producer would. */
function fill(b: FakeBroker, topic: string, partitions: number[], n: number, from = 0): void {
  for (const p of partitions) {
    const bb = new BatchBuilder();
    for (let i = from; i < from + n; i++) bb.add(null, `${p}:${i}`);
    b.append(topic, p, bb.take());
  }
}

/** A gate the test opens one message at a time. */
function gate(): { wait: () => Promise<void>; open: (n?: number) => void; waiting: () => number } {
  const q: Array<() => void> = [];
  let credit = 0;
  return {
    wait: () => (credit > 0 ? (credit--, Promise.resolve()) : new Promise<void>((r) => q.push(r))),
    open: (n = 1) => {
      for (let i = 0; i < n; i++) {
        const r = q.shift();
        if (r) r();
        else credit++;
      }
    },
    waiting: () => q.length,
  };
}

const creditFrames = (b: FakeBroker, partition?: number): Array<{ partition: number; credits: number }> =>
  b
    .frames('credit')
    .map((f) => ({ partition: f.partition as number, credits: f.credits as number }))
    .filter((f) => partition === undefined || f.partition === partition);

describe('subscription credits', () => {
  it('the broker sends exactly the initial credit; the client grants more only after processing', async () => {
    const { broker, client } = await setup();
    broker.createTopic('t', 1);
    fill(broker, 't', [0], 20);
    const g = gate();
    const seen: number[] = [];
    const sub = await client.subscribe('t', { from: 'earliest', credits: 4 }, async (m) => {
      seen.push(m.offset);
      await g.wait();
    });
    await until(() => seen.length === 1);
    await sleep(30);
    const fsub = broker.subs.get(sub.id!)!;
    expect(fsub.delivered.get(0)).toBe(4); // the window, not more
    expect(sub.stats()[0]!.queued).toBe(3);
    expect(creditFrames(broker)).toEqual([]);

    g.open(); // message 0 done: 1 owed, below half the window
    await sleep(20);
    expect(creditFrames(broker)).toEqual([]);
    g.open(); // message 1 done: 2 owed = half the window → one credit frame for 2
    await until(() => creditFrames(broker).length === 1);
    expect(creditFrames(broker)).toEqual([{ partition: 0, credits: 2 }]);
    await until(() => fsub.delivered.get(0) === 6);

    // Never more credit granted than messages processed.
    let processed = 2;
    while (processed < 20) {
      g.open();
      processed++;
      await until(() => seen.length >= Math.min(20, processed + 1) || processed === 20);
      const granted = creditFrames(broker).reduce((n, f) => n + f.credits, 0);
      expect(granted).toBeLessThanOrEqual(processed);
    }
    await until(() => sub.stats()[0]!.processed === 20);
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(fsub.delivered.get(0)).toBe(20);
    const granted = creditFrames(broker).reduce((n, f) => n + f.credits, 0);
    expect(granted).toBeGreaterThanOrEqual(16);
    await sub.close();
    expect(broker.frames('unsubscribe')).toHaveLength(1);
    expect(broker.frames('commit')).toHaveLength(0); // not a group
  });

  it('handles each partition sequentially, in offset order, while partitions interleave', async () => {
    const { broker, client } = await setup({ deliverBatch: 3 });
    broker.createTopic('t', 4);
    fill(broker, 't', [0, 1, 2, 3], 25);
    const running = new Map<number, number>();
    let maxPerPartition = 0;
    let concurrent = 0;
    let maxConcurrent = 0;
    const order = new Map<number, number[]>();
    const sub = await client.subscribe('t', { from: 'earliest', credits: 5 }, async (m) => {
      running.set(m.partition, (running.get(m.partition) ?? 0) + 1);
      concurrent++;
      maxPerPartition = Math.max(maxPerPartition, running.get(m.partition)!);
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      await sleep(Math.random() * 3);
      (order.get(m.partition) ?? order.set(m.partition, []).get(m.partition)!).push(m.offset);
      expect(text.decode(m.value)).toBe(`${m.partition}:${m.offset}`);
      running.set(m.partition, running.get(m.partition)! - 1);
      concurrent--;
    });
    await until(() => [0, 1, 2, 3].every((p) => order.get(p)?.length === 25), 5000, 'all messages');
    expect(maxPerPartition).toBe(1);
    expect(maxConcurrent).toBeGreaterThan(1);
    for (const p of [0, 1, 2, 3]) expect(order.get(p)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    await sub.close();
  });

  it('a throwing handler stops only its partition and reports the error', async () => {
    const { broker, client } = await setup();
    broker.createTopic('t', 2);
    fill(broker, 't', [0, 1], 10);
    const reported: WeirClientError[] = [];
    const handled: Array<[number, number]> = [];
    const sub = await client.subscribe(
      't',
      { from: 'earliest', credits: 2, onError: (e) => reported.push(e) },
      (m: Message) => {
        if (m.partition === 0 && m.offset === 3) throw new Error('boom');
        handled.push([m.partition, m.offset]);
      },
    );
    const emitted: WeirClientError[] = [];
    sub.on('error', (e) => emitted.push(e));
    await until(() => handled.filter(([p]) => p === 1).length === 10);
    await until(() => reported.length === 1);
    await sleep(30);
    expect(handled.filter(([p]) => p === 0).map(([, o]) => o)).toEqual([0, 1, 2]);
    expect(reported[0]).toMatchObject({ code: 'HANDLER_ERROR', retryable: false, details: { partition: 0, offset: 3 } });
    expect((reported[0]!.cause as Error).message).toBe('boom');
    expect(sub.errors).toHaveLength(1);
    expect(emitted).toHaveLength(1);
    // Credit for partition 0 stopped at what was processed (3 messages → at most 3 credits).
    expect(creditFrames(broker, 0).reduce((n, f) => n + f.credits, 0)).toBeLessThanOrEqual(3);
    const stats = sub.stats();
    expect(stats[0]).toMatchObject({ stopped: true, processed: 3, queued: 0 });
    // Later messages of partition 0 are not handled.
    fill(broker, 't', [0, 1], 2, 10);
    await until(() => handled.filter(([p]) => p === 1).length === 12);
    expect(handled.filter(([p]) => p === 0)).toHaveLength(3);
    await sub.close();
  });

  it('ignores deliveries for unassigned partitions and redeliveries below the expected offset', async () => {
    const { broker, client } = await setup({ autoDeliver: false });
    broker.createTopic('t', 2);
    fill(broker, 't', [0, 1], 5);
    const handled: Array<[number, number]> = [];
    const sub = await client.subscribe('t', { from: 'earliest', credits: 100 }, (m) => {
      handled.push([m.partition, m.offset]);
    });
    const fsub = broker.subs.get(sub.id!)!;
    const conn = fsub.conn;
    const records = (p: number, from: number, to: number): Uint8Array => {
      const log = broker.log('t', p).slice(from, to);
      const out = new Uint8Array(log.reduce((n, r) => n + r.length, 0));
      let at = 0;
      for (const r of log) (out.set(r, at), (at += r.length));
      return out;
    };
    await until(() => sub.assignment().length === 2);
    broker.sendAssign(fsub, [[0, 2]]); // now only partition 0, from offset 2
    conn.send({ op: 'deliver', sub: fsub.sub, topic: 't', partition: 1, records: records(1, 0, 5), count: 5, next: 5 });
    conn.send({ op: 'deliver', sub: fsub.sub, topic: 't', partition: 0, records: records(0, 0, 4), count: 4, next: 4 });
    conn.send({ op: 'deliver', sub: fsub.sub, topic: 't', partition: 0, records: records(0, 3, 5), count: 2, next: 5 });
    await until(() => handled.length >= 3);
    await sleep(20);
    expect(handled).toEqual([
      [0, 2],
      [0, 3],
      [0, 4],
    ]);
  });
  it('a new assignment of a partition waits for the handler still running from the previous one', async () => {
    const { broker, client } = await setup();
    broker.createTopic('t', 1);
    fill(broker, 't', [0], 10);
    const g = gate();
    const started: number[] = [];
    let running = 0;
    let maxRunning = 0;
    const sub = await client.subscribe('t', { from: 'earliest', credits: 3 }, async (m) => {
      started.push(m.offset);
      maxRunning = Math.max(maxRunning, ++running);
      await g.wait();
      running--;
    });
    await until(() => started.length === 1);
    broker.sendAssign(broker.subs.get(sub.id!)!, [[0, 6]], 2); // reassigned from offset 6 while offset 0 runs
    await sleep(30);
    expect(started).toEqual([0]); // the queued 1, 2 were dropped; 6.. waits for the running handler
    g.open(100);
    await until(() => started.length === 5);
    expect(started).toEqual([0, 6, 7, 8, 9]);
    expect(maxRunning).toBe(1);
    await sub.close();
  });
});

describe('groups', () => {
  it('commits processed offsets periodically and on close', async () => {
    const { broker, client } = await setup();
    broker.createTopic('t', 2);
    fill(broker, 't', [0, 1], 5);
    let n = 0;
    const sub = await client.subscribe('t', { group: 'g', from: 'earliest', commitIntervalMs: 20 }, () => {
      n++;
    });
    await until(() => n === 10);
    await until(() => broker.committed.get('g/t/0') === 5 && broker.committed.get('g/t/1') === 5);
    const commits = broker.frames('commit').length;
    await sleep(60);
    expect(broker.frames('commit')).toHaveLength(commits); // nothing new: no empty commits
    fill(broker, 't', [1], 2, 5);
    await until(() => n === 12);
    await sub.close();
    expect(broker.committed.get('g/t/1')).toBe(7);
    const last = broker.received.filter((r) => r.frame.op === 'commit' || r.frame.op === 'unsubscribe').map((r) => r.frame.op);
    expect(last.at(-1)).toBe('unsubscribe');
  });

  it('revoke: stops dispatch, waits for the running handler, commits (awaited), then sends revoked', async () => {
    const { broker, client } = await setup({ deliverBatch: 10 });
    broker.createTopic('t', 1);
    fill(broker, 't', [0], 10);
    const g = gate();
    const handled: number[] = [];
    const sub = await client.subscribe('t', { group: 'g', from: 'earliest', commitIntervalMs: 60_000 }, async (m) => {
      await g.wait();
      handled.push(m.offset);
    });
    const fsub = broker.subs.get(sub.id!)!;
    await until(() => g.waiting() === 1); // handler of offset 0 running, 9 queued
    g.open(2); // offsets 0 and 1 complete; offset 2 starts and blocks
    await until(() => handled.length === 2 && g.waiting() === 1);

    let commitAnsweredAt = 0;
    broker.hook = async (f) => {
      if (f.op !== 'commit') return undefined;
      await sleep(40);
      commitAnsweredAt = Date.now();
      return undefined;
    };
    broker.sendRevoke(fsub);
    await sleep(30);
    // The running handler has not finished: nothing committed or revoked yet.
    expect(broker.frames('commit')).toHaveLength(0);
    expect(broker.frames('revoked')).toHaveLength(0);

    g.open(); // offset 2 finishes
    const revoked = await broker.waitFor((f) => f.op === 'revoked');
    expect(revoked.frame).toMatchObject({ sub: fsub.sub, generation: 1 });
    expect(broker.frames('commit')).toEqual([expect.objectContaining({ sub: fsub.sub, offsets: [[0, 3]] })]);
    expect(revoked.at).toBeGreaterThanOrEqual(commitAnsweredAt);
    expect(commitAnsweredAt).toBeGreaterThan(0);
    // The queued messages 3..9 were dropped, not handled.
    g.open(100);
    await sleep(30);
    expect(handled).toEqual([0, 1, 2]);
    // Deliveries before the next assign are ignored; after it, delivery resumes at the assigned offset.
    broker.hook = null;
    broker.sendAssign(fsub, [[0, 3]], 2);
    await until(() => handled.length === 10);
    expect(handled).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    await sub.close();
    expect(broker.committed.get('g/t/0')).toBe(10);
  });

  it('re-subscribes after a reconnect and continues without reprocessing (non-group)', async () => {
    const { broker, client } = await setup();
    broker.createTopic('t', 2);
    fill(broker, 't', [0, 1], 5);
    const handled: string[] = [];
    const sub = await client.subscribe('t', { from: 'earliest', credits: 10 }, (m) => {
      handled.push(text.decode(m.value));
    });
    await until(() => handled.length === 10);
    const firstId = sub.id;
    broker.dropAll();
    await until(() => broker.frames('subscribe').length === 2, 3000, 'resubscribe');
    expect(broker.frames('subscribe')[1]!.from).toEqual({ offsets: { '0': 5, '1': 5 } });
    await until(() => sub.id !== null && sub.id !== firstId && sub.assignment().length === 2);
    fill(broker, 't', [0, 1], 3, 5);
    await until(() => handled.length === 16);
    expect(handled.slice(10).sort()).toEqual(['0:5', '0:6', '0:7', '1:5', '1:6', '1:7']);
    expect(client.stats().reconnects).toBe(1);
    await sub.close();
  });

  it('group subscriptions re-subscribe with the group after a reconnect', async () => {
    const { broker, client } = await setup();
    broker.createTopic('t', 1);
    fill(broker, 't', [0], 3);
    const handled: number[] = [];
    const sub = await client.subscribe('t', { group: 'g', from: 'earliest', commitIntervalMs: 10 }, (m) => {
      handled.push(m.offset);
    });
    await until(() => broker.committed.get('g/t/0') === 3);
    broker.dropAll();
    await until(() => broker.frames('subscribe').length === 2);
    expect(broker.frames('subscribe')[1]).toMatchObject({ group: 'g', from: 'earliest' });
    fill(broker, 't', [0], 2, 3);
    await until(() => handled.length === 5);
    expect(handled).toEqual([0, 1, 2, 3, 4]);
    await sub.close();
  });
});

describe('checking CRCs (checkCrcs, on by default)', () => {
  /** Ten messages in partition 0, record 4's value changed after it was sealed (as a bad link or memory would). */
  function damaged(b: FakeBroker): void {
    b.createTopic('t', 1);
    fill(b, 't', [0], 10);
    const rec = b.log('t', 0)[4]!;
    rec[rec.length - 1]! ^= 0x01;
  }

  it('a record that fails its CRC is never handed to the handler: reported as CORRUPT_RECORD, the rest delivered in order', async () => {
    const { broker, client } = await setup();
    damaged(broker);
    const got: string[] = [];
    const errors: WeirClientError[] = [];
    await client.subscribe('t', { from: 'earliest', onError: (e) => errors.push(e) }, (m) => void got.push(text.decode(m.value)));
    await until(() => got.length === 9);
    await sleep(50);
    expect(got).toEqual([0, 1, 2, 3, 5, 6, 7, 8, 9].map((i) => `0:${i}`));
    expect(errors.map((e) => [e.code, e.details])).toEqual([['CORRUPT_RECORD', { topic: 't', partition: 0, offset: 4 }]]);
    await expect(client.fetch('t', 0, 0)).rejects.toMatchObject({ code: 'CORRUPT_RECORD', details: { offset: 4 } });
  });

  it("onDataLoss 'stop' stops the partition before the corrupt record", async () => {
    const { broker, client } = await setup();
    damaged(broker);
    const got: string[] = [];
    const errors: WeirClientError[] = [];
    await client.subscribe('t', { from: 'earliest', onDataLoss: 'stop', onError: (e) => errors.push(e) }, (m) => void got.push(text.decode(m.value)));
    await until(() => errors.length === 1);
    await sleep(50);
    expect(got).toEqual([0, 1, 2, 3].map((i) => `0:${i}`));
  });

  it('with checkCrcs: false the changed record is handed out as it arrived (the check is what keeps it out)', async () => {
    const { broker, client } = await setup({}, { checkCrcs: false });
    damaged(broker);
    const got: string[] = [];
    await client.subscribe('t', { from: 'earliest' }, (m) => void got.push(text.decode(m.value)));
    await until(() => got.length === 10);
    expect(got[4]).not.toBe('0:4');
    expect((await client.fetch('t', 0, 0)).messages.length).toBe(10);
  });
});
