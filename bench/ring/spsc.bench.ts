/**
 * SPSC ring vs postMessage between two threads (tinybench).
 *
 *   npx tsc -p tsconfig.build.json && node dist/bench/ring/spsc.bench.js [--time=ms] [--ring-kib=256]
 *
 * One iteration moves 10 (or 1) batches of RECORDS records of RECORD_BYTES bytes from this thread to a
 * consumer worker and waits until the consumer has processed all of them:
 *  - ring:        RingWriter.tryWrite per record (writeAsync when full), one flush (publish + at most
 *                 one notify) per batch; done when the ring is empty again (waitForSpaceAsync of a
 *                 ring-filling record). The consumer blocks in Atomics.wait.
 *  - postMessage: per batch, frame the records into a fresh ArrayBuffer (the same u32 length prefix
 *                 + copy the ring does) and transfer it; done when the worker acks a final 'flush'.
 * Both consumers do the same per-record work (spsc.worker.ts): get each record as a Uint8Array and
 * read its first and last byte. The ring is 256 KiB by default (~2.5 batches), so back-pressure is
 * part of the measurement; postMessage's queue is unbounded.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { Bench, type Task } from 'tinybench';
import { workerEntry } from '../../src/common/worker-entry.js';
import { ProducerDoorbell, RingWriter, createRing, frameBytes } from '../../src/ring/index.js';

const RECORDS = 1000;
const RECORD_BYTES = 100;
const arg = (name: string, fallback: number) =>
  Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback);
const RING_BYTES = arg('ring-kib', 256) * 1024;
const WAIT_MS = 5_000;
const time = arg('time', 3000);

const payload = Uint8Array.from({ length: RECORD_BYTES }, (_, i) => (i * 7 + 1) & 0xff);
const entry = workerEntry('./spsc.worker.ts', import.meta.url);

function startWorker(workerData: { mode: 'ring' | 'post'; sab?: SharedArrayBuffer }): Worker {
  const worker = new Worker(entry, { workerData });
  worker.on('error', (error) => {
    console.error('bench worker failed:', error);
    process.exit(1);
  });
  return worker;
}

// --- ring --------------------------------------------------------------------------------------
const sab = createRing(RING_BYTES);
const writer = new RingWriter(sab);
const producer = new ProducerDoorbell(writer);
const ringWorker = startWorker({ mode: 'ring', sab });

async function ringOp(batches: number): Promise<void> {
  for (let b = 0; b < batches; b++) {
    for (let i = 0; i < RECORDS; i++) {
      if (!writer.tryWrite(payload)) {
        spaceWaits++;
        await producer.writeAsync(payload, WAIT_MS);
      }
    }
    producer.flush();
  }
  // Everything consumed and released = the whole ring free again.
  if ((await producer.waitForSpaceAsync(writer.maxRecordBytes(), WAIT_MS)) !== 'ok') {
    throw new Error('ring consumer did not drain in time');
  }
}

// --- postMessage -------------------------------------------------------------------------------
const postWorker = startWorker({ mode: 'post' });
const FRAME = frameBytes(RECORD_BYTES);
let acked: (() => void) | null = null;
let spaceWaits = 0;
postWorker.on('message', (m: unknown) => {
  if (m === 'ack') acked?.();
});

async function postOp(batches: number): Promise<void> {
  for (let b = 0; b < batches; b++) {
    const buffer = new ArrayBuffer(RECORDS * FRAME);
    const view = new DataView(buffer);
    const bytes = new Uint8Array(buffer);
    for (let i = 0, at = 0; i < RECORDS; i++, at += FRAME) {
      view.setUint32(at, RECORD_BYTES, true);
      bytes.set(payload, at + 4);
    }
    postWorker.postMessage(buffer, [buffer]);
  }
  await new Promise<void>((resolve) => {
    acked = resolve;
    postWorker.postMessage('flush');
  });
}

// 10 batches per op: pipelined throughput. 1 batch per op: each op also pays the consumer's wake-up
// and the round trip back, closer to a latency measurement.
const bench = new Bench({ time, warmupTime: Math.min(500, time / 4) });
const messagesPerOp = new Map<string, number>();
for (const batches of [10, 1]) {
  const ringName = `ring: ${batches}×${RECORDS}×${RECORD_BYTES} B, flush per batch`;
  const postName = `postMessage: ${batches}×${RECORDS}×${RECORD_BYTES} B, transfer per batch`;
  bench.add(ringName, () => ringOp(batches)).add(postName, () => postOp(batches));
  messagesPerOp.set(ringName, batches * RECORDS).set(postName, batches * RECORDS);
}
await bench.warmup();
await bench.run();

// Shut down and cross-check that both consumers saw every record.
const done = (w: Worker) => new Promise<{ records: number }>((resolve) => w.once('message', resolve));
const ringDone = done(ringWorker);
producer.close();
const postDone = new Promise<{ records: number }>((resolve) => {
  postWorker.on('message', (m: unknown) => {
    if (typeof m === 'object' && m !== null) resolve(m as { records: number });
  });
});
postWorker.postMessage('stop');
const [ringSeen, postSeen] = await Promise.all([ringDone, postDone]);

function commit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu?'} ×${os.cpus().length}, commit ${commit()}`);
console.table(
  bench.tasks.map((t: Task) => {
    const hz = t.result?.hz ?? 0;
    const messages = messagesPerOp.get(t.name) ?? 0;
    return {
      task: t.name,
      'ops/s': hz.toFixed(1),
      'mean ms': t.result ? t.result.mean.toFixed(3) : '-',
      'p99 ms': t.result ? t.result.p99.toFixed(3) : '-',
      'msgs/s': Math.round(hz * messages),
      'MB/s': Math.round((hz * messages * RECORD_BYTES) / 1e6),
    };
  }),
);
console.log(
  `ring ${RING_BYTES / 1024} KiB; producer waited for space ${spaceWaits} times in all; ` +
    `records consumed: ring ${ringSeen.records}, postMessage ${postSeen.records}`,
);
await Promise.all([ringWorker.terminate(), postWorker.terminate()]);
