/**
 * Transactions end to end: a real broker, real WebSockets, the SDK. What users rely on: half
 * messages are invisible, a commit makes all of them visible exactly once (across partitions), a
 * rollback none, a vanished producer's transaction is settled by its checker or by the timeout,
 * and all of that survives restarts and crashes.
 */
import { afterEach, expect, it } from 'vitest';
import { connect, type WeirClient, type Message, type TransactionCheck } from '../../../src/client/index.js';
import { testHooks } from '../../../src/features/transactions/internal.js';
import { startTestBroker, type TestBroker } from '../../support/broker.js';
import { tmpDir } from '../../support/tmp-dir.js';
import { until } from '../../support/payload.js';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { exited, startBrokerProcess as startChildBroker } from '../../support/child-broker.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/**
 * A broker in a child process on tmp.dir (fsync never), to be SIGKILLed. `killed` resolves once it
 * has exited: the data directory stays locked until then (src/common/data-dir.ts).
 */
async function startBrokerProcess(env: Record<string, string>, port = 0): Promise<{ kill: () => void; killed: () => Promise<void>; url: string }> {
  const { proc, url } = await startChildBroker(tmp.dir, { port, env });
  return {
    kill: () => proc.kill('SIGKILL'),
    killed: () => {
      proc.kill('SIGKILL');
      return exited(proc);
    },
    url,
  };
}

let tb: TestBroker | undefined;
const clients: WeirClient[] = [];
const tmp = tmpDir('weir-txn-');
afterEach(async () => {
  testHooks.beforePartitionAppend = null;
  testHooks.beforeLogWrite = null;
  for (const c of clients.splice(0)) c.destroy();
  await tb?.stop({ keepData: true });
  tb = undefined;
  tmp.cleanup();
});

async function client(url: string, reconnect = true): Promise<WeirClient> {
  const c = await connect({ url, reconnect });
  clients.push(c);
  return c;
}

const text = (m: Message): string => new TextDecoder().decode(m.value);

/** Every message of every partition, via fetch. */
async function readTopic(c: WeirClient, topic: string): Promise<Message[]> {
  const { partitions } = await c.describeTopic(topic);
  const out: Message[] = [];
  for (let p = 0; p < partitions; p++) {
    let offset = 0;
    for (;;) {
      const r = await c.fetch(topic, p, offset, { maxRecords: 10_000 });
      out.push(...r.messages);
      if (r.messages.length === 0 || r.next >= r.end) break;
      offset = r.next;
    }
  }
  return out;
}

/** Call `read` until `ok(value)` (one call at a time), and return that value. */
async function eventually<T>(read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Values seen per value, to assert exactly-once. */
function counts(msgs: Message[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const x of msgs) m.set(text(x), (m.get(text(x)) ?? 0) + 1);
  return m;
}

const batch = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => ({ key: `key-${i % 13}`, value: `${prefix}-${i}` }));

it('commit makes every message visible at once across partitions; rollback shows none; half messages are invisible', async () => {
  tb = await startTestBroker({ dataDir: tmp.dir });
  const c = await client(tb.url);
  await c.createTopic('orders', { partitions: 4 });

  // A consumer subscribed from the start sees what is visible, as it becomes visible.
  const seen: Message[] = [];
  await c.subscribe('orders', { from: 'earliest' }, (m) => {
    seen.push(m);
  });

  const tx = await c.beginTransaction('orders', { producerGroup: 'billing' });
  expect(tx.id).toBeGreaterThan(0);
  await tx.produce(batch('a', 30));
  expect(await tx.produce(batch('b', 10))).toEqual({ count: 10, messages: 40 });
  const other = await c.beginTransaction('orders', { producerGroup: 'billing' });
  await other.produce(batch('x', 20));

  // Nothing of either is visible yet, while a plain message goes through.
  await c.produce('orders', [{ key: 'plain', value: 'plain-1' }]);
  await until(() => seen.length >= 1, 10_000, 'the plain message');
  expect((await readTopic(c, 'orders')).map(text)).toEqual(['plain-1']);
  expect((await c.listTransactions()).map((t) => [t.txn, t.state, t.messages])).toEqual([[tx.id, 'open', 40], [other.id, 'open', 20]]);

  expect(await tx.commit()).toBe('committed');
  expect(await other.rollback()).toBe('rolled_back');
  // The commit answer means every message is in the topic: read right away, nothing missing.
  const stored = await readTopic(c, 'orders');
  const n = counts(stored);
  for (const v of [...batch('a', 30), ...batch('b', 10)].map((m) => m.value)) expect(n.get(v), v).toBe(1);
  expect(stored.length).toBe(41);
  expect(new Set(stored.map((m) => m.partition)).size).toBeGreaterThan(1); // really multi-partition
  // Keys keep their partition (murmur2, as a plain produce) and their order.
  const [plainAck] = await c.produce('orders', [{ key: 'key-3', value: 'after' }]);
  const key3 = stored.filter((m) => m.key === 'key-3');
  expect(new Set(key3.map((m) => m.partition))).toEqual(new Set([plainAck!.partition]));
  expect(key3.map(text)).toEqual(['a-3', 'a-16', 'a-29', 'b-3']);
  expect(key3[0]!.headers['weir-txn']).toBe(String(tx.id));

  await until(() => seen.length === 42, 10_000, 'the subscriber to see the committed messages');
  expect(seen.filter((m) => text(m).startsWith('x-'))).toEqual([]);

  // Decisions are idempotent; the opposite one is refused with a stable code.
  expect(await tx.commit()).toBe('committed');
  await expect(tx.rollback()).rejects.toMatchObject({ code: 'TXN_ALREADY_DECIDED', details: { state: 'committed' } });
  await expect(other.commit()).rejects.toMatchObject({ code: 'TXN_ALREADY_DECIDED', details: { state: 'rolled_back' } });
  await expect(other.produce(batch('y', 1))).rejects.toMatchObject({ code: 'TXN_ALREADY_DECIDED' });
  await expect(c.decideTransaction(999_999, 'commit')).rejects.toMatchObject({ code: 'TXN_NOT_FOUND' });
  await expect(c.beginTransaction('nope', { producerGroup: 'g' })).rejects.toMatchObject({ code: 'TOPIC_NOT_FOUND' });
  await expect(c.beginTransaction('orders', { producerGroup: 'bad group!' })).rejects.toMatchObject({ code: 'BAD_REQUEST', details: { field: 'producerGroup' } });
  await expect(tx.produce([{ value: 'z' }], { partition: 9 })).rejects.toMatchObject({ code: 'TXN_ALREADY_DECIDED' });
  const t3 = await c.beginTransaction('orders', { producerGroup: 'billing' });
  await expect(t3.produce([{ value: 'z' }], { partition: 9 })).rejects.toMatchObject({ code: 'PARTITION_NOT_FOUND' });
  expect((await c.listTransactions({ all: true })).find((t) => t.txn === tx.id)).toMatchObject({ state: 'committed', decidedBy: 'producer', messages: 40 });
});

it('settles a killed producer’s transaction through the checker: commit shows the messages, rollback never does', async () => {
  tb = await startTestBroker({ dataDir: tmp.dir });
  const admin = await client(tb.url);
  await admin.createTopic('pay', { partitions: 3, config: { transactionCheckMs: 200, transactionTimeoutMs: 120_000 } });

  const producer = await client(tb.url, false);
  const good = await producer.beginTransaction('pay', { producerGroup: 'payments' });
  await good.produce(batch('good', 12));
  const bad = await producer.beginTransaction('pay', { producerGroup: 'payments' });
  await bad.produce(batch('bad', 12));
  producer.destroy(); // the producer vanishes with both transactions open

  const asked: TransactionCheck[] = [];
  const checker = await client(tb.url);
  await checker.transactionChecker('payments', (check) => {
    asked.push(check);
    return check.txn === good.id ? 'commit' : 'rollback';
  });
  await until(() => asked.length >= 2, 10_000, 'two checks');
  expect(asked.map((a) => [a.txn, a.topic, a.producerGroup, a.messages]).sort()).toEqual([[good.id, 'pay', 'payments', 12], [bad.id, 'pay', 'payments', 12]].sort());
  const list = await eventually(
    () => admin.listTransactions({ all: true }),
    (l) => l.filter((t) => t.state === 'committed' || t.state === 'rolled_back').length === 2,
    10_000,
    'both decided',
  );
  expect(list.find((t) => t.txn === good.id)).toMatchObject({ state: 'committed', decidedBy: 'checker' });
  expect(list.find((t) => t.txn === bad.id)).toMatchObject({ state: 'rolled_back', decidedBy: 'checker' });
  // A marker after both decisions: once it is there, the committed messages are too and the rolled-back never.
  await admin.produce('pay', [{ value: 'marker' }]);
  const n = counts(await readTopic(admin, 'pay'));
  for (let i = 0; i < 12; i++) {
    expect(n.get(`good-${i}`)).toBe(1);
    expect(n.get(`bad-${i}`)).toBeUndefined();
  }
  expect(n.get('marker')).toBe(1);
});

it('rolls back a transaction nobody answers for, after transactionTimeoutMs', async () => {
  tb = await startTestBroker({ dataDir: tmp.dir });
  const c = await client(tb.url);
  await c.createTopic('lonely', { partitions: 2, config: { transactionCheckMs: 100, transactionTimeoutMs: 600 } });
  // A checker that never knows: the broker keeps asking, then gives up.
  let asked = 0;
  await c.transactionChecker('g', () => {
    asked++;
    return 'unknown';
  });
  const p = await client(tb.url, false);
  const tx = await p.beginTransaction('lonely', { producerGroup: 'g' });
  await tx.produce(batch('lost', 5));
  p.destroy();
  const info = await eventually(
    async () => (await c.listTransactions({ all: true })).find((t) => t.txn === tx.id),
    (t) => t?.state === 'rolled_back',
    15_000,
    'the timeout rollback',
  );
  expect(info!.decidedAt! - info!.begunAt).toBeGreaterThanOrEqual(599); // not before the limit (1 ms of timer rounding)
  expect(info).toMatchObject({ decidedBy: 'timeout' });
  expect(asked).toBeGreaterThanOrEqual(1);
  await c.produce('lonely', [{ value: 'marker' }]);
  expect((await readTopic(c, 'lonely')).map(text)).toEqual(['marker']);
  await expect(c.decideTransaction(tx.id, 'commit')).rejects.toMatchObject({ code: 'TXN_ALREADY_DECIDED' });
});

it('keeps open transactions and their half messages across a broker restart', async () => {
  tb = await startTestBroker({ dataDir: tmp.dir });
  let c = await client(tb.url);
  await c.createTopic('durable', { partitions: 4 });
  const open = await c.beginTransaction('durable', { producerGroup: 'g' });
  await open.produce(batch('open', 25));
  const done = await c.beginTransaction('durable', { producerGroup: 'g' });
  await done.produce(batch('done', 5));
  await done.commit();
  for (const x of clients.splice(0)) x.destroy();
  await tb.stop({ keepData: true });

  tb = await startTestBroker({ dataDir: tmp.dir });
  c = await client(tb.url);
  expect((await c.listTransactions()).map((t) => [t.txn, t.state, t.messages])).toEqual([[open.id, 'open', 25]]);
  expect((await readTopic(c, 'durable')).map(text).sort()).toEqual(batch('done', 5).map((m) => m.value).sort());
  // Ids keep counting after the restart.
  const next = await c.beginTransaction('durable', { producerGroup: 'g' });
  expect(next.id).toBeGreaterThan(done.id);
  expect(await c.decideTransaction(open.id, 'commit')).toBe('committed');
  const n = counts(await readTopic(c, 'durable'));
  for (let i = 0; i < 25; i++) expect(n.get(`open-${i}`)).toBe(1);
  expect([...n.values()].every((v) => v === 1)).toBe(true);
  expect(n.size).toBe(30);
});

for (const stopAt of ['before any partition', 'after some partitions'] as const) {
  it(`finishes a committed transaction after a broker stop between the decision and visibility (${stopAt}), exactly once`, async () => {
    tb = await startTestBroker({ dataDir: tmp.dir });
    const c = await client(tb.url, false);
    await c.createTopic('atomic', { partitions: 4 });
    const undecided = await c.beginTransaction('atomic', { producerGroup: 'g' });
    await undecided.produce(batch('undecided', 20));
    const tx = await c.beginTransaction('atomic', { producerGroup: 'g' });
    await tx.produce(batch('m', 40));
    const appended: number[] = [];
    // The "broker dies" here: appends to the held partitions never happen in this life.
    testHooks.beforePartitionAppend = (_txn, partition) => {
      if (stopAt === 'before any partition' || partition !== 0) return new Promise<void>(() => undefined);
      appended.push(partition);
    };
    const committing = tx.commit().catch((e: unknown) => e);
    await eventually(
      async () => (await c.listTransactions()).find((t) => t.txn === tx.id)?.state,
      (state) => state === 'committing',
      10_000,
      'the decision to be durable',
    );
    if (stopAt === 'after some partitions') {
      await until(() => appended.length === 1, 10_000, 'partition 0 applied');
      await new Promise((r) => setTimeout(r, 100));
      const partial = await readTopic(c, 'atomic');
      expect(partial.length).toBeGreaterThan(0);
      expect(partial.every((m) => m.partition === 0)).toBe(true);
    } else {
      expect(await readTopic(c, 'atomic')).toEqual([]);
    }
    c.destroy();
    await tb.stop({ keepData: true });
    await committing;
    testHooks.beforePartitionAppend = null;

    tb = await startTestBroker({ dataDir: tmp.dir });
    const c2 = await client(tb.url);
    // Recovery applies it; a commit retry answers once it is visible.
    expect(await c2.decideTransaction(tx.id, 'commit')).toBe('committed');
    const stored = await readTopic(c2, 'atomic');
    const n = counts(stored);
    for (let i = 0; i < 40; i++) expect(n.get(`m-${i}`), `m-${i}`).toBe(1);
    expect(stored.length).toBe(40); // nothing twice, nothing of the undecided one
    expect((await c2.listTransactions()).map((t) => [t.txn, t.state])).toEqual([[undecided.id, 'open']]);
  });
}

it('commits through partition-actor crashes of the topic and of the half-message store', async () => {
  tb = await startTestBroker({ dataDir: tmp.dir, restartBackoff: { initialMs: 20, maxMs: 200 } });
  const c = await client(tb.url);
  await c.createTopic('crashy', { partitions: 3 });
  const tx = await c.beginTransaction('crashy', { producerGroup: 'g' });
  await tx.produce(batch('c', 30));
  // The half messages survive a crash of their partition actor.
  const half = tb.broker.partitionActor('__txn_half', 0);
  half.crash('throw');
  // Wait for the restarted actor, not the old one (still available until its crash takes effect).
  await until(() => tb!.broker.partitionActor('__txn_half', 0) !== half && tb!.broker.partitionActor('__txn_half', 0).available, 10_000, 'half store restart');
  await tx.produce(batch('d', 6));
  // A target partition is down when the commit applies: the apply retries until it is back.
  tb.broker.partitionActor('crashy', 1).crash('throw');
  expect(await tx.commit()).toBe('committed');
  const n = counts(await readTopic(c, 'crashy'));
  for (let i = 0; i < 30; i++) expect(n.get(`c-${i}`)).toBe(1);
  for (let i = 0; i < 6; i++) expect(n.get(`d-${i}`)).toBe(1);
  expect(n.size).toBe(36);
});

it('settles the transaction of a SIGKILLed producer process through the checker', async () => {
  const { pathToFileURL } = await import('node:url');
  const sdk = pathToFileURL(path.join(root, 'dist/src/client/index.js')).href;
  tb = await startTestBroker({ dataDir: tmp.dir });
  const admin = await client(tb.url);
  await admin.createTopic('killed', { partitions: 3, config: { transactionCheckMs: 200 } });
  // A separate producer process: begins, produces half messages, reports, then waits to be killed.
  const script = `
    import { connect } from ${JSON.stringify(sdk)};
    const c = await connect(${JSON.stringify(tb.url)});
    const tx = await c.beginTransaction('killed', { producerGroup: 'proc' });
    await tx.produce(Array.from({ length: 15 }, (_, i) => ({ key: 'k' + i, value: 'p-' + i })));
    process.stdout.write('txn ' + tx.id + '\\n');
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  try {
    await until(() => /txn \d+\n/.test(out), 20_000, `the child's transaction (${out})`);
  } finally {
    child.kill('SIGKILL');
  }
  const txnId = Number(/txn (\d+)/.exec(out)![1]);
  const asked: number[] = [];
  await admin.transactionChecker('proc', (check) => {
    asked.push(check.txn);
    return 'commit';
  });
  const stored = await eventually(() => readTopic(admin, 'killed'), (m) => m.length >= 15, 15_000, 'the checked transaction to be committed');
  expect(asked).toContain(txnId);
  const n = counts(stored);
  for (let i = 0; i < 15; i++) expect(n.get(`p-${i}`)).toBe(1);
  expect(stored.length).toBe(15);
});

it('finishes a committed transaction exactly once after the broker process is SIGKILLed mid-apply', async () => {
  const startBroker = (env: Record<string, string>) => startBrokerProcess(env);
  // First life: partitions 1 and 2 never get their share; partition 0 does; then SIGKILL.
  const first = await startBroker({ WEIR_TXN_TEST_HOLD_APPLY: '1,2' });
  let second: { kill: () => void; url: string } | undefined;
  try {
    const c = await client(first.url, false);
    await c.createTopic('killed-mid-apply', { partitions: 3 });
    const undecided = await c.beginTransaction('killed-mid-apply', { producerGroup: 'g' });
    await undecided.produce(batch('u', 9));
    const tx = await c.beginTransaction('killed-mid-apply', { producerGroup: 'g' });
    await tx.produce(batch('m', 39));
    void tx.commit().catch(() => undefined);
    await eventually(() => c.fetch('killed-mid-apply', 0, 0), (r) => r.messages.length > 0, 10_000, 'partition 0 applied');
    expect((await c.fetch('killed-mid-apply', 1, 0)).messages).toEqual([]);
    await first.killed();

    second = await startBroker({});
    const c2 = await client(second.url);
    expect(await c2.decideTransaction(tx.id, 'commit')).toBe('committed');
    const stored = await readTopic(c2, 'killed-mid-apply');
    const n = counts(stored);
    for (let i = 0; i < 39; i++) expect(n.get(`m-${i}`), `m-${i}`).toBe(1);
    expect(stored.length).toBe(39);
    expect(new Set(stored.map((m) => m.partition))).toEqual(new Set([0, 1, 2]));
    expect((await c2.listTransactions()).map((t) => [t.txn, t.state, t.messages])).toEqual([[undecided.id, 'open', 9]]);
  } finally {
    first.kill();
    second?.kill();
  }
});

it('keeps checking an open transaction after the broker is SIGKILLed and restarted', async () => {
  const first = await startBrokerProcess({});
  let second: { kill: () => void; url: string } | undefined;
  try {
    const admin = await client(first.url, false);
    await admin.createTopic('restarted', { partitions: 2, config: { transactionCheckMs: 150 } });
    const p = await client(first.url, false);
    const tx = await p.beginTransaction('restarted', { producerGroup: 'svc' });
    await tx.produce(batch('r', 8));
    p.destroy();
    // A checker that does not know yet: the transaction stays open through the kill.
    const asked: number[] = [];
    const unsure = await client(first.url, false);
    await unsure.transactionChecker('svc', (check) => {
      asked.push(check.txn);
      return 'unknown';
    });
    await until(() => asked.length >= 1, 10_000, 'a first check');
    await first.killed();

    second = await startBrokerProcess({});
    const c2 = await client(second.url);
    expect((await c2.listTransactions()).map((t) => [t.txn, t.state, t.messages])).toEqual([[tx.id, 'open', 8]]);
    expect((await readTopic(c2, 'restarted')).length).toBe(0);
    await c2.transactionChecker('svc', () => 'commit');
    const stored = await eventually(() => readTopic(c2, 'restarted'), (m) => m.length >= 8, 20_000, 'the commit by the checker after the restart');
    expect(stored.map(text).sort()).toEqual(batch('r', 8).map((m) => m.value).sort());
    expect((await c2.listTransactions({ all: true })).find((t) => t.txn === tx.id)).toMatchObject({ state: 'committed', decidedBy: 'checker' });
  } finally {
    first.kill();
    second?.kill();
  }
});

it('a retried apply waits for every partition of the failed chunk: nothing appended twice', async () => {
  tb = await startTestBroker({ dataDir: tmp.dir });
  const c = await client(tb.url);
  await c.createTopic('retry', { partitions: 3 });
  const tx = await c.beginTransaction('retry', { producerGroup: 'g' });
  await tx.produce(batch('r', 39));
  // First attempt: partition 0 fails at once while partitions 1 and 2 are still on their way.
  // Had the retry started then, it would count nothing there yet and append their share again.
  let attempts = 0;
  testHooks.beforePartitionAppend = async (_txn, partition) => {
    if (partition === 0 && attempts++ === 0) throw new Error('injected: partition 0 refused the first append');
    if (partition !== 0 && attempts <= 1) await new Promise((r) => setTimeout(r, 400));
  };
  expect(await tx.commit()).toBe('committed');
  expect(attempts).toBeGreaterThanOrEqual(2);
  const stored = await readTopic(c, 'retry');
  const n = counts(stored);
  for (let i = 0; i < 39; i++) expect(n.get(`r-${i}`), `r-${i}`).toBe(1);
  expect(stored.length).toBe(39);
});

it('broker-wide retention never deletes half messages of unfinished transactions', async () => {
  // Small segments and a retention far below them: every plain topic keeps only its active segment.
  tb = await startTestBroker({ dataDir: tmp.dir, segmentBytes: 16 << 10, retentionBytes: 1 });
  const c = await client(tb.url);
  await c.createTopic('kept', { partitions: 2 });
  const tx = await c.beginTransaction('kept', { producerGroup: 'g' });
  const big = 'x'.repeat(2_000);
  for (let i = 0; i < 10; i++) await tx.produce(Array.from({ length: 10 }, (_, j) => ({ key: `k${j}`, value: `h-${i * 10 + j}-${big}` })));
  // ~200 KB of half messages: a dozen sealed segments of __txn_half. The partitions check
  // retention every 5 s; wait for a check to have run.
  await new Promise((r) => setTimeout(r, 6_500));
  expect(await tx.commit()).toBe('committed');
  const n = counts(await readTopic(c, 'kept'));
  for (let i = 0; i < 100; i++) expect(n.get(`h-${i}-${big}`), `h-${i}`).toBe(1);
}, 30_000);

it('a resumed apply is not fooled by a client re-producing a committed message (weir-txn header and all) meanwhile', async () => {
  tb = await startTestBroker({ dataDir: tmp.dir });
  const c = await client(tb.url, false);
  await c.createTopic('copied', { partitions: 2 });
  const tx = await c.beginTransaction('copied', { producerGroup: 'g' });
  await tx.produce(batch('m', 26));
  // First life: partition 0 gets its share, partition 1 never does.
  testHooks.beforePartitionAppend = (_txn, partition) => (partition === 1 ? new Promise<void>(() => undefined) : undefined);
  const committing = tx.commit().catch((e: unknown) => e);
  const [first] = (await eventually(() => c.fetch('copied', 0, 0), (r) => r.messages.length > 0, 10_000, 'partition 0 applied')).messages;
  // A consumer retries that message by producing a copy of it, headers included, to partition 1.
  await c.produce('copied', [{ key: first!.key ?? undefined, value: first!.value, headers: first!.headers }], { partition: 1 });
  c.destroy();
  await tb.stop({ keepData: true });
  await committing;
  testHooks.beforePartitionAppend = null;

  tb = await startTestBroker({ dataDir: tmp.dir });
  const c2 = await client(tb.url);
  expect(await c2.decideTransaction(tx.id, 'commit')).toBe('committed');
  const stored = await readTopic(c2, 'copied');
  const n = counts(stored);
  for (let i = 0; i < 26; i++) expect(n.get(`m-${i}`), `m-${i}`).toBe(i === Number(text(first!).slice(2)) ? 2 : 1);
  expect(stored.length).toBe(27); // the 26 once, plus the client's own copy
});

it('a timeout rollback the log refuses (disk error) is reported and retried with backoff, not in a tight loop', async () => {
  const { default: diagnostics } = await import('node:diagnostics_channel');
  tb = await startTestBroker({ dataDir: tmp.dir });
  const c = await client(tb.url);
  await c.createTopic('failing', { partitions: 2, config: { transactionCheckMs: 60_000, transactionTimeoutMs: 800 } });
  const reports: Array<{ txn: number | null; op: string; error: unknown }> = [];
  const onReport = (m: unknown): void => void reports.push(m as (typeof reports)[number]);
  diagnostics.subscribe('weir:txn:error', onReport);
  try {
    const tx = await c.beginTransaction('failing', { producerGroup: 'g' });
    await tx.produce(batch('f', 3));
    // From now on (before the 800 ms timeout) every rollback entry fails like an EIO, for 3 s.
    let refused = 0;
    testHooks.beforeLogWrite = (lines) => {
      if (lines.some((l) => l.includes('"e":"rollback"'))) {
        refused++;
        throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });
      }
    };
    await new Promise((r) => setTimeout(r, 3_000));
    expect(refused).toBeGreaterThanOrEqual(2); // retried...
    expect(refused).toBeLessThanOrEqual(6); // ...about once a second, not spinning
    expect(reports.filter((r) => r.txn === tx.id && r.op === 'timeout').length).toBe(refused);
    expect(reports[0]!.error).toMatchObject({ code: 'STORAGE_ERROR' });
    expect((await c.listTransactions()).find((t) => t.txn === tx.id)?.state).toBe('open'); // still consistent
    testHooks.beforeLogWrite = null;
    const info = await eventually(
      async () => (await c.listTransactions({ all: true })).find((t) => t.txn === tx.id),
      (t) => t?.state === 'rolled_back',
      10_000,
      'the rollback once the disk is back',
    );
    expect(info).toMatchObject({ decidedBy: 'timeout' });
  } finally {
    testHooks.beforeLogWrite = null;
    diagnostics.unsubscribe('weir:txn:error', onReport);
  }
});

it('a closed checker on a connection that stays open gets no more turns in its group’s rotation', async () => {
  tb = await startTestBroker({ dataDir: tmp.dir });
  const admin = await client(tb.url);
  await admin.createTopic('rota', { partitions: 1, config: { transactionCheckMs: 200 } });
  // The first registered would get the first turn; it is closed, its client stays connected.
  const stale = await client(tb.url);
  const staleAsked: number[] = [];
  const staleChecker = await stale.transactionChecker('grp', (check) => {
    staleAsked.push(check.txn);
    return 'rollback';
  });
  const live = await client(tb.url);
  await live.transactionChecker('grp', () => 'commit');
  staleChecker.close();
  await stale.listTransactions(); // a round trip after the withdrawal on that connection

  const p = await client(tb.url, false);
  const tx = await p.beginTransaction('rota', { producerGroup: 'grp' });
  await tx.produce(batch('q', 2));
  p.destroy();
  const info = await eventually(
    async () => (await admin.listTransactions({ all: true })).find((t) => t.txn === tx.id),
    (t) => t?.state === 'committed',
    10_000,
    'the live checker’s commit',
  );
  // Asked once, by the live checker: no turn lost to the closed one.
  expect(info).toMatchObject({ decidedBy: 'checker', checks: 1 });
  expect(staleAsked).toEqual([]);
});
