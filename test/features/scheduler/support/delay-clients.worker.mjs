// The producer and the consumer of the 100 000-delayed-messages test, in their own thread (as
// clients would be in their own process), so their work does not stall the broker's event loop.
// Plain JS on the built SDK (dist/): worker threads do not go through vitest's TS transform.
import { parentPort, workerData } from 'node:worker_threads';
import { connect } from '../../../../dist/src/client/index.js';

const { total, maxDelayMs, seed, batch, partitions, topic } = workerData;
const due = new Float64Array(total);
const ackedAt = new Float64Array(total);
const receivedAt = new Float64Array(total);
const nextOffset = new Array(partitions).fill(0);
let received = 0;
let duplicates = 0;
let clients = [];
const decoder = new TextDecoder();

// mulberry32, as test/support/seeded-prng.ts
let state = seed >>> 0;
const u32 = () => {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return (t ^ (t >>> 14)) >>> 0;
};
const randomInt = (min, max) => min + Math.floor((u32() / 2 ** 32) * (max - min + 1));

const onMessage = (m) => {
  const text = decoder.decode(m.value);
  if (text === 'warm-up') return;
  const i = Number(text);
  if (receivedAt[i] !== 0) duplicates++;
  else {
    receivedAt[i] = Date.now();
    received++;
  }
  nextOffset[m.partition] = Math.max(nextOffset[m.partition], m.offset + 1);
  if (received === total) parentPort.postMessage({ ev: 'all-received' });
};

async function subscribe(url, from) {
  const consumer = await connect(url);
  clients.push(consumer);
  await consumer.subscribe(topic, { from, credits: 5000 }, onMessage);
}

parentPort.on('message', async (msg) => {
  try {
    if (msg.cmd === 'start') {
      const producer = await connect(msg.url);
      clients.push(producer);
      await subscribe(msg.url, 'earliest');
      const pending = [];
      const start = Date.now();
      for (let i = 0; i < total; i += batch) {
        const messages = [];
        for (let j = i; j < i + batch; j++) {
          due[j] = Date.now() + randomInt(0, maxDelayMs);
          messages.push({ key: `k${j % 64}`, value: String(j), deliverAt: due[j] });
        }
        pending.push(
          producer.produce(topic, messages).then(() => {
            const t = Date.now();
            for (let j = i; j < i + batch; j++) ackedAt[j] = t;
          }),
        );
        if (pending.length >= 2) await pending.shift();
      }
      await Promise.all(pending);
      parentPort.postMessage({ ev: 'produced', start, producedMs: Date.now() - start });
    } else if (msg.cmd === 'pause') {
      for (const c of clients.splice(0)) await c.close();
      parentPort.postMessage({ ev: 'paused', received });
    } else if (msg.cmd === 'resume') {
      const offsets = {};
      nextOffset.forEach((o, p) => (offsets[String(p)] = o));
      await subscribe(msg.url, { offsets });
      if (received === total) parentPort.postMessage({ ev: 'all-received' });
    } else if (msg.cmd === 'results') {
      for (const c of clients.splice(0)) await c.close();
      parentPort.postMessage({ ev: 'results', due, ackedAt, receivedAt, duplicates });
    }
  } catch (err) {
    parentPort.postMessage({ ev: 'error', message: String(err && err.stack ? err.stack : err) });
  }
});
