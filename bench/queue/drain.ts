/**
 * In-process drain of a backlog, log mode vs queue mode, for CPU profiles of the queue path:
 *
 *   npm run build && node --cpu-prof --cpu-prof-dir=/tmp/prof dist/bench/queue/drain.js [messages]
 *
 * One broker and its clients in this process: 8 partitions filled with `messages` 100-byte
 * messages, then drained by 4 log-mode consumers (each reads all of it, no group) and by 4 queue
 * consumers (one group, prefetch 100, ack per message). Prints msg/s of each drain; on a noisy
 * machine compare profiles (ns per message in each function), not absolute numbers.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from '../../src/broker.js';
import { connect, type WeirClient } from '../../src/client/index.js';

const PARTITIONS = 8;
const CONSUMERS = 4;

async function main(): Promise<void> {
  const total = Number(process.argv[2] ?? 400_000);
  const dir = mkdtempSync(join(tmpdir(), 'weir-queue-drain-'));
  const broker = await Broker.start({ port: 0, dataDir: dir, fsync: 'never' });
  const clients: WeirClient[] = [];
  try {
    const producer = await connect(broker.url);
    clients.push(producer);
    await producer.createTopic('drain', { partitions: PARTITIONS });
    const value = new Uint8Array(100).fill(120);
    const batch = Array.from({ length: 1000 }, () => ({ value }));
    const sends: Array<Promise<unknown>> = [];
    for (let i = 0; i < total; i += 1000) {
      sends.push(producer.produce('drain', batch));
      if (sends.length >= 16) await sends.shift();
    }
    await Promise.all(sends);

    // Log mode: each consumer reads every partition from the start (skipped with a 2nd argument `queue`).
    const queueOnly = process.argv[3] === 'queue';
    let logSeen = 0;
    const logStart = performance.now();
    const logDone = new Promise<void>((resolve) => {
      if (queueOnly) return resolve();
      void (async () => {
        for (let c = 0; c < CONSUMERS; c++) {
          const client = await connect(broker.url);
          clients.push(client);
          await client.subscribe('drain', { from: 'earliest' }, () => {
            if (++logSeen === total * CONSUMERS) resolve();
          });
        }
      })();
    });
    await logDone;
    const logRate = (total * CONSUMERS) / ((performance.now() - logStart) / 1000);

    const profileFile = process.argv[4];
    const session = profileFile ? new Session() : null;
    if (session) {
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
    }
    let queueSeen = 0;
    const queueStart = performance.now();
    await new Promise<void>((resolve) => {
      void (async () => {
        for (let c = 0; c < CONSUMERS; c++) {
          const client = await connect(broker.url);
          clients.push(client);
          await client.subscribe('drain', { mode: 'queue', group: 'drain', prefetch: 100 }, (m) => {
            m.ack();
            if (++queueSeen === total) resolve();
          });
        }
      })();
    });
    const queueRate = total / ((performance.now() - queueStart) / 1000);
    if (session && profileFile) {
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(profileFile, JSON.stringify(profile));
      session.disconnect();
    }
    console.log(`log mode   ${Math.round(logRate).toLocaleString('en')} msg/s (each of ${CONSUMERS} consumers reads every partition)`);
    console.log(`queue mode ${Math.round(queueRate).toLocaleString('en')} msg/s (${CONSUMERS} consumers share ${total.toLocaleString('en')})`);
  } finally {
    for (const c of clients) await c.close().catch(() => undefined);
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
