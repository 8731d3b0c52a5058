/**
 * 100 000 delayed messages with random delivery times up to 5 s ahead, and a broker restart (same
 * data directory) in the middle. Every message must reach the topic exactly once, never before it
 * is due, and within 100 ms after it is due — or, for a message that fell due while the broker was
 * down (stopping, stopped or starting), within 100 ms of the broker being ready again.
 *
 * "Reached the topic" is the message's log-append time in the topic: the moment it became visible
 * to consumers. A real subscription also receives every message exactly once and never before its
 * due time (how soon after depends on the consumer, which has to reconnect after the restart).
 * Two allowances, both printed: a message cannot be delivered before the broker has it, so one due
 * before its produce was acknowledged counts from the acknowledgement; and one due within 100 ms
 * before the stop began counts as falling due while the broker was down.
 *
 * The producer and the consumer run in a worker thread (support/delay-clients.worker.mjs, on the
 * built SDK), as they would in their own process, so that their work does not stall the broker's
 * event loop. Run `npm run build` first.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { afterEach, expect, it } from 'vitest';
import { connect, type WeirClient } from '../../../src/client/index.js';
import { startTestBroker, type TestBroker } from '../../support/broker.js';
import { until } from '../../support/payload.js';
import { testSeed } from '../../support/seeded-prng.js';
import { tmpDir } from '../../support/tmp-dir.js';

const TOTAL = 100_000;
const MAX_DELAY_MS = 5_000;
const LATE_MS = 100;
const PARTITIONS = 4;
const BATCH = 500;

let tb: TestBroker | undefined;
let worker: Worker | undefined;
const clients: WeirClient[] = [];
const tmp = tmpDir('weir-delay-');
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => undefined);
  await worker?.terminate();
  await tb?.stop({ keepData: true });
  tb = undefined;
  tmp.cleanup();
});

type Event = { ev: string; [k: string]: unknown };

it('delivers 100 000 delayed messages on time and exactly once across a broker restart in the middle', async () => {
  const seed = testSeed(20261121);
  tb = await startTestBroker({ dataDir: tmp.dir });
  const admin = await connect(tb.url);
  clients.push(admin);
  await admin.createTopic('later', { partitions: PARTITIONS });
  // The first delayed message of a topic creates its schedule topic (starting its partitions takes
  // a moment): do that before the clock starts.
  const [warmAck] = await admin.produce('later', [{ value: 'warm-up', delay: 0 }]);
  expect(warmAck!.scheduled).toBe(true);

  const events: Event[] = [];
  worker = new Worker(new URL('./support/delay-clients.worker.mjs', import.meta.url), {
    workerData: { total: TOTAL, maxDelayMs: MAX_DELAY_MS, seed, batch: BATCH, partitions: PARTITIONS, topic: 'later' },
  });
  worker.on('message', (e: Event) => events.push(e));
  worker.on('error', (err) => events.push({ ev: 'error', message: String(err) }));
  const next = async (ev: string, timeoutMs: number): Promise<Event> => {
    await until(() => events.some((e) => e.ev === ev || e.ev === 'error'), timeoutMs, ev);
    const e = events.splice(events.findIndex((x) => x.ev === ev || x.ev === 'error'), 1)[0]!;
    if (e.ev === 'error') throw new Error(`client worker: ${String(e.message)}`);
    return e;
  };

  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  worker.postMessage({ cmd: 'start', url: tb.url });
  const produced = await next('produced', 60_000);
  const start = produced.start as number;

  // Restart in the middle: about half of the messages are due by now.
  await until(() => Date.now() >= start + MAX_DELAY_MS / 2, 10_000, 'the middle');
  const stopAt = Date.now();
  worker.postMessage({ cmd: 'pause' });
  const paused = await next('paused', 30_000);
  for (const c of clients.splice(0)) await c.close();
  await tb.stop({ keepData: true });
  tb = await startTestBroker({ dataDir: tmp.dir });
  const readyAt = Date.now();
  worker.postMessage({ cmd: 'resume', url: tb.url });
  await next('all-received', 60_000);
  loopDelay.disable();
  worker.postMessage({ cmd: 'results' });
  const results = await next('results', 30_000);
  const due = results.due as Float64Array;
  const ackedAt = results.ackedAt as Float64Array;
  const receivedAt = results.receivedAt as Float64Array;

  // The topic's log: every message exactly once, appended when due.
  const reader = await connect(tb.url);
  clients.push(reader);
  const decoder = new TextDecoder();
  const appendedAt = new Float64Array(TOTAL);
  let inLog = 0;
  let logDuplicates = 0;
  for (let p = 0; p < PARTITIONS; p++) {
    for (let offset = 0; ; ) {
      const r = await reader.fetch('later', p, offset, { maxRecords: 10_000 });
      for (const m of r.messages) {
        const text = decoder.decode(m.value);
        if (text === 'warm-up') continue;
        const i = Number(text);
        if (appendedAt[i] !== 0) logDuplicates++;
        appendedAt[i] = m.timestamp;
        inLog++;
      }
      if (r.next >= r.end) break;
      offset = r.next;
    }
  }

  const downFrom = stopAt - LATE_MS;
  let early = 0;
  let late = 0;
  let earlyReceipt = 0;
  let worst = 0;
  let fellDueWhileDown = 0;
  let dueBeforeAck = 0;
  const lateExamples: string[] = [];
  for (let i = 0; i < TOTAL; i++) {
    const d = due[i]!;
    const t = appendedAt[i]!;
    if (t < d) early++;
    if (receivedAt[i]! < d) earlyReceipt++;
    const wasDown = d >= downFrom && d <= readyAt;
    if (wasDown) fellDueWhileDown++;
    if (ackedAt[i]! > d) dueBeforeAck++;
    const from = Math.max(d, ackedAt[i]!, wasDown ? readyAt : 0);
    if (t > from + LATE_MS) {
      late++;
      if (lateExamples.length < 5) lateExamples.push(`#${i}: due ${d - start}, acked ${ackedAt[i]! - start}, appended ${t - start} ms after the start`);
    }
    worst = Math.max(worst, t - from);
  }
  // A failure should say which messages were late and against what, not only how many.
  if (lateExamples.length > 0) console.log(`late (stop at ${stopAt - start}, ready at ${readyAt - start}): ${lateExamples.join('; ')}`);
  console.log(
    `seed ${seed}: produced in ${produced.producedMs as number} ms; ${paused.received as number} received before the restart; ` +
      `down ${readyAt - stopAt} ms with ${fellDueWhileDown} falling due then; ${dueBeforeAck} due before their produce was ` +
      `acknowledged; worst lateness ${worst} ms; broker event-loop delay p99 ${(loopDelay.percentile(99) / 1e6).toFixed(0)} ms, ` +
      `max ${(loopDelay.max / 1e6).toFixed(0)} ms`,
  );
  expect(paused.received as number).toBeGreaterThan(0);
  expect(paused.received as number).toBeLessThan(TOTAL);
  expect(fellDueWhileDown).toBeGreaterThan(0);
  expect(inLog).toBe(TOTAL);
  expect(logDuplicates).toBe(0);
  expect(results.duplicates).toBe(0);
  expect(early).toBe(0);
  expect(earlyReceipt).toBe(0);
  expect(late).toBe(0);
}, 180_000);
