/**
 * Messages between the runner (main thread) and its producer/consumer threads. Plain data only:
 * histograms travel as HistogramJSON, errors as {code, message, stack} (class identity does not
 * survive postMessage).
 */
import type { HistogramJSON } from '../../src/common/histogram.js';
import type { DriverSpec } from './driver.js';
import type { Counters } from './stats.js';
import type { Workload } from './workload.js';

export const Kind = {
  START: 'start',
  RATE: 'rate',
  RESET: 'reset',
  TICK: 'tick',
  COLLECT: 'collect',
  COUNTERS: 'counters',
  STOP: 'stop',
  READY: 'ready',
  STOPPED: 'stopped',
  ERROR: 'error',
} as const;

export interface WorkerInit {
  role: 'producer' | 'consumer';
  /** Index among the threads of its role (seeds, names). */
  index: number;
  topic: string;
  driver: DriverSpec;
  workload: Workload;
  /** Producer: its messages/s (0 = max). */
  rate: number;
  /** Consumer: subscription (group) name, and where it starts. */
  subscription: string;
  fromBeginning: boolean;
  /** Sent/received totals of every thread (flow.ts), for `workload.maxBacklog`. */
  flow: SharedArrayBuffer;
  /** Producer threads in the run (the layout of `flow`). */
  producerThreads: number;
}

export type ToWorker =
  | { type: typeof Kind.START }
  | { type: typeof Kind.RATE; rate: number }
  | { type: typeof Kind.RESET; seq: number }
  | { type: typeof Kind.TICK; seq: number }
  | { type: typeof Kind.COLLECT; seq: number }
  | { type: typeof Kind.COUNTERS; seq: number }
  | { type: typeof Kind.STOP; timeoutMs: number };

export interface PlainError {
  code: string;
  message: string;
  stack?: string;
}

export type FromWorker =
  | { type: typeof Kind.READY }
  /** Answer to RESET: the counters just after it (window counters zero, totals kept). */
  | { type: typeof Kind.RESET; seq: number; counters: Counters }
  /** Cumulative counters plus the latency histogram since the previous tick. */
  | { type: typeof Kind.TICK; seq: number; counters: Counters; latency: HistogramJSON }
  /** Window counters and the window's latency histogram. */
  | { type: typeof Kind.COLLECT; seq: number; counters: Counters; latency: HistogramJSON }
  /** Cumulative counters only (cheap polling). */
  | { type: typeof Kind.COUNTERS; seq: number; counters: Counters }
  | { type: typeof Kind.STOPPED; counters: Counters }
  /** fatal: the thread cannot continue. Non-fatal: the first produce failure (later ones are counted). */
  | { type: typeof Kind.ERROR; fatal: boolean; error: PlainError };

export function toPlainError(err: unknown): PlainError {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    const out: PlainError = { code: typeof code === 'string' ? code : err.name, message: err.message };
    if (err.stack !== undefined) out.stack = err.stack;
    return out;
  }
  return { code: 'UNKNOWN', message: String(err) };
}
