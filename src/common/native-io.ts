/**
 * weir's native helper (native/weir_io.c, built by `npm install` through scripts/build-native.mjs):
 * page-cache drop-behind for the log, a short scheduler slice for latency-critical threads, a
 * thread's timer slack (for the load generator's sub-millisecond pacing), the records' CRC32C
 * with the CPU's crc32 instruction, a bare pwrite for the log's group commits, flock for the data
 * directory's lock, and the open-file limit.
 * Optional: when it is missing the broker runs without the first two, seals records with the
 * JavaScript CRC32C, locks its data directory with a pid file (src/common/data-dir.ts), and
 * `nativeIoStatus` says why (the broker prints it at start).
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface WeirIoAddon {
  /** fdatasync(fd) if `sync`, then POSIX_FADV_DONTNEED over [offset, offset + length), on libuv's pool. */
  dropCache(fd: number, offset: number, length: number, sync: boolean): Promise<void>;
  /** EEVDF slice for the calling thread (sched_setattr); returns what the kernel reports, 0 if it has none. */
  setThreadSlice(ns: number): number;
  /** Timer slack of the calling thread (prctl PR_SET_TIMERSLACK); returns what the kernel reports. */
  setTimerSlack(ns: number): number;
  /** Write the CRC32C of every whole record in buf[start, end) (record.ts sealRecords); returns how many. */
  sealRecords(buf: Uint8Array, start: number, end: number): number;
  /** How many records from `start` check out: framing, magic, offset firstOffset + i, CRC32C (record.ts verifyRecords). */
  verifyRecords(buf: Uint8Array, start: number, end: number, firstOffset: number): number;
  /** pwrite(2) of buf[from, from + length) at `position`; bytes written. Throws like fs.writeSync (errno name as `code`). */
  pwrite(fd: number, buf: Uint8Array, from: number, length: number, position: number): number;
  /** flock(fd, LOCK_EX | LOCK_NB): true when taken, false when another open file holds it; throws on other errors. */
  lockFile(fd: number): boolean;
  /** Raise the soft RLIMIT_NOFILE to the hard one; the soft limit before and after, the hard one (-1 = unlimited). */
  raiseFileLimit(): FileLimit;
}

export interface FileLimit {
  before: number;
  soft: number;
  hard: number;
}

/** Every call a current build has: one missing means a build from older sources. */
const CALLS = ['dropCache', 'setThreadSlice', 'setTimerSlack', 'sealRecords', 'verifyRecords', 'pwrite', 'lockFile', 'raiseFileLimit'] as const satisfies ReadonlyArray<keyof WeirIoAddon>;

const ADDON = path.join('build', 'Release', 'weir_io.node');

/** The project root: the nearest directory above this module with a package.json (src/ or dist/src/). */
function projectRoot(): string | null {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

function load(): { addon: WeirIoAddon | null; status: string } {
  const root = projectRoot();
  const file = root === null ? null : path.join(root, ADDON);
  if (file === null || !fs.existsSync(file)) {
    return { addon: null, status: `not built (${file ?? ADDON} missing: run \`node scripts/build-native.mjs\`)` };
  }
  try {
    const addon = createRequire(import.meta.url)(file) as WeirIoAddon;
    const missing = CALLS.find((name) => typeof addon[name] !== 'function');
    if (missing !== undefined) {
      return { addon: null, status: `out of date (${file} lacks ${missing}: run \`node scripts/build-native.mjs\`)` };
    }
    return { addon, status: 'loaded' };
  } catch (err) {
    return { addon: null, status: `${file} did not load: ${(err as Error).message}` };
  }
}

const loaded = load();

/** The addon, or null when it is not built or did not load. */
export const nativeIo: WeirIoAddon | null = loaded.addon;
/** 'loaded', or why not. */
export const nativeIoStatus: string = loaded.status;

/**
 * Ask for a `us` µs scheduler slice (Linux ≥ 6.12's EEVDF custom slice) for the calling thread, so
 * that when it wakes it preempts a thread with a longer slice instead of waiting up to the
 * default's 0.7-3 ms (it changes wake-up latency, not CPU share). Returns null when applied, else
 * why not (no helper, an older kernel, an error); never throws.
 */
export function applyThreadSlice(us: number): string | null {
  return withHelper((io) => (io.setThreadSlice(Math.round(us * 1000)) > 0 ? null : 'this kernel has no per-thread slices (Linux 6.12 or later)'));
}

/**
 * Let the kernel fire the calling thread's timed sleeps at most `ns` late (its timer slack, 50 µs
 * by default, which it uses to batch wake-ups). Returns null when applied, else why not; never throws.
 */
export function applyTimerSlack(ns: number): string | null {
  return withHelper((io) => {
    const got = io.setTimerSlack(Math.round(ns));
    return got === Math.round(ns) ? null : `the kernel kept a timer slack of ${got} ns`;
  });
}

/**
 * Raise the process's soft open-file limit to its hard one (a broker holds a socket per client and
 * a few files per partition). Node's own start-up already does this for the `node` binary
 * (PlatformInit), so this mostly reports; an embedder may have turned that off. Returns the limits,
 * or why not; never throws.
 */
export function raiseOpenFileLimit(): FileLimit | string {
  if (nativeIo === null) return `the native helper is ${nativeIoStatus}`;
  try {
    return nativeIo.raiseFileLimit();
  } catch (err) {
    return (err as Error).message;
  }
}

/** `call` with the helper: its answer (null = applied), or why not when the helper is missing or the call throws. */
function withHelper(call: (io: WeirIoAddon) => string | null): string | null {
  if (nativeIo === null) return `the native helper is ${nativeIoStatus}`;
  try {
    return call(nativeIo);
  } catch (err) {
    return (err as Error).message;
  }
}
