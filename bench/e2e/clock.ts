/**
 * The benchmark clock and the send-time stamp carried in every message.
 *
 * now() is performance.timeOrigin + performance.now(): epoch milliseconds with sub-microsecond
 * resolution that agree across threads and processes of one machine (each thread has its own
 * timeOrigin, but origin + now is the same wall instant), unlike a bare performance.now().
 *
 * The stamp is the message's INTENDED send time as a float64 in the value's first 8 bytes, in the
 * host's byte order (producer and consumer run on the same machine).
 */
import { performance } from 'node:perf_hooks';

const origin = performance.timeOrigin;

export function now(): number {
  return origin + performance.now();
}

export const STAMP_BYTES = 8;

const scratchF64 = new Float64Array(1);
const scratchU8 = new Uint8Array(scratchF64.buffer);

/** Write `ms` at values[at … at+8). */
export function writeStamp(values: Uint8Array, at: number, ms: number): void {
  scratchF64[0] = ms;
  values[at] = scratchU8[0]!;
  values[at + 1] = scratchU8[1]!;
  values[at + 2] = scratchU8[2]!;
  values[at + 3] = scratchU8[3]!;
  values[at + 4] = scratchU8[4]!;
  values[at + 5] = scratchU8[5]!;
  values[at + 6] = scratchU8[6]!;
  values[at + 7] = scratchU8[7]!;
}

/** Read the stamp at the start of `value` (no allocation). */
export function readStamp(value: Uint8Array): number {
  scratchU8[0] = value[0]!;
  scratchU8[1] = value[1]!;
  scratchU8[2] = value[2]!;
  scratchU8[3] = value[3]!;
  scratchU8[4] = value[4]!;
  scratchU8[5] = value[5]!;
  scratchU8[6] = value[6]!;
  scratchU8[7] = value[7]!;
  return scratchF64[0]!;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal!.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** `p`, or 'timeout' after `ms` (the timer is cleared either way, so it never holds the process open). */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([p, new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
