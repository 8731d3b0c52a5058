/**
 * A plain (group-less) subscription resumes after a reconnect at the offset after the last message
 * it handed to its handler: a message whose handler was still running when the socket dropped is
 * not delivered again, and the messages queued behind it are not lost.
 */
import { expect, it } from 'vitest';
import { brokerFixture, startTestBroker } from '../support/broker.js';
import { flakySockets } from '../support/flaky-socket.js';
import { until } from '../support/payload.js';

const fx = brokerFixture();

it('a handler running across a reconnect does not get its message again', async () => {
  const tb = (fx.tb = await startTestBroker());
  const producer = await fx.client(tb.url);
  await producer.createTopic('resume', { partitions: 1 });
  await producer.produce('resume', Array.from({ length: 20 }, (_, i) => ({ value: `m${i}` })), { partition: 0 });

  const flaky = flakySockets();
  const consumer = await fx.client(tb.url, { WebSocket: flaky.Ctor, reconnectDelayMs: 10 });
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let holding = false;
  const handled: number[] = [];
  await consumer.subscribe('resume', { from: 'earliest' }, async (m) => {
    handled.push(m.offset);
    if (m.offset === 5 && !holding) {
      holding = true;
      await gate; // still running when the connection drops
    }
  });
  await until(() => holding, 10_000, 'the handler to hold message 5');
  flaky.current.drop();
  await until(() => consumer.stats().reconnects === 1, 10_000, 'the reconnect');
  await new Promise((r) => setTimeout(r, 100)); // the resubscription's deliveries arrive meanwhile
  release();
  await producer.produce('resume', Array.from({ length: 5 }, (_, i) => ({ value: `n${i}` })), { partition: 0 });
  await until(() => handled.length >= 25, 10_000, `25 messages (have ${handled.length})`);
  await new Promise((r) => setTimeout(r, 200));
  expect(handled).toEqual(Array.from({ length: 25 }, (_, i) => i));
});
