/**
 * A private redis-server: append-only file on, RDB snapshots off, data in a temp dir, loopback
 * only, free port, our child process.
 *
 * Durability mapping (Redis persistence docs, `appendfsync`):
 *   weir never       ≈ appendfsync no        (write() to the AOF before replying, the kernel flushes)
 *   weir interval:MS ≈ appendfsync everysec  (the only interval Redis has: 1 s, whatever MS is)
 *   weir always      ≈ appendfsync always    (fdatasync of the AOF before replies of that event-loop
 *                                             iteration go out: group commit, like weir's)
 */
import path from 'node:path';
import { peerVersion, which } from '../install.js';
import {
  freePort, logTail, makeTempDir, removeDir, retryUntil, spawnLogged, stopByPid, treeCpuSeconds, waitForPort,
} from './process.js';
import { intervalMs, type Durability, type FsyncSpec, type PeerServer } from './types.js';
import { spawnSync } from 'node:child_process';

export function redisAppendfsync(fsync: FsyncSpec): 'no' | 'everysec' | 'always' {
  if (fsync === 'always') return 'always';
  if (fsync === 'never') return 'no';
  return 'everysec';
}

export function redisDurability(fsync: FsyncSpec): Durability {
  const a = redisAppendfsync(fsync);
  const ms = intervalMs(fsync);
  if (ms !== null && ms !== 1000) {
    return {
      short: `appendfsync ${a}`,
      setting: `AOF, appendfsync ${a}`,
      exact: false,
      note: `Redis only offers a 1 s fsync interval; weir runs interval:${ms}`,
    };
  }
  return { short: `appendfsync ${a}`, setting: `AOF, appendfsync ${a}`, exact: true };
}

export async function startRedis(fsync: FsyncSpec): Promise<PeerServer & { durability: Durability }> {
  const bin = which('redis-server');
  if (!bin) throw new Error('redis-server not found on PATH');
  const dir = makeTempDir('redis');
  const port = await freePort();
  const logFile = path.join(dir, 'redis.log');
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--protected-mode', 'yes',
    '--dir', dir,
    '--daemonize', 'no',
    '--appendonly', 'yes',
    '--appendfsync', redisAppendfsync(fsync),
    '--save', '',
    '--unixsocket', '',
    // A benchmark run writes a few GB: no background AOF rewrite competing for the 2 cores.
    '--auto-aof-rewrite-percentage', '0',
    '--maxmemory', '0',
    '--logfile', '',
  ];
  const s = spawnLogged(bin, args, logFile);
  try {
    await waitForPort(port, 15_000, s);
    // Listening precedes loading the AOF: wait for PING to answer PONG (not -LOADING).
    await retryUntil(async () => {
      const r = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'PING'], { encoding: 'utf8' });
      if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') return; // no redis-cli: port is enough
      if (!r.stdout.includes('PONG')) throw new Error(`redis PING: ${r.stdout}${r.stderr}`);
    }, 15_000, s);
  } catch (e) {
    await stopByPid(s, 2000);
    throw new Error(`redis-server did not start: ${(e as Error).message}\n${logTail(logFile)}`);
  }
  return {
    name: 'redis',
    version: peerVersion('redis'),
    host: '127.0.0.1',
    port,
    pid: s.pid,
    dataDir: dir,
    logFile,
    durability: redisDurability(fsync),
    cpuPids: () => [s.pid],
    cpuSeconds: () => treeCpuSeconds(s.pid),
    async stop(keep = false) {
      const how = await stopByPid(s, 10_000);
      if (!keep) removeDir(dir);
      return how;
    },
  };
}
