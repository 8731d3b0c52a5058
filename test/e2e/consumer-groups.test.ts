import { afterEach, expect, it } from 'vitest';
import { connect, type WeirClient } from '../../src/client/index.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { tmpDir } from '../support/tmp-dir.js';
import { until } from '../support/payload.js';

let tb: TestBroker | undefined;
const clients: WeirClient[] = [];
const tmp = tmpDir('weir-groups-');
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => undefined);
  await tb?.stop({ keepData: true });
  tmp.cleanup();
});

async function client(url: string): Promise<WeirClient> {
  const c = await connect(url);
  clients.push(c);
  return c;
}

const produceN = async (c: WeirClient, from: number, n: number): Promise<void> => {
  for (let i = from; i < from + n; i += 250) {
    const msgs = Array.from({ length: Math.min(250, from + n - i) }, (_, j) => ({ key: `k${(i + j) % 40}`, value: String(i + j) }));
    await c.produce('grp', msgs);
  }
};

it('keeps committed group offsets across a broker restart, and a joining member causes a rebalance that skips nothing', async () => {
  tb = await startTestBroker({ dataDir: tmp.dir });
  const producer = await client(tb.url);
  await producer.createTopic('grp', { partitions: 4 });
  await produceN(producer, 0, 1000);

  // First life: one member consumes everything and commits.
  const firstSeen = new Set<number>();
  const a = await client(tb.url);
  const subA = await a.subscribe('grp', { group: 'g1', from: 'earliest' }, async (m) => {
    firstSeen.add(Number(new TextDecoder().decode(m.value)));
  });
  await until(() => firstSeen.size === 1000, 20_000, 'first 1000');
  await subA.close();
  for (const c of clients.splice(0)) await c.close();
  await tb.stop({ keepData: true });

  // Second life: the group resumes after its committed offsets.
  tb = await startTestBroker({ dataDir: tmp.dir });
  const p2 = await client(tb.url);
  await produceN(p2, 1000, 2000);
  const seen = new Map<number, number>();
  const record = (m: { value: Uint8Array }) => {
    const v = Number(new TextDecoder().decode(m.value));
    seen.set(v, (seen.get(v) ?? 0) + 1);
  };
  const b = await client(tb.url);
  await b.subscribe('grp', { group: 'g1', from: 'earliest' }, async (m) => {
    record(m);
    await new Promise((r) => setTimeout(r, 0));
  });
  await until(() => seen.size >= 300, 20_000, 'member B to start');
  // A new member joins mid-stream: a rebalance; then more messages arrive.
  const cMember = await client(tb.url);
  const perMember = new Map<string, number>();
  await cMember.subscribe('grp', { group: 'g1', from: 'earliest' }, async (m) => {
    record(m);
    perMember.set('c', (perMember.get('c') ?? 0) + 1);
  });
  await produceN(p2, 3000, 1000);
  await until(() => seen.size === 3000, 30_000, `all of 1000..3999 (have ${seen.size})`);
  for (let v = 1000; v < 4000; v++) expect(seen.has(v), `message ${v}`).toBe(true);
  for (const v of seen.keys()) expect(v).toBeGreaterThanOrEqual(1000); // nothing from before the restart again
  expect(perMember.get('c') ?? 0).toBeGreaterThan(0); // the new member got partitions
});
