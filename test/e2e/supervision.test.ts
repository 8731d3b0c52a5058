// Partition actors on worker threads here (actorHost 'threads'): these tests kill a partition's thread.
import { afterEach, expect, it } from 'vitest';
import { connect, type WeirClient } from '../../src/client/index.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { until } from '../support/payload.js';

let tb: TestBroker | undefined;
let c: WeirClient | undefined;
afterEach(async () => {
  await c?.close().catch(() => undefined);
  await tb?.stop().catch(() => undefined);
  tb = c = undefined;
});

async function crashAndWaitExit(topic: string, p: number): Promise<void> {
  const actor = tb!.broker.partitionActor(topic, p);
  const gone = new Promise<void>((r) => actor.onExit(() => r()));
  void actor.worker.terminate();
  await gone;
}

it('escalates past the restart intensity: the root restarts the whole partition tree, which replays its logs and serves the same clients', async () => {
  tb = await startTestBroker({ actorHost: 'threads', restartIntensity: 1, restartPeriodMs: 60_000, restartBackoff: { initialMs: 10, maxMs: 50 } });
  c = await connect(tb.url);
  await c.createTopic('esc', { partitions: 2 });
  const before = await c.produce('esc', Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, value: `v${i}` })));
  const seen: string[] = [];
  await c.subscribe('esc', { from: 'earliest' }, async (m) => void seen.push(new TextDecoder().decode(m.value)));
  await until(() => seen.length === 100, 10_000, 'first 100');

  const original = [tb.broker.partitionActor('esc', 0), tb.broker.partitionActor('esc', 1)];
  await crashAndWaitExit('esc', 0); // restart 1: within intensity
  await tb.broker.waitHealthy();
  await crashAndWaitExit('esc', 0); // restart 2: over intensity → escalate
  await until(() => tb!.broker.partitionActor('esc', 1) !== original[1], 10_000, 'partition 1 to be restarted with its tree');
  await tb.broker.waitHealthy();

  // Same connection, same subscription: old data intact, new data flows.
  const after = await c.produce('esc', Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, value: `w${i}` })));
  for (let i = 0; i < 100; i++) expect(after[i]!.partition).toBe(before[i]!.partition);
  await until(() => seen.length === 200, 15_000, `the subscription to resume (has ${seen.length})`);
  const d = await c.describeTopic('esc');
  expect(d.offsets.reduce((s, o) => s + o.end, 0)).toBe(200);
});

it('gives up, and says so, when the root supervisor itself exceeds its intensity', async () => {
  tb = await startTestBroker({ actorHost: 'threads', restartIntensity: 0, rootRestartIntensity: 0, restartBackoff: { initialMs: 10, maxMs: 50 } });
  c = await connect(tb.url);
  await c.createTopic('fatal', { partitions: 1 });
  const fatal = new Promise<Error>((r) => tb!.broker.onFatal(r));
  await crashAndWaitExit('fatal', 0);
  const err = (await fatal) as Error & { code?: string };
  expect(err.code).toBe('SUPERVISOR_ESCALATED');
  expect(err.message).toMatch(/restarts/);
});
