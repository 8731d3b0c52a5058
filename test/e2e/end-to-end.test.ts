import { afterAll, beforeAll, expect, it } from 'vitest';
import { connect, type WeirClient } from '../../src/client/index.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { payload, sameBytes, until } from '../support/payload.js';

const TOPICS = ['e2e.a', 'e2e.b', 'e2e.c'];
const PARTITIONS = 8;
const PRODUCERS = 4;
const TOTAL = 200_000;
const KEYS_PER_PRODUCER = 250;
const BATCH = 500;

let tb: TestBroker;
const clients: WeirClient[] = [];

beforeAll(async () => {
  tb = await startTestBroker({ fsync: 'never' });
});
afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await tb?.stop();
});

it('moves 200,000 keyed messages from 4 producers through 3 topics × 8 partitions to a group of 3, exactly once, in order per key, bytes intact', async () => {
  const admin = await connect(tb.url);
  clients.push(admin);
  for (const t of TOPICS) await admin.createTopic(t, { partitions: PARTITIONS });

  // key → last seq seen; (producer, seq) → seen count
  const lastSeq = new Map<string, number>();
  const seen = new Uint8Array(TOTAL);
  let received = 0;
  let orderViolations = 0;
  let payloadMismatches = 0;
  let duplicates = 0;

  const members: WeirClient[] = [];
  for (let m = 0; m < 3; m++) {
    const c = await connect(tb.url);
    clients.push(c);
    members.push(c);
    for (const topic of TOPICS) {
      await c.subscribe(topic, { group: 'e2e-group', from: 'earliest' }, async (msg) => {
        const key = msg.key!;
        const v = msg.value;
        const producer = v[0]!;
        const seq = v[1]! | (v[2]! << 8) | (v[3]! << 16);
        const global = producer * (TOTAL / PRODUCERS) + seq;
        if (seen[global]) duplicates++;
        seen[global] = 1;
        received++;
        const prev = lastSeq.get(key);
        if (prev !== undefined && prev >= seq) orderViolations++;
        lastSeq.set(key, seq);
        const expected = payload(producer, seq, 96);
        if (!sameBytes(v.subarray(4), expected) || msg.topic !== TOPICS[seq % TOPICS.length]) payloadMismatches++;
      });
    }
  }

  const produced = await Promise.all(
    Array.from({ length: PRODUCERS }, async (_, p) => {
      const c = await connect(tb.url);
      clients.push(c);
      const per = TOTAL / PRODUCERS;
      let acked = 0;
      const inFlight: Array<Promise<unknown>> = [];
      for (let start = 0; start < per; start += BATCH) {
        // One batch per topic per step, keyed so each key lives in one topic.
        const byTopic = new Map<string, Array<{ key: string; value: Uint8Array }>>();
        for (let seq = start; seq < Math.min(per, start + BATCH); seq++) {
          const topic = TOPICS[seq % TOPICS.length]!;
          const value = new Uint8Array(100);
          value[0] = p;
          value[1] = seq & 0xff;
          value[2] = (seq >> 8) & 0xff;
          value[3] = (seq >> 16) & 0xff;
          value.set(payload(p, seq, 96), 4);
          const key = `p${p}-t${seq % TOPICS.length}-k${Math.floor(seq / TOPICS.length) % KEYS_PER_PRODUCER}`;
          let list = byTopic.get(topic);
          if (!list) byTopic.set(topic, (list = []));
          list.push({ key, value });
        }
        for (const [topic, msgs] of byTopic) {
          inFlight.push(c.produce(topic, msgs).then((acks) => {
            expect(acks.length).toBe(msgs.length);
            acked += acks.length;
          }));
        }
        if (inFlight.length >= 12) await inFlight.shift();
      }
      await Promise.all(inFlight);
      return acked;
    }),
  );
  expect(produced.reduce((a, b) => a + b, 0)).toBe(TOTAL);

  await until(() => received >= TOTAL, 90_000, `all ${TOTAL} messages to be consumed (got ${received})`);
  await new Promise((r) => setTimeout(r, 300)); // any duplicate would arrive now
  expect(received).toBe(TOTAL);
  expect(duplicates).toBe(0);
  expect(seen.every((x) => x === 1)).toBe(true);
  expect(orderViolations).toBe(0);
  expect(payloadMismatches).toBe(0);
});
