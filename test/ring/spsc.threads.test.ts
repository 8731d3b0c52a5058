import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Worker } from 'node:worker_threads';
import {
  ConsumerDoorbell,
  ProducerDoorbell,
  RingClosedError,
  RingReader,
  RingWriter,
  closeRing,
  createRing,
} from '../../src/ring/index.js';
import { Slot, readSlot } from '../../src/ring/internal.js';
import { testSeed } from '../support/seeded-prng.js';
import { assertRingBuilt, fixture, startWorker, until } from './harness.js';
import { buildRecord, checkRecord, makeTable } from './fixtures/pattern.mjs';

/**
 * Real worker_threads against the compiled ring (build first: `npx tsc -p tsconfig.build.json`).
 *
 * A 64 KiB ring with records of 0..2 KiB (mean ~160 B) wraps thousands of times and is full most
 * of the time, so back-pressure, straddling records and both doorbell directions are exercised.
 * Every byte and the order of every record are checked (see fixtures/pattern.mjs). Each wait uses a
 * 3 s timeout while the other side is constantly busy, so a 'timed-out' means a lost wake-up: the
 * tests count those and require zero.
 */

const RING_BYTES = 64 * 1024;
const WAIT_MS = 3_000;
const SEED = testSeed(0xc0ffee);

interface ProducerReport { spaceWaits: number; timeouts: number }
interface ConsumerReport { records: number; straddled: number; dataWaits: number; timeouts: number; error: string | null }

const workers: Worker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
});

function start<T>(name: string, data: Record<string, unknown>) {
  const running = startWorker<T>(fixture(name), data);
  workers.push(running.worker);
  return running.result;
}

/** Main-thread consumer that never blocks the event loop: waitForDataAsync between drains. */
async function consumeOnMain(sab: SharedArrayBuffer, seed: number, releaseEvery: number): Promise<ConsumerReport> {
  const reader = new RingReader(sab);
  const bell = new ConsumerDoorbell(reader);
  const table = makeTable(seed);
  const report: ConsumerReport = { records: 0, straddled: 0, dataWaits: 0, timeouts: 0, error: null };
  for (;;) {
    for (let payload = reader.next(); payload !== null; payload = reader.next()) {
      report.error = checkRecord(payload, table, seed, report.records);
      if (report.error !== null) return report;
      if (payload.buffer !== sab) report.straddled++;
      report.records++;
      if (report.records % releaseEvery === 0) bell.releaseAndNotify();
    }
    report.dataWaits++;
    const result = await bell.waitForDataAsync(WAIT_MS); // releases the rest first
    if (result === 'closed') return report;
    if (result === 'timed-out' && ++report.timeouts > 3) {
      report.error = `stalled after ${report.records} records`;
      return report;
    }
  }
}

beforeAll(() => assertRingBuilt());

describe('SPSC ring across threads', () => {
  it('worker producer (Atomics.wait) → main consumer (waitAsync): 3M records, every byte in order', async () => {
    const count = 3_000_000;
    const sab = createRing(RING_BYTES);
    const produced = start<ProducerReport>('producer.mjs', { sab, seed: SEED, count, batch: 32, waitTimeoutMs: WAIT_MS });
    const consumed = await consumeOnMain(sab, SEED, 64);
    if (consumed.error !== null) closeRing(sab); // unblock the producer so the worker ends
    expect(consumed.error).toBeNull();
    const producer = await produced;

    expect(consumed.records).toBe(count);
    expect(consumed.timeouts).toBe(0);
    expect(producer.timeouts).toBe(0);
    // Not vacuous: the ring wrapped thousands of times, records straddled it, and both sides slept.
    expect(consumed.straddled).toBeGreaterThan(1_000);
    expect(producer.spaceWaits).toBeGreaterThan(100);
    expect(consumed.dataWaits).toBeGreaterThan(1);
  });

  it('worker producer → worker consumer, both blocking in Atomics.wait: 3M records', async () => {
    const count = 3_000_000;
    const sab = createRing(RING_BYTES);
    const seed = (SEED + 1) >>> 0;
    const produced = start<ProducerReport>('producer.mjs', { sab, seed, count, batch: 16, waitTimeoutMs: WAIT_MS });
    const consumer = await start<ConsumerReport>('consumer.mjs', { sab, seed, releaseEvery: 32, waitTimeoutMs: WAIT_MS });
    expect(consumer.error).toBeNull(); // checked first: on failure it closes the ring and the producer throws
    const producer = await produced;
    expect(consumer.records).toBe(count);
    expect(consumer.timeouts).toBe(0);
    expect(producer.timeouts).toBe(0);
    expect(consumer.straddled).toBeGreaterThan(1_000);
    expect(producer.spaceWaits + consumer.dataWaits).toBeGreaterThan(100);
  });

  it('main producer (writeAsync, waitAsync) → worker consumer (Atomics.wait): 1M records', async () => {
    const count = 1_000_000;
    const sab = createRing(RING_BYTES);
    const seed = (SEED + 2) >>> 0;
    const consumed = start<ConsumerReport>('consumer.mjs', { sab, seed, releaseEvery: 64, waitTimeoutMs: WAIT_MS });
    const writer = new RingWriter(sab);
    const bell = new ProducerDoorbell(writer);
    const table = makeTable(seed);
    let spaceWaits = 0;
    try {
      for (let seq = 0; seq < count; seq++) {
        const record = buildRecord(table, seed, seq);
        if (!writer.tryWrite(record)) {
          spaceWaits++;
          await bell.writeAsync(record, WAIT_MS); // publishes, then waits without blocking the loop
        }
        if ((seq + 1) % 32 === 0) bell.flush();
      }
      bell.flush();
    } catch (error) {
      if (!(error instanceof RingClosedError)) throw error; // closed: the consumer's report says why
    }
    bell.close();
    const consumer = await consumed;
    expect(consumer.error).toBeNull();
    expect(consumer.records).toBe(count);
    expect(consumer.timeouts).toBe(0);
    expect(consumer.straddled).toBeGreaterThan(300);
    expect(spaceWaits).toBeGreaterThan(100);
  });
});

describe('no lost wake-ups', () => {
  it('lockstep ping-pong of ring-filling records: every wait is ended by a wake-up, not a timeout', async () => {
    // Each record fills its 4 KiB ring, so every write waits for the previous one to be released and
    // every read waits for a publish: ~4 sleeps per round, each ended by exactly one notify. Unlike the
    // streaming tests, later traffic cannot mask a lost wake-up here: it costs a full timeout.
    const rounds = 20_000;
    const waitMs = 1_000;
    const toWorker = createRing(4096);
    const fromWorker = createRing(4096);
    const echo = start<{ echoed: number; timeouts: number; spaceWaits: number; dataWaits: number }>('echo.mjs', {
      inSab: toWorker,
      outSab: fromWorker,
      count: rounds,
      waitTimeoutMs: waitMs,
    });
    const writer = new RingWriter(toWorker);
    const outBell = new ProducerDoorbell(writer);
    const reader = new RingReader(fromWorker);
    const inBell = new ConsumerDoorbell(reader);
    const payload = new Uint8Array(writer.maxRecordBytes());
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + 7) & 0xff;
    const stamp = new DataView(payload.buffer);
    let timeouts = 0;
    let mismatches = 0;
    for (let round = 0; round < rounds; round++) {
      stamp.setUint32(0, round, true);
      stamp.setUint32(payload.length - 4, ~round >>> 0, true);
      while (!writer.tryWrite(payload)) {
        if ((await outBell.waitForSpaceAsync(payload.length, waitMs)) === 'timed-out') timeouts++;
      }
      outBell.flush();
      let echoed = reader.next();
      while (echoed === null) {
        if ((await inBell.waitForDataAsync(waitMs)) === 'timed-out') timeouts++;
        echoed = reader.next();
      }
      if (Buffer.compare(Buffer.from(echoed), payload) !== 0) mismatches++;
      if (timeouts > 3) break;
    }
    outBell.close();
    const worker = await echo;
    expect(mismatches).toBe(0);
    expect(timeouts).toBe(0);
    expect(worker.timeouts).toBe(0);
    expect(worker.echoed).toBe(rounds);
    expect(worker.dataWaits).toBeGreaterThan(rounds / 10); // it really slept, many times
  });
});

describe('close() wakes a blocked waiter', () => {
  it.each([
    { role: 'data', flag: Slot.CONSUMER_WAITING },
    { role: 'space', flag: Slot.PRODUCER_WAITING },
  ])('worker parked in Atomics.wait for $role returns closed promptly', async ({ role, flag }) => {
    const sab = createRing(4096);
    const timeoutMs = 30_000;
    const report = start<{ result: string; elapsedMs: number }>('waiter.mjs', { sab, role, timeoutMs });
    await until(() => readSlot(sab, flag) === 1, 10_000, `the ${role} waiter to announce itself`);
    await new Promise((resolve) => setTimeout(resolve, 20)); // let it actually park
    const closedAt = performance.now();
    closeRing(sab);
    const { result, elapsedMs } = await report;
    expect(result).toBe('closed');
    expect(elapsedMs).toBeLessThan(timeoutMs / 2);
    expect(performance.now() - closedAt).toBeLessThan(5_000);
  });

  it('a blocked worker times out on its own when nobody closes (control for the test above)', async () => {
    const sab = createRing(4096);
    const { result, elapsedMs } = await start<{ result: string; elapsedMs: number }>('waiter.mjs', {
      sab,
      role: 'data',
      timeoutMs: 100,
    });
    expect(result).toBe('timed-out');
    expect(elapsedMs).toBeGreaterThanOrEqual(95);
  });
});
