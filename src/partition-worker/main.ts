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

const SLICE_MS = 20;
const IDLE_WAIT_MS = 10;

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

function loop(): void {
  const sliceEnd = Date.now() + SLICE_MS;
  for (;;) {
    const now = Date.now();
    const worked = core.step(now);
    if (stopping || now >= sliceEnd) break;
    if (!worked) inBell.waitForData(Math.max(0, Math.min(IDLE_WAIT_MS, core.nextDeadline(now) - now)));
  }
  if (!stopping) {
    setImmediate(loop);
    return;
  }
  // Graceful stop: the gateway stopped producing before asking; drain what is left, flush, fsync, close.
  while (core.step(Date.now()));
  core.close();
  send({ type: 'stopped' });
  port.close();
}

const r = log.recovery;
send({ type: 'ready', start: log.logStartOffset, end: log.durableOffset, truncatedBytes: r.truncatedBytes, truncatedAtOffset: r.truncatedAtOffset });
setImmediate(loop);
