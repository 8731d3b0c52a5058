import { afterAll, beforeAll, expect, it } from 'vitest';
import { connect, type WeirClient } from '../../src/client/index.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';

let tb: TestBroker;
let c: WeirClient;
beforeAll(async () => {
  tb = await startTestBroker();
  c = await connect(tb.url);
  await c.createTopic('budget', { partitions: 2 });
});
afterAll(async () => {
  await c?.close();
  await tb?.stop();
});

it('releases a connection\'s in-flight produce budget once each request is answered', async () => {
  const value = new Uint8Array(1000).fill(7);
  // 40 MB through a 32 MiB budget: it only passes if every answered request gives its bytes back.
  for (let i = 0; i < 40; i++) {
    await c.produce('budget', Array.from({ length: 1000 }, () => ({ value })), { partition: i % 2 });
    expect(tb.broker.gatewayStats().inFlightProduceBytes).toBe(0);
  }
  expect(c.stats().retries).toBe(0);
});
