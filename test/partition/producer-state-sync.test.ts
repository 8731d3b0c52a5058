/**
 * Producer-state snapshots keep the broker's fsync policy: the snapshot an idempotent append
 * depends on is synced before the append is acknowledged (`always`, `interval`), and nothing is
 * synced under `never`. Actors on the gateway's thread (`actorHost: 'gateway'`): diagnostics
 * channels are per thread, so the syncs are seen in this process.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { connect, type WeirClient } from '../../src/client/index.js';
import { brokerFixture, startTestBroker } from '../support/broker.js';
import { parseJsonPayload, readSnapshotSync } from '../../src/journal/index.js';
import { JournalSyncs } from '../support/journal-syncs.js';
import { until } from '../support/payload.js';

const fx = brokerFixture();
let syncs: JournalSyncs | null = null;
const clients: WeirClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => undefined);
  syncs?.stop();
  syncs = null;
});

async function idempotentClient(url: string): Promise<WeirClient> {
  const c = await connect(url, { idempotent: true });
  clients.push(c);
  return c;
}

const snapshotFile = (dataDir: string): string => path.join(dataDir, 'topics', 'x', '0', 'producer-state.snapshot');
/** The JSON in a snapshot file. */
const snapshotIn = (file: string): unknown => {
  const r = readSnapshotSync(file);
  return r.kind === 'ok' ? parseJsonPayload(r.payload) : undefined;
};
const value = (i: number): { key: string; value: string } => ({ key: `k${i}`, value: String(i) });

for (const fsync of ['always', 'interval:50'] as const) {
  it(`${fsync}: the snapshot that starts tracking is fdatasynced before the first idempotent append is acknowledged`, async () => {
    fx.tb = await startTestBroker({ fsync, actorHost: 'gateway' });
    const file = snapshotFile(fx.tb.dir);
    const admin = await fx.client(fx.tb.url);
    await admin.createTopic('x', { partitions: 1 });
    syncs = new JournalSyncs();
    const c = await idempotentClient(fx.tb.url);
    await c.produce('x', [value(0), value(1)]);
    syncs.mark('acked');
    expect(syncs.before(file, 'acked')).toBeGreaterThanOrEqual(1);
    expect(snapshotIn(file)).toMatchObject({ version: 1, producers: expect.any(Array) });
  });
}

it('never: snapshots are written (the "none" file, tracking) but never fdatasynced', async () => {
  fx.tb = await startTestBroker({ fsync: 'never', actorHost: 'gateway' });
  const file = snapshotFile(fx.tb.dir);
  syncs = new JournalSyncs();
  const admin = await fx.client(fx.tb.url);
  await admin.createTopic('x', { partitions: 1 });
  await until(() => fs.existsSync(file), 5_000, 'the "none" file');
  const c = await idempotentClient(fx.tb.url);
  for (let i = 0; i < 5; i++) await c.produce('x', [value(i)]);
  expect(snapshotIn(file)).toMatchObject({ version: 1, producers: expect.any(Array) });
  expect(syncs.of(file)).toEqual([]);
});
