/**
 * Thread entry of partition actors: open (and recover) each hosted partition's log, say `ready`,
 * then run the actors until told to shut down. While traffic is recent the thread waits
 * synchronously on its bell (the cheapest wake-up); once quiet it sleeps on the event loop
 * (Atomics.waitAsync), where an idle thread costs nothing and control messages are seen at once.
 */
import { parentPort } from 'node:worker_threads';
import { workerStartData } from '../supervisor/worker-child.js';
import { Doorbell, RingReader, RingWriter, ThreadBell } from '../ring/index.js';
import { openHostedPartition, slotReady, type HostedPartition } from '../partition/open-partition.js';
import type { ControlReply, ControlRequest, PartitionSlotData, PartitionWorkerData } from '../partition/protocol.js';
import { channels } from '../common/diagnostics.js';
import { errorToPlain } from '../common/errors.js';

/** While busy, hand the event loop a turn this often (control messages: shutdown, describe). */
const SLICE_MS = 20;
/** After the last work, wait synchronously, in one wait ended by the bell, for up to this long. */
const HOT_MS = 10;
const IDLE_WAIT_MS = 1_000;

// A thread spawned ahead of a move (WarmWorker) has loaded this module and waits here for its slots.
const data = await workerStartData<PartitionWorkerData>();
const port = parentPort!;
const send = (m: ControlReply): void => port.postMessage(m);
const bell = new ThreadBell(data.bell);

function host(slot: PartitionSlotData): HostedPartition {
  const inBell = new Doorbell(slot.input);
  const outBell = new Doorbell(slot.output);
  const output = new RingWriter(slot.output);
  return openHostedPartition(slot, {
    input: new RingReader(slot.input),
    output,
    inputReleased: () => inBell.notifySpace(),
    outputPublished: () => outBell.ring(),
    waitForOutputSpace: (bytes, timeoutMs) => outBell.waitForSpace(bytes, timeoutMs) === 'ok',
  }, output.capacity);
}

// Test hook: this thread's start fails (a move's fallback to the old host), for the partition named
// `topic/partition` in WEIR_TEST_FAIL_THREAD_START.
const failStart = data.testHooks ? process.env.WEIR_TEST_FAIL_THREAD_START : undefined;
if (failStart !== undefined && data.slots.some((s) => `${s.topic}/${s.partition}` === failStart)) {
  throw new Error(`injected start failure (test hook) of the thread hosting ${failStart}`);
}

const hosted = data.slots.map(host);
const hasInput = (): boolean => {
  for (const h of hosted) if (h.ports.input.available() > 0) return true;
  return false;
};
const nextDeadline = (now: number): number => {
  let d = now + IDLE_WAIT_MS;
  for (const h of hosted) d = Math.min(d, h.core.nextDeadline(now));
  return d;
};

let stopping = false;
let handingOver = false;
/** The shutdown request rings the bell too: without `stopping` here the wait would re-sleep until its timeout (1 s per thread). */
const hasWork = (): boolean => stopping || hasInput();

port.on('message', (m: ControlRequest) => {
  switch (m.type) {
    case 'hand-over':
      handingOver = true;
      break;
    case 'shutdown':
      stopping = true;
      bell.ring(); // wake the loop if it sleeps
      break;
    case 'describe': {
      const log = hosted[m.slot]!.log;
      send({ type: 'described', id: m.id, slot: m.slot, start: log.logStartOffset, end: log.durableOffset });
      break;
    }
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

function stepAll(now: number): boolean {
  let worked = false;
  for (const h of hosted) if (h.core.step(now)) worked = true;
  return worked;
}

async function run(): Promise<void> {
  let lastWork = Date.now();
  let sliceEnd = lastWork + SLICE_MS;
  while (!stopping) {
    const now = Date.now();
    if (stepAll(now)) lastWork = now;
    else if (now - lastWork < HOT_MS) bell.waitSync(hasWork, Math.max(0, Math.min(lastWork + HOT_MS, nextDeadline(now)) - now));
    else {
      await bell.waitAsync(hasWork, Math.max(0, nextDeadline(now) - now));
      sliceEnd = Date.now() + SLICE_MS;
      continue;
    }
    if (now >= sliceEnd) {
      await new Promise((r) => setImmediate(r));
      sliceEnd = Date.now() + SLICE_MS;
    }
  }
  // Graceful stop: the gateway stopped producing before asking; drain what is left, flush, fsync, close.
  while (stepAll(Date.now()));
  for (const h of hosted) h.core.close(handingOver);
  send({ type: 'stopped' });
  port.close();
}

send({
  type: 'ready',
  slots: hosted.map(({ log }) => slotReady(log)),
});
// From here on (recovery's findings went with `ready`), relay what the logs report while running.
for (const name of ['walDamage', 'walSyncFailed', 'walWriteFailed'] as const) {
  channels[name].subscribe((m) => {
    const message = { ...(m as Record<string, unknown>) };
    if (message.error !== undefined) message.error = errorToPlain(message.error);
    send({ type: 'log-event', event: { channel: name, message } });
  });
}
void run();
