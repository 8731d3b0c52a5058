/**
 * A consumer: end-to-end latency = receive time − the INTENDED send time stamped by the producer
 * (so producer-side delays count too, as in OMB).
 */
import type { Histogram } from '../../src/common/histogram.js';
import { now, readStamp } from './clock.js';
import type { Driver, DriverSubscription, MessageListener } from './driver.js';
import type { FlowCounters } from './flow.js';
import { latencyHistogram, zeroCounters, type Counters } from './stats.js';

export class ConsumerLoop {
  /** Window histogram (reset at the end of warm-up) and per-tick histogram, µs. */
  readonly e2e: Histogram = latencyHistogram();
  readonly tick: Histogram = latencyHistogram();
  readonly counters: Counters = zeroCounters();
  private sub: DriverSubscription | null = null;

  constructor(
    private readonly driver: Driver,
    private readonly topic: string,
    private readonly subscription: string,
    /** Where this thread publishes its received total (producers may hold back on it). */
    private readonly flow: FlowCounters,
    private readonly index: number,
  ) {}

  readonly onMessage: MessageListener = (value) => {
    const us = (now() - readStamp(value)) * 1000;
    this.e2e.record(us);
    this.tick.record(us);
    const c = this.counters;
    c.received++;
    c.receivedTotal++;
    c.receivedBytes += value.length;
    this.flow.received(this.index, c.receivedTotal);
  };

  async start(fromBeginning: boolean): Promise<void> {
    this.sub = await this.driver.subscribe(this.topic, { subscription: this.subscription, fromBeginning }, this.onMessage);
  }

  resetWindow(): void {
    this.e2e.reset();
    this.counters.received = 0;
    this.counters.receivedBytes = 0;
  }

  async stop(): Promise<void> {
    const sub = this.sub;
    this.sub = null;
    await sub?.close();
  }
}
