/**
 * Runs one Workload against one Driver (OMB's WorkloadGenerator), broker-agnostic:
 *
 *   admin driver: create topics ─▶ consumer threads subscribe ─▶ producer threads start
 *   ─▶ warm-up ─▶ reset (window starts, broker CPU mark) ─▶ measured window ─▶ collect
 *   ─▶ stop producers, then consumers, terminate every thread (always, also on error)
 *
 * A backlog workload (backlogBytes > 0) instead fills the topics at max rate with no consumer,
 * switches producers to `producerRate`, starts the consumers from the beginning and measures until
 * they caught up (or durationSeconds passed).
 *
 * Every producer and consumer is a worker thread with its own Driver and connection. Once a second
 * the runner asks every thread for its counters and the latency histogram of the last second and
 * logs one progress line; a lag (acknowledged − received) that keeps growing shows there.
 *
 * The broker's lifecycle is the caller's; pass its pid(s) in `brokerPids` for CPU and RSS.
 */
import { randomBytes } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { HistogramJSON } from '../../src/common/histogram.js';
import { sleep, within } from './clock.js';
import { loadDriver, type Driver, type DriverSpec } from './driver.js';
import os from 'node:os';
import { FlowCounters } from './flow.js';
import { ProcessSampler, readCpuSeconds, readMachineBusySeconds, type ResourceMark } from './proc.js';
import { addCounters, mergeHistograms, summarizeLatency, zeroCounters, type Counters, type LatencySummary } from './stats.js';
import { Kind, type FromWorker, type PlainError, type ToWorker, type WorkerInit } from './worker-protocol.js';
import { validateWorkload, type Workload } from './workload.js';

export interface RunOptions {
  workload: Workload;
  driver: DriverSpec;
  /** Processes that make up the broker (CPU and RSS are summed over them). */
  brokerPids?: number[];
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
  signal?: AbortSignal;
  /** Topic names are `${topicPrefix}-${random}-${i}`. */
  topicPrefix?: string;
  tickMs?: number;
  /** How long stop waits for in-flight produces and driver close, per thread. */
  stopTimeoutMs?: number;
}

export type Phase = 'warmup' | 'measure' | 'fill' | 'drain';

export interface TimelinePoint {
  /** Seconds since producers started. */
  t: number;
  phase: Phase;
  producedPerSec: number;
  consumedPerSec: number;
  /** Sent − received messages (in flight + consumer lag), at this point. */
  lag: number;
  publishP99Ms: number | null;
  endToEndP99Ms: number | null;
  brokerCpuCores: number | null;
  brokerRssBytes: number | null;
  /** Cores busy in processes other than the broker and this load generator (disturbance). */
  otherCores: number | null;
}

export interface Rate {
  messages: number;
  bytes: number;
  msgsPerSec: number;
  mbPerSec: number;
}

export interface BrokerUsage {
  cpuSeconds: number | null;
  /** Average cores busy in the window. */
  cpuCores: number | null;
  /** CPU seconds per million messages through the broker in the window (max of produced and consumed). */
  cpuSecondsPerMillionMessages: number | null;
  /** Largest sampled VmRSS in the window. */
  peakRssBytes: number | null;
  /** VmHWM (peak RSS since the broker started) at the end of the window. */
  hwmBytes: number | null;
  rssEndBytes: number | null;
}

export interface BacklogResult {
  /** Payload bytes and messages acknowledged when the drain started. */
  bytes: number;
  messages: number;
  fillSeconds: number;
  fillMsgsPerSec: number;
  fillMbPerSec: number;
  /** From starting the consumers until the lag fell to ≈ 0 (or the time limit). */
  drainSeconds: number;
  drained: boolean;
  /** Messages received per second during the drain (backlog + what was produced meanwhile). */
  drainMsgsPerSec: number;
  drainMbPerSec: number;
  /** Largest sampled broker VmRSS during the fill / during the drain. */
  fillPeakRssBytes: number | null;
  drainPeakRssBytes: number | null;
}

export interface RunResult {
  driver: string;
  workload: Workload;
  topics: string[];
  startedAt: string;
  windowSeconds: number;
  produced: Rate & { failed: number };
  consumed: Rate;
  publishLatencyMs: LatencySummary;
  endToEndLatencyMs: LatencySummary;
  /** Sent − received messages (in flight + consumer lag) at the start and end of the window. */
  lag: { start: number; end: number };
  broker: BrokerUsage | null;
  /** This process (runner + producer and consumer threads): average cores busy in the window. */
  loadGenerator: { cpuCores: number | null };
  /**
   * The whole machine in the window: cores busy, and cores busy in processes other than the broker
   * and this load generator (should be ≈ 0: anything else running on the machine disturbs the run).
   */
  machine: { cpuCores: number | null; otherCores: number | null; cores: number };
  backlog: BacklogResult | null;
  /** First error of each kind, from the threads. */
  errors: string[];
  timeline: TimelinePoint[];
  histograms: { publish: HistogramJSON; endToEnd: HistogramJSON };
}

const WORKER_URL = new URL('./worker.js', import.meta.url);

/** A producer or consumer thread and request/answer bookkeeping over postMessage. */
class Thread {
  readonly worker: Worker;
  readonly ready: Promise<void>;
  private readonly waiting = new Map<string, (m: FromWorker) => void>();
  private stoppedResolve!: (m: FromWorker | null) => void;
  readonly stopped: Promise<FromWorker | null>;
  exited = false;
  /** Reported a fatal error or crashed: it does not listen any more, stop() terminates at once. */
  failed = false;
  private isReady = false;
  last: Counters = zeroCounters();

  constructor(
    readonly init: WorkerInit,
    onFatal: (err: Error) => void,
    onError: (err: PlainError) => void,
  ) {
    this.stopped = new Promise((r) => (this.stoppedResolve = r));
    this.worker = new Worker(WORKER_URL, { workerData: init, name: `${init.role}-${init.index}` });
    let readyResolve!: () => void;
    let readyReject!: (err: Error) => void;
    this.ready = new Promise<void>((resolve, reject) => {
      readyResolve = resolve;
      readyReject = reject;
    });
    this.ready.catch(() => {}); // handled by whoever awaits; also reported through onFatal
    const label = `${init.role} ${init.index}`;
    this.worker.on('message', (m: FromWorker) => {
      switch (m.type) {
        case Kind.READY:
          this.isReady = true;
          readyResolve();
          return;
        case Kind.ERROR: {
          if (!m.fatal) return onError(m.error);
          const err = new Error(`${label}: ${m.error.code}: ${m.error.message}`);
          this.failed = true;
          readyReject(err);
          onFatal(err);
          return;
        }
        case Kind.STOPPED:
          this.last = m.counters;
          this.stoppedResolve(m);
          return;
        default: {
          const key = `${m.type}:${m.seq}`;
          const w = this.waiting.get(key);
          this.waiting.delete(key);
          this.last = m.counters;
          w?.(m);
        }
      }
    });
    this.worker.on('error', (err) => {
      const e = new Error(`${label} crashed: ${err.message}`, { cause: err });
      this.failed = true;
      readyReject(e);
      onFatal(e);
    });
    this.worker.on('exit', (code) => {
      this.exited = true;
      this.stoppedResolve(null);
      for (const w of this.waiting.values()) w({ type: Kind.ERROR, fatal: true, error: { code: 'EXITED', message: `exited with ${code}` } });
      this.waiting.clear();
      if (code !== 0) readyReject(new Error(`${label} exited with code ${code}`));
    });
  }

  post(m: ToWorker): void {
    if (!this.exited) this.worker.postMessage(m);
  }

  /** Send a request and wait for its answer (null after `timeoutMs`, or if the thread is gone). */
  request<T extends FromWorker['type']>(m: Extract<ToWorker, { seq: number }>, timeoutMs: number): Promise<Extract<FromWorker, { type: T }> | null> {
    if (this.exited) return Promise.resolve(null);
    return new Promise((resolve) => {
      const key = `${m.type}:${m.seq}`;
      const timer = setTimeout(() => {
        this.waiting.delete(key);
        resolve(null);
      }, timeoutMs);
      this.waiting.set(key, (answer) => {
        clearTimeout(timer);
        resolve(answer.type === m.type ? (answer as Extract<FromWorker, { type: T }>) : null);
      });
      this.worker.postMessage(m);
    });
  }

  /** Graceful stop, then terminate regardless. */
  async stop(timeoutMs: number): Promise<void> {
    if (!this.exited && !this.failed && this.isReady) {
      this.post({ type: Kind.STOP, timeoutMs });
      await within(this.stopped, timeoutMs * 2 + 1000);
    }
    await this.worker.terminate();
  }
}

async function closeDriver(driver: Driver, timeoutMs: number): Promise<void> {
  const r = await within(driver.close().then(() => 'ok', () => 'failed'), timeoutMs);
  if (r !== 'ok') driver.destroy();
}

export async function runWorkload(options: RunOptions): Promise<RunResult> {
  const w = validateWorkload({ ...options.workload });
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const tickMs = options.tickMs ?? 1000;
  const stopTimeoutMs = options.stopTimeoutMs ?? 10_000;
  const abort = new AbortController();
  let fatal: Error | null = null;
  const fail = (err: Error): void => {
    if (fatal) return;
    fatal = err;
    abort.abort(err);
  };
  const onOuterAbort = (): void => fail(options.signal!.reason instanceof Error ? options.signal!.reason : new Error('aborted'));
  if (options.signal?.aborted) onOuterAbort();
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const errors = new Map<string, string>();
  const onThreadError = (e: PlainError): void => {
    if (!errors.has(e.code)) {
      errors.set(e.code, `${e.code}: ${e.message}`);
      log(`  ! ${e.code}: ${e.message}`);
    }
  };

  const runId = randomBytes(3).toString('hex');
  const topics = Array.from({ length: w.topics }, (_, i) => `${options.topicPrefix ?? 'bench'}-${runId}-${i}`);
  const producers: Thread[] = [];
  const consumers: Thread[] = [];
  const producerThreads = w.topics * w.producersPerTopic;
  const flow = FlowCounters.allocate(producerThreads, w.topics * w.consumersPerTopic);
  const sampler = new ProcessSampler(options.brokerPids ?? []);
  const hasBroker = (options.brokerPids?.length ?? 0) > 0;
  const timeline: TimelinePoint[] = [];
  const startedAt = new Date().toISOString();
  let admin: Driver | null = null;
  let ticking = false;
  let ticker: Promise<void> = Promise.resolve();
  let seq = 0;
  let selfCpuStart: number | null = null;
  let machineCpuStart: number | null = null;

  const guard = <T>(p: Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (abort.signal.aborted) return reject(abort.signal.reason as Error);
      const onAbort = (): void => reject(abort.signal.reason as Error);
      abort.signal.addEventListener('abort', onAbort, { once: true });
      p.then(
        (v) => {
          abort.signal.removeEventListener('abort', onAbort);
          resolve(v);
        },
        (e: unknown) => {
          abort.signal.removeEventListener('abort', onAbort);
          reject(e as Error);
        },
      );
    });

  const spawn = (role: 'producer' | 'consumer', topicIndex: number, index: number, rate: number): Thread => {
    const t = new Thread(
      {
        role,
        index,
        topic: topics[topicIndex]!,
        driver: options.driver,
        workload: w,
        rate,
        subscription: `${topics[topicIndex]}-sub`,
        fromBeginning: true,
        flow,
        producerThreads,
      },
      fail,
      onThreadError,
    );
    (role === 'producer' ? producers : consumers).push(t);
    return t;
  };

  const all = (): Thread[] => [...producers, ...consumers];
  const totals = (threads: Thread[]): Counters => threads.reduce((acc, t) => addCounters(acc, t.last), zeroCounters());
  const lagNow = (): number => {
    const p = totals(producers);
    const c = totals(consumers);
    return p.sentTotal - c.receivedTotal;
  };

  // ---------------------------------------------------------------------------- progress ticks
  let phase: Phase = 'warmup';
  const t0 = performance.now();
  const cpuNow = (): { cpu: number | null; self: number | null; machine: number | null } => ({
    cpu: hasBroker ? sampler.cpuSeconds() : null,
    self: readCpuSeconds(process.pid),
    machine: readMachineBusySeconds(),
  });
  let prev = { at: t0, acked: 0, received: 0, ...cpuNow() };
  const tick = async (): Promise<void> => {
    const s = ++seq;
    const answers = await Promise.all(all().map((t) => t.request<typeof Kind.TICK>({ type: Kind.TICK, seq: s }, Math.max(2000, tickMs))));
    const at = performance.now();
    const pHist = mergeHistograms(answers.filter((a, i) => a && i < producers.length).map((a) => a!.latency));
    const cHist = mergeHistograms(answers.filter((a, i) => a && i >= producers.length).map((a) => a!.latency));
    const p = totals(producers);
    const c = totals(consumers);
    const dt = (at - prev.at) / 1000;
    const { cpu, self, machine } = cpuNow();
    const perSec = (a: number | null, b: number | null): number | null => (a === null || b === null ? null : Math.round(((a - b) / dt) * 100) / 100);
    const brokerCores = perSec(cpu, prev.cpu);
    const selfCores = perSec(self, prev.self);
    const machineCores = perSec(machine, prev.machine);
    const mem = hasBroker ? sampler.memory() : null;
    const point: TimelinePoint = {
      t: Math.round((at - t0) / 100) / 10,
      phase,
      producedPerSec: Math.round((p.ackedTotal - prev.acked) / dt),
      consumedPerSec: Math.round((c.receivedTotal - prev.received) / dt),
      // Threads answer at slightly different instants: a consumer can count a batch the producer's
      // earlier answer did not, so clamp the transient negative to 0.
      lag: Math.max(0, p.sentTotal - c.receivedTotal),
      publishP99Ms: pHist.count > 0 ? pHist.percentile(99) / 1000 : null,
      endToEndP99Ms: cHist.count > 0 ? cHist.percentile(99) / 1000 : null,
      brokerCpuCores: brokerCores,
      brokerRssBytes: mem?.rssBytes ?? null,
      otherCores: brokerCores === null || selfCores === null || machineCores === null ? null : Math.max(0, Math.round((machineCores - selfCores - brokerCores) * 100) / 100),
    };
    prev = { at, acked: p.ackedTotal, received: c.receivedTotal, cpu, self, machine };
    timeline.push(point);
    log(formatTick(point));
  };
  let tickerStop = new AbortController();
  const startTicker = (): void => {
    ticking = true;
    tickerStop = new AbortController();
    const stop = AbortSignal.any([abort.signal, tickerStop.signal]);
    ticker = (async () => {
      while (ticking && !stop.aborted) {
        await sleep(tickMs, stop).catch(() => {});
        if (ticking && !stop.aborted) await tick();
      }
    })();
  };
  const stopTicker = async (): Promise<void> => {
    ticking = false;
    tickerStop.abort();
    await ticker;
  };
  /** Wait `ms`, aborting early on a fatal error; `until` (checked every 250 ms) ends the wait early. */
  const wait = async (ms: number, until?: () => Promise<boolean>): Promise<void> => {
    const end = performance.now() + ms;
    while (performance.now() < end) {
      await sleep(Math.min(until ? Math.min(250, tickMs) : tickMs, end - performance.now()), abort.signal);
      if (until && (await guard(until()))) return;
    }
  };
  /** Fresh cumulative counters from every thread (into Thread.last). */
  const poll = async (threads: Thread[]): Promise<void> => {
    const s = ++seq;
    await guard(Promise.all(threads.map((t) => t.request({ type: Kind.COUNTERS, seq: s }, 2000))));
  };

  try {
    admin = await guard(loadDriver(options.driver, w));
    await guard(admin.connect());
    const driverName = admin.name;
    for (const t of topics) await guard(admin.createTopic(t, w.partitionsPerTopic));
    await closeDriver(admin, stopTimeoutMs);
    admin = null;
    if (hasBroker) sampler.start();

    const totalProducers = w.topics * w.producersPerTopic;
    const perProducerRate = w.producerRate / totalProducers;
    const backlogRun = w.backlogBytes > 0;

    let backlog: BacklogResult | null = null;
    let windowStart: number;
    let mark: ResourceMark;
    let lagStart: number;

    if (!backlogRun) {
      for (let ti = 0; ti < w.topics; ti++) for (let i = 0; i < w.consumersPerTopic; i++) spawn('consumer', ti, ti * w.consumersPerTopic + i, 0);
      await guard(Promise.all(consumers.map((t) => t.ready)));
      for (let ti = 0; ti < w.topics; ti++) for (let i = 0; i < w.producersPerTopic; i++) spawn('producer', ti, ti * w.producersPerTopic + i, perProducerRate);
      await guard(Promise.all(producers.map((t) => t.ready)));
      log(`  ${producers.length} producer and ${consumers.length} consumer threads ready; warm-up ${w.warmupSeconds} s, then ${w.durationSeconds} s measured`);
      for (const t of producers) t.post({ type: Kind.START });
      prev = { at: performance.now(), acked: 0, received: 0, ...cpuNow() };
      startTicker();
      await wait(w.warmupSeconds * 1000);
      ({ windowStart, mark, lagStart } = await reset());
      phase = 'measure';
      await wait(w.durationSeconds * 1000);
    } else {
      // Fill: producers only, at max rate.
      phase = 'fill';
      for (let ti = 0; ti < w.topics; ti++) for (let i = 0; i < w.producersPerTopic; i++) spawn('producer', ti, ti * w.producersPerTopic + i, 0);
      await guard(Promise.all(producers.map((t) => t.ready)));
      log(`  ${producers.length} producer threads ready; filling ${w.backlogBytes} payload bytes at max rate`);
      const fillMark = sampler.mark();
      const fillStart = performance.now();
      for (const t of producers) t.post({ type: Kind.START });
      prev = { at: fillStart, acked: 0, received: 0, ...cpuNow() };
      startTicker();
      // Poll totals more often than ticks so a small backlog does not overshoot by a whole second.
      for (;;) {
        await sleep(100, abort.signal);
        await poll(producers);
        if (totals(producers).ackedBytesTotal >= w.backlogBytes) break;
      }
      for (const t of producers) t.post({ type: Kind.RATE, rate: perProducerRate });
      const fillSeconds = (performance.now() - fillStart) / 1000;
      const fillUsage = hasBroker ? sampler.usageSince(fillMark) : null;
      const filled = totals(producers);
      log(`  backlog of ${filled.ackedTotal} messages (${filled.ackedBytesTotal} bytes) written in ${fillSeconds.toFixed(1)} s; producers now at ${w.producerRate > 0 ? `${w.producerRate} msg/s` : 'max rate'}; draining`);
      // Drain: consumers from the beginning.
      phase = 'drain';
      if (hasBroker) sampler.resetPeak();
      const drainStart = performance.now();
      for (let ti = 0; ti < w.topics; ti++) for (let i = 0; i < w.consumersPerTopic; i++) spawn('consumer', ti, ti * w.consumersPerTopic + i, 0);
      await guard(Promise.all(consumers.map((t) => t.ready)));
      ({ windowStart, mark, lagStart } = await reset());
      // Caught up: what is unconsumed is about what is in flight (sent, not yet acked or delivered).
      const threshold = Math.max((w.maxInFlightBatches + 1) * w.batchSize * producers.length, (w.producerRate || 10_000) * 0.25);
      let drained = false;
      await wait(w.durationSeconds * 1000, async () => {
        await poll(all());
        drained = lagNow() <= threshold && totals(consumers).receivedTotal > 0;
        return drained;
      });
      const drainSeconds = (performance.now() - drainStart) / 1000;
      await poll(consumers);
      const c = totals(consumers);
      const drainUsage = hasBroker ? sampler.usageSince(mark) : null;
      backlog = {
        bytes: filled.ackedBytesTotal,
        messages: filled.ackedTotal,
        fillSeconds,
        fillMsgsPerSec: filled.ackedTotal / fillSeconds,
        fillMbPerSec: filled.ackedBytesTotal / 1e6 / fillSeconds,
        drainSeconds,
        drained,
        drainMsgsPerSec: c.receivedTotal / drainSeconds,
        drainMbPerSec: (c.receivedTotal * w.messageSize) / 1e6 / drainSeconds,
        fillPeakRssBytes: fillUsage?.peakRssBytes ?? null,
        drainPeakRssBytes: drainUsage?.peakRssBytes ?? null,
      };
      log(
        drained
          ? `  drained in ${drainSeconds.toFixed(1)} s: ${Math.round(backlog.drainMsgsPerSec)} msg/s`
          : `  NOT drained after ${drainSeconds.toFixed(1)} s (lag ${lagNow()}): ${Math.round(backlog.drainMsgsPerSec)} msg/s`,
      );
    }

    // ------------------------------------------------------------------------------- collect
    const s = ++seq;
    const collected = await guard(Promise.all(all().map((t) => t.request<typeof Kind.COLLECT>({ type: Kind.COLLECT, seq: s }, 10_000))));
    const windowSeconds = (performance.now() - windowStart) / 1000;
    const usage = hasBroker ? sampler.usageSince(mark) : null;
    const selfCpuEnd = readCpuSeconds(process.pid);
    const machineCpuEnd = readMachineBusySeconds();
    await stopTicker();
    if (collected.some((c) => c === null)) throw new Error('a thread did not answer the final collect');
    const pAnswers = collected.slice(0, producers.length).map((a) => a!);
    const cAnswers = collected.slice(producers.length).map((a) => a!);
    const p = pAnswers.reduce((acc, a) => addCounters(acc, a.counters), zeroCounters());
    const c = cAnswers.reduce((acc, a) => addCounters(acc, a.counters), zeroCounters());
    const publish = mergeHistograms(pAnswers.map((a) => a.latency));
    const e2e = mergeHistograms(cAnswers.map((a) => a.latency));
    const loadGenCores = selfCpuStart === null || selfCpuEnd === null ? null : (selfCpuEnd - selfCpuStart) / windowSeconds;
    const machineCores = machineCpuStart === null || machineCpuEnd === null ? null : (machineCpuEnd - machineCpuStart) / windowSeconds;
    const rate = (messages: number, bytes: number): Rate => ({
      messages,
      bytes,
      msgsPerSec: messages / windowSeconds,
      mbPerSec: bytes / 1e6 / windowSeconds,
    });
    return {
      driver: driverName,
      workload: w,
      topics,
      startedAt,
      windowSeconds,
      produced: { ...rate(p.acked, p.ackedBytes), failed: p.failed },
      consumed: rate(c.received, c.receivedBytes),
      publishLatencyMs: summarizeLatency(publish),
      endToEndLatencyMs: summarizeLatency(e2e),
      lag: { start: Math.max(0, lagStart), end: Math.max(0, p.sentTotal - c.receivedTotal) },
      broker: usage
        ? {
            ...usage,
            // Per million messages through the broker: the larger of produced and consumed (equal
            // in a steady state; a backlog drain consumes far more than it produces).
            cpuSecondsPerMillionMessages:
              usage.cpuSeconds === null || Math.max(p.acked, c.received) === 0 ? null : usage.cpuSeconds / (Math.max(p.acked, c.received) / 1e6),
          }
        : null,
      loadGenerator: { cpuCores: loadGenCores },
      machine: {
        cpuCores: machineCores,
        otherCores:
          machineCores === null || loadGenCores === null || !hasBroker || usage?.cpuCores == null
            ? null
            : Math.max(0, machineCores - loadGenCores - usage.cpuCores),
        cores: typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length,
      },
      backlog,
      errors: [...errors.values()],
      timeline,
      histograms: { publish: publish.toJSON(), endToEnd: e2e.toJSON() },
    };
  } finally {
    await stopTicker().catch(() => {});
    sampler.stop();
    options.signal?.removeEventListener('abort', onOuterAbort);
    // Producers first (their in-flight batches settle), then consumers; every thread is terminated.
    await Promise.allSettled(producers.map((t) => t.stop(stopTimeoutMs)));
    await Promise.allSettled(consumers.map((t) => t.stop(stopTimeoutMs)));
    if (admin) admin.destroy();
  }

  async function reset(): Promise<{ windowStart: number; mark: ResourceMark; lagStart: number }> {
    const s = ++seq;
    const answers = await guard(Promise.all(all().map((t) => t.request<typeof Kind.RESET>({ type: Kind.RESET, seq: s }, 10_000))));
    if (answers.some((a) => a === null)) throw new Error('a thread did not answer reset');
    if (hasBroker) sampler.resetPeak();
    selfCpuStart = readCpuSeconds(process.pid);
    machineCpuStart = readMachineBusySeconds();
    return { windowStart: performance.now(), mark: sampler.mark(), lagStart: lagNow() };
  }
}

function formatTick(p: TimelinePoint): string {
  const n = (v: number): string => v.toLocaleString('en-US');
  const ms = (v: number | null): string => (v === null ? '   -   ' : v.toFixed(1).padStart(7));
  const broker = p.brokerCpuCores === null ? '' : `  broker ${p.brokerCpuCores.toFixed(2)} cores ${p.brokerRssBytes === null ? '' : `${Math.round(p.brokerRssBytes / 1048576)} MiB`}`;
  const other = p.otherCores === null ? '' : `  other ${p.otherCores.toFixed(2)}`;
  return `  ${p.phase.padEnd(7)} ${p.t.toFixed(1).padStart(6)} s  prod ${n(p.producedPerSec).padStart(9)}/s  cons ${n(p.consumedPerSec).padStart(9)}/s  lag ${n(p.lag).padStart(10)}  p99 pub ${ms(p.publishP99Ms)} ms  e2e ${ms(p.endToEndP99Ms)} ms${broker}${other}`;
}
