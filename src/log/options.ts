/**
 * The options every partition store (PartitionLog, MemoryLog) shares, checked and defaulted in one
 * place so both read them alike: segment size, retention, segment age and the fsync policy. A bad
 * value throws LOG_BAD_ARGUMENT naming the option.
 */
import { LogArgumentError } from './errors.js';

const MiB = 1024 * 1024;
export const DEFAULT_SEGMENT_BYTES = 64 * MiB;
/** File positions are u32 in the index; keep every segment well below 4 GiB. */
export const MAX_SEGMENT_BYTES = 2 * 1024 * MiB;
const DEFAULT_MAX_SEGMENT_MS = 7 * 24 * 3600 * 1000;

export const MODE_NEVER = 0;
export const MODE_ALWAYS = 1;
export const MODE_INTERVAL = 2;

export interface StoreOptions {
  segmentBytes?: number | undefined;
  retentionBytes?: number | undefined;
  retentionMs?: number | undefined;
  segmentMs?: number | undefined;
  fsync: { readonly mode: string; readonly intervalMs?: number };
}

export interface StoreLimits {
  segmentBytes: number;
  retentionBytes: number | undefined;
  retentionMs: number | undefined;
  /** Default: a quarter of retentionMs, at most 7 days; without retentionMs, never (undefined). */
  segmentMs: number | undefined;
  /** MODE_NEVER, MODE_ALWAYS or MODE_INTERVAL. */
  fsyncMode: number;
  /** 0 unless the mode is 'interval'. */
  fsyncIntervalMs: number;
}

export function storeLimits(opts: StoreOptions): StoreLimits {
  const segmentBytes = intOption('segmentBytes', opts.segmentBytes, DEFAULT_SEGMENT_BYTES, 1, MAX_SEGMENT_BYTES);
  const retentionBytes = opts.retentionBytes === undefined ? undefined : intOption('retentionBytes', opts.retentionBytes, 0, 0, Number.MAX_SAFE_INTEGER);
  const retentionMs = opts.retentionMs === undefined ? undefined : intOption('retentionMs', opts.retentionMs, 0, 0, Number.MAX_SAFE_INTEGER);
  const segmentMs =
    opts.segmentMs !== undefined ? intOption('segmentMs', opts.segmentMs, 0, 1, Number.MAX_SAFE_INTEGER)
    : retentionMs !== undefined ? Math.max(1, Math.min(DEFAULT_MAX_SEGMENT_MS, Math.ceil(retentionMs / 4)))
    : undefined;
  const policy = opts.fsync as StoreOptions['fsync'] | undefined;
  const mode: string | undefined = policy?.mode;
  let fsyncMode: number;
  if (mode === 'never') fsyncMode = MODE_NEVER;
  else if (mode === 'always') fsyncMode = MODE_ALWAYS;
  else if (mode === 'interval') fsyncMode = MODE_INTERVAL;
  else throw new LogArgumentError(`fsync policy must be {mode:'never'|'always'|'interval'}`, { fsync: String(mode) });
  const fsyncIntervalMs = mode === 'interval' ? intOption('fsync.intervalMs', policy!.intervalMs, 0, 0, Number.MAX_SAFE_INTEGER) : 0;
  return { segmentBytes, retentionBytes, retentionMs, segmentMs, fsyncMode, fsyncIntervalMs };
}

export function intOption(name: string, value: number | undefined, dflt: number, min: number, max: number): number {
  if (value === undefined) return dflt;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new LogArgumentError(`option ${name} must be an integer in [${min}, ${max}]`, { [name]: value });
  }
  return value;
}
