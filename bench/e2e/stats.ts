/**
 * Latency histograms and counters shared by the producer/consumer loops, the runner and reports.
 * Latencies are recorded in MICROSECONDS; summaries are in milliseconds.
 */
import { Histogram, type HistogramJSON } from '../../src/common/histogram.js';

/** 1 µs … 1 h at ≈ 0.1 % precision (a backlog run's end-to-end latency can exceed 100 s). */
export const LATENCY_LAYOUT = { highest: 3_600_000_000, subBucketBits: 11 } as const;

export function latencyHistogram(): Histogram {
  return new Histogram(LATENCY_LAYOUT);
}

/** Counters of one producer or consumer. "Window" counters reset at the end of warm-up; totals never do. */
export interface Counters {
  /** Messages handed to the driver (window). */
  sent: number;
  /** Messages acknowledged (window) and their payload bytes. */
  acked: number;
  ackedBytes: number;
  /** Messages whose produce failed (window). */
  failed: number;
  /** Messages received (window) and their payload bytes. */
  received: number;
  receivedBytes: number;
  /** Since the thread started: sent, acknowledged and received messages, acknowledged bytes. */
  sentTotal: number;
  ackedTotal: number;
  ackedBytesTotal: number;
  receivedTotal: number;
  /** Produce batches in flight right now. */
  inFlight: number;
}

export function zeroCounters(): Counters {
  return { sent: 0, acked: 0, ackedBytes: 0, failed: 0, received: 0, receivedBytes: 0, sentTotal: 0, ackedTotal: 0, ackedBytesTotal: 0, receivedTotal: 0, inFlight: 0 };
}

export function addCounters(a: Counters, b: Counters): Counters {
  const out = { ...a };
  for (const k of Object.keys(out) as Array<keyof Counters>) out[k] += b[k];
  return out;
}

export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  p999: number;
  p9999: number;
  max: number;
  mean: number;
}

/** Milliseconds from a microsecond histogram (null fields when it is empty). */
export function summarizeLatency(h: Histogram): LatencySummary {
  const ms = (us: number): number => (Number.isNaN(us) ? NaN : Math.round(us) / 1000);
  return {
    count: h.count,
    p50: ms(h.percentile(50)),
    p99: ms(h.percentile(99)),
    p999: ms(h.percentile(99.9)),
    p9999: ms(h.percentile(99.99)),
    max: ms(h.max),
    mean: ms(h.mean),
  };
}

export function mergeHistograms(jsons: Array<HistogramJSON | undefined>): Histogram {
  const h = latencyHistogram();
  for (const j of jsons) if (j) h.merge(Histogram.fromJSON(j));
  return h;
}
