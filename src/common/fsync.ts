/**
 * The broker's fsync policy, one type for the log, every side journal and the configuration:
 * `never` (writes reach the OS; a crash of the machine may lose the last ones), `interval:MS` (an
 * fdatasync at least every MS while something is unsynced), `always` (fdatasync before a write is
 * acknowledged).
 */
import { WeirError } from './errors.js';
import { WeirCode } from '../protocol/error-codes.js';

export type FsyncPolicy = { mode: 'never' } | { mode: 'always' } | { mode: 'interval'; intervalMs: number };

/** `--fsync never|always|interval:MS` (or a policy already parsed); BAD_CONFIG otherwise. */
export function parseFsync(v: FsyncPolicy | string | undefined): FsyncPolicy {
  if (v === undefined || v === 'never') return { mode: 'never' };
  if (typeof v !== 'string') return v;
  if (v === 'always') return { mode: 'always' };
  const m = /^interval:(\d+)$/.exec(v);
  if (m) return { mode: 'interval', intervalMs: Math.max(1, Number(m[1])) };
  throw new WeirError(WeirCode.BAD_CONFIG, `--fsync must be never, always or interval:MS (got ${JSON.stringify(v)})`);
}

/** The policy as `--fsync` spells it. */
export function fsyncLabel(f: FsyncPolicy): string {
  return f.mode === 'interval' ? `interval:${f.intervalMs}` : f.mode;
}
