import { afterAll, beforeAll, expect, it } from 'vitest';
import { connect, type WeirClient } from '../../../src/client/index.js';
import { startTestBroker, type TestBroker } from '../../support/broker.js';
import { tmpDir } from '../../support/tmp-dir.js';

let tb: TestBroker;
let c: WeirClient;
const data = tmpDir('weir-topic-config-');
beforeAll(async () => {
  tb = await startTestBroker({ dataDir: data.dir });
  c = await connect(tb.url);
});
afterAll(async () => {
  await c?.close();
  await tb?.stop();
  data.cleanup();
});

it('creates a topic with settings, fills the defaults, alters some, and keeps them across a restart', async () => {
  const created = await c.createTopic('jobs', { partitions: 2, config: { maxDeliveries: 3, orderedKeys: true, retryBackoff: { initialMs: 50 } } });
  expect(created.created).toBe(true);
  expect(created.config).toMatchObject({
    maxDeliveries: 3,
    orderedKeys: true,
    visibilityTimeoutMs: 30_000,
    deadLetterTopic: 'jobs.dlq',
    ttlMs: null,
    retryBackoff: { initialMs: 50, maxMs: 30_000, multiplier: 2, jitter: 0.2 },
  });
  const altered = await c.alterTopic('jobs', { ttlMs: 60_000, deadLetterTopic: null });
  expect(altered).toMatchObject({ maxDeliveries: 3, ttlMs: 60_000, deadLetterTopic: null });

  await c.close();
  await tb.stop({ keepData: true });
  tb = await startTestBroker({ dataDir: data.dir });
  c = await connect(tb.url);
  const d = await c.describeTopic('jobs');
  expect(d.config).toMatchObject({ maxDeliveries: 3, orderedKeys: true, ttlMs: 60_000, deadLetterTopic: null, retryBackoff: { initialMs: 50 } });
});

it('refuses bad settings with BAD_REQUEST naming the field, and creates nothing', async () => {
  await expect(c.createTopic('bad1', { partitions: 1, config: { maxDeliveries: 0 } })).rejects.toMatchObject({ code: 'BAD_REQUEST', details: { field: 'config.maxDeliveries' } });
  await expect(c.createTopic('bad2', { partitions: 1, config: { nope: 1 } as never })).rejects.toMatchObject({ code: 'BAD_REQUEST', details: { field: 'config.nope' } });
  await expect(c.createTopic('bad3', { partitions: 1, config: { deadLetterTopic: '__x' } })).rejects.toMatchObject({ code: 'BAD_REQUEST', details: { field: 'config.deadLetterTopic' } });
  await expect(c.alterTopic('missing', { ttlMs: 5 })).rejects.toMatchObject({ code: 'TOPIC_NOT_FOUND' });
  const names = (await c.listTopics()).map((t) => t.topic);
  expect(names).not.toContain('bad1');
  expect(names).not.toContain('bad2');
});
