/**
 * Thread entry of one producer or one consumer: its own Driver (own connection), driven by the
 * runner over postMessage (worker-protocol.ts). Only wiring lives here.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { applyThreadSlice, applyTimerSlack } from '../../src/common/native-io.js';
import { within } from './clock.js';
import { ConsumerLoop } from './consumer.js';
import { loadDriver, type Driver } from './driver.js';
import { FlowCounters } from './flow.js';
import { ProducerLoop } from './producer.js';
import { zeroCounters } from './stats.js';
import { Kind, toPlainError, type FromWorker, type ToWorker, type WorkerInit } from './worker-protocol.js';

const port = parentPort;
if (!port) throw new Error('bench/e2e/worker.js must run as a worker thread');
const init = workerData as WorkerInit;
const post = (m: FromWorker): void => port.postMessage(m);

async function closeDriver(driver: Driver, timeoutMs: number): Promise<void> {
  const r = await within(driver.close().then(() => 'ok' as const, () => 'failed' as const), timeoutMs);
  if (r !== 'ok') driver.destroy();
}

async function main(): Promise<void> {
  if (init.workload.threadSliceUs > 0) {
    const problem = applyThreadSlice(init.workload.threadSliceUs);
    if (problem !== null) throw new Error(`workload.threadSliceUs ${init.workload.threadSliceUs}: ${problem}`);
  }
  if (init.workload.timerSlackNs > 0) {
    const problem = applyTimerSlack(init.workload.timerSlackNs);
    if (problem !== null) throw new Error(`workload.timerSlackNs ${init.workload.timerSlackNs}: ${problem}`);
  }
  const driver = await loadDriver(init.driver, init.workload);
  await driver.connect();
  let producer: ProducerLoop | null = null;
  let consumer: ConsumerLoop | null = null;
  const flow = new FlowCounters(init.flow, init.producerThreads);
  if (init.role === 'producer') {
    producer = new ProducerLoop({
      driver,
      topic: init.topic,
      workload: init.workload,
      rate: init.rate,
      seed: 0x5eed + init.index * 7919,
      flow,
      index: init.index,
      onError: (err) => post({ type: Kind.ERROR, fatal: false, error: toPlainError(err) }),
    });
  } else {
    consumer = new ConsumerLoop(driver, init.topic, init.subscription, flow, init.index);
    await consumer.start(init.fromBeginning);
  }
  const counters = () => ({ ...(producer?.counters ?? consumer?.counters ?? zeroCounters()) });
  const tickHistogram = () => (producer ? producer.tick : consumer!.tick);
  const windowHistogram = () => (producer ? producer.publish : consumer!.e2e);

  port!.on('message', (m: ToWorker) => {
    switch (m.type) {
      case Kind.START:
        producer?.start();
        return;
      case Kind.RATE:
        producer?.setRate(m.rate);
        return;
      case Kind.RESET:
        producer?.resetWindow();
        consumer?.resetWindow();
        post({ type: Kind.RESET, seq: m.seq, counters: counters() });
        return;
      case Kind.TICK: {
        const h = tickHistogram();
        post({ type: Kind.TICK, seq: m.seq, counters: counters(), latency: h.toJSON() });
        h.reset();
        return;
      }
      case Kind.COLLECT:
        post({ type: Kind.COLLECT, seq: m.seq, counters: counters(), latency: windowHistogram().toJSON() });
        return;
      case Kind.COUNTERS:
        post({ type: Kind.COUNTERS, seq: m.seq, counters: counters() });
        return;
      case Kind.STOP:
        void (async () => {
          try {
            await producer?.stop(m.timeoutMs);
            await consumer?.stop();
          } catch {
            // closing anyway
          }
          await closeDriver(driver, m.timeoutMs);
          post({ type: Kind.STOPPED, counters: counters() });
          port!.close();
        })();
        return;
    }
  });
  post({ type: Kind.READY });
}

main().catch((err: unknown) => {
  post({ type: Kind.ERROR, fatal: true, error: toPlainError(err) });
});
