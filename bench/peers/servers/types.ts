/**
 * What the runner needs from a running peer server, whichever it is.
 */
import type { PeerName } from '../install.js';

/** weir's fsync policy in its CLI spelling: `never`, `always` or `interval:MS`. */
export type FsyncSpec = 'never' | 'always' | `interval:${number}`;

export function parseFsyncSpec(s: string): FsyncSpec {
  if (s === 'never' || s === 'always') return s;
  const m = /^interval:(\d+)$/.exec(s);
  if (m) return `interval:${Number(m[1])}`;
  throw new Error(`--fsync must be never, always or interval:MS (got ${JSON.stringify(s)})`);
}

export function intervalMs(f: FsyncSpec): number | null {
  const m = /^interval:(\d+)$/.exec(f);
  return m ? Number(m[1]) : null;
}

/**
 * The durability a peer was configured with, in words, and whether it is the same contract as
 * weir's policy for this run ("like with like"). `exact: false` means the closest the peer offers
 * is weaker or stronger; the report marks such rows and says why in `note`.
 */
export interface Durability {
  /** A few words for the table column. */
  short: string;
  /** The full setting, in words. */
  setting: string;
  exact: boolean;
  note?: string;
}

export interface PeerServer {
  readonly name: PeerName;
  /** Debian package and version, e.g. `redis-server 5:7.0.15-1~deb12u10`. */
  readonly version: string;
  readonly host: '127.0.0.1';
  readonly port: number;
  /** PID whose process tree is the server (CPU accounting). */
  readonly pid: number;
  readonly dataDir: string;
  readonly logFile: string;
  /** The processes that do the server's work, for CPU/RSS sampling (not wrapper shells). */
  cpuPids(): number[];
  /** CPU seconds (user+sys) used by the server's process tree so far. */
  cpuSeconds(): number;
  /** SIGTERM, wait, SIGKILL; removes the temp dir unless `keep`. Returns what happened. */
  stop(keep?: boolean): Promise<string>;
}
