/**
 * Thread entry of one partition actor: open (and recover) the log, say `ready`, then run the
 * actor's loop until told to shut down. The loop blocks in Atomics.wait while idle (this thread has
 * nothing else to do), but never for long: every slice it yields to the event loop so control
 * messages (shutdown, describe) are seen.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { PartitionLog } from '../log/index.js';
import { RingReader, RingWriter, Doorbell } from '../ring/index.js';
import { PartitionCore } from '../actors/partition/core.js';
import type { ControlReply, ControlRequest, PartitionWorkerData } from './protocol.js';

/** While busy, hand the event loop a turn this often (control messages: shutdown, describe). */
const SLICE_MS = 20;
/**
 * After the last work, wait synchronously (a futex wake costs tens of microseconds less than waking
 * an event loop) for up to this long, in one wait ended by the doorbell; then sleep on the event loop
 * (Atomics.waitAsync), where an idle partition costs nothing and control messages are seen at once.
 */
const HOT_MS = 10;
const IDLE_WAIT_MS = 1_000;

const data = workerData as PartitionWorkerData;
const port = parentPort!;
const send = (m: ControlReply): void => port.postMessage(m);

const log = PartitionLog.open({
  dir: data.dir,
  segmentBytes: data.log.segmentBytes,
  indexIntervalBytes: data.log.indexIntervalBytes,
  fsync: data.log.fsync,
  ...(data.log.retentionBytes !== undefined ? { retentionBytes: data.log.retentionBytes } : {}),
  ...(data.log.retentionMs !== undefined ? { retentionMs: data.log.retentionMs } : {}),
});

const input = new RingReader(data.input);
const output = new RingWriter(data.output);
const inBell = new Doorbell(data.input);
const outBell = new Doorbell(data.output);

const core = new PartitionCore(
  log,
  {
    input,
    output,
    inputReleased: () => inBell.notifySpace(),
    outputPublished: () => outBell.ring(),
    waitForOutputSpace: (bytes, timeoutMs) => outBell.waitForSpace(bytes, timeoutMs) === 'ok',
  },
  { maxGroupBytes: 4 << 20, maxFetchBytes: Math.floor(output.capacity / 4), retentionCheckMs: 5_000 },
);

let stopping = false;

port.on('message', (m: ControlRequest) => {
  switch (m.type) {
    case 'shutdown':
      stopping = true;
      inBell.ring(); // wake the loop if it sleeps in waitForDataAsync
      break;
    case 'describe':
      send({ type: 'described', id: m.id, start: log.logStartOffset, end: log.durableOffset });
      break;
    case 'crash':
      if (!data.testHooks) break;
      if (m.how === 'throw') setImmediate(() => { throw new Error('injected crash (test hook)'); });
      else {
        const hog: unknown[] = [];
        for (;;) hog.push(new Array(1 << 20).fill(hog.length));
      }
      break;
  }
});

async function run(): Promise<void> {
  let lastWork = Date.now();
  let sliceEnd = lastWork + SLICE_MS;
  while (!stopping) {
    const now = Date.now();
    if (core.step(now)) lastWork = now;
    else if (now - lastWork < HOT_MS) inBell.waitForData(Math.max(0, Math.min(lastWork + HOT_MS - now, core.nextDeadline(now) - now)));
    else {
      await inBell.waitForDataAsync(Math.max(0, Math.min(IDLE_WAIT_MS, core.nextDeadline(now) - now)));
      sliceEnd = Date.now() + SLICE_MS;
      continue;
    }
    if (now >= sliceEnd) {
      await new Promise((r) => setImmediate(r));
      sliceEnd = Date.now() + SLICE_MS;
    }
  }
  // Graceful stop: the gateway stopped producing before asking; drain what is left, flush, fsync, close.
  while (core.step(Date.now()));
  core.close();
  send({ type: 'stopped' });
  port.close();
}

const r = log.recovery;
send({ type: 'ready', start: log.logStartOffset, end: log.durableOffset, truncatedBytes: r.truncatedBytes, truncatedAtOffset: r.truncatedAtOffset });
void run();
