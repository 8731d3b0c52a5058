/**
 * A private nats-server with JetStream file storage, data in a temp dir, loopback only, on a
 * free port, as our child process.
 *
 * Durability: JetStream's file store writes every message to the OS as it is stored (the PubAck
 * follows the write) and fsyncs on a timer. The timer is `jetstream { sync_interval }`, which
 * nats-server gained in 2.10 (`always` = fsync before the PubAck). Debian bookworm ships 2.9.10,
 * which rejects that field (`unknown field "sync_interval"`) and always uses its built-in
 * 2-minute sync. We probe the binary with `nats-server -t -c` and use `sync_interval` only when it
 * is accepted, so the same code does the right thing on a newer server.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { peerVersion, which } from '../install.js';
import {
  freePort, logTail, makeTempDir, removeDir, spawnLogged, stopByPid, treeCpuSeconds, waitForPort,
} from './process.js';
import { intervalMs, type Durability, type FsyncSpec, type PeerServer } from './types.js';

/** Does this nats-server accept `jetstream { sync_interval }`? (2.10+) */
export function natsSupportsSyncInterval(bin: string, dir: string): boolean {
  const conf = path.join(dir, 'probe.conf');
  writeFileSync(conf, `listen: 127.0.0.1:1\njetstream { store_dir: "${path.join(dir, 'probe')}", sync_interval: always }\n`);
  const r = spawnSync(bin, ['-t', '-c', conf], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0;
}

export function natsDurability(fsync: FsyncSpec, syncIntervalSupported: boolean): Durability {
  if (syncIntervalSupported) {
    if (fsync === 'always') return { short: 'sync_interval always', setting: 'file store, sync_interval: always (fsync before PubAck)', exact: true };
    const ms = intervalMs(fsync);
    if (ms !== null) return { short: `sync_interval ${ms}ms`, setting: `file store, sync_interval: ${ms}ms`, exact: true };
    return { short: 'write to OS, fsync 2 min', setting: 'file store, write to OS per msg, default sync_interval 2m', exact: true };
  }
  const base = 'file store, write to OS per msg, fsync every 2 min (2.9 built-in)';
  const short = 'write to OS, fsync 2 min';
  if (fsync === 'never') return { short, setting: base, exact: true };
  return {
    short,
    setting: base,
    exact: false,
    note: `nats-server 2.9 has no sync_interval (2.10+), so it cannot match weir --fsync ${fsync}: weaker`,
  };
}

export async function startNats(fsync: FsyncSpec): Promise<PeerServer & { durability: Durability }> {
  const bin = which('nats-server');
  if (!bin) throw new Error('nats-server not found on PATH');
  const dir = makeTempDir('nats');
  const storeDir = path.join(dir, 'js');
  mkdirSync(storeDir);
  const supported = natsSupportsSyncInterval(bin, dir);
  const durability = natsDurability(fsync, supported);
  const port = await freePort();
  const lines = [
    `listen: 127.0.0.1:${port}`,
    // No HTTP monitoring, no cluster, no leafnodes: one client listener on loopback only.
    `max_payload: 8MB`,
    `jetstream {`,
    `  store_dir: "${storeDir}"`,
    `  max_file_store: 20GB`,
    `  max_memory_store: 1GB`,
  ];
  if (supported) {
    const ms = intervalMs(fsync);
    if (fsync === 'always') lines.push('  sync_interval: always');
    else if (ms !== null) lines.push(`  sync_interval: "${ms}ms"`);
  }
  lines.push('}');
  const conf = path.join(dir, 'nats.conf');
  writeFileSync(conf, lines.join('\n') + '\n');
  const logFile = path.join(dir, 'nats.log');
  const s = spawnLogged(bin, ['-c', conf], logFile);
  try {
    await waitForPort(port, 15_000, s);
  } catch (e) {
    await stopByPid(s, 2000);
    throw new Error(`nats-server did not start: ${(e as Error).message}\n${logTail(logFile)}`);
  }
  return {
    name: 'nats',
    version: peerVersion('nats'),
    host: '127.0.0.1',
    port,
    pid: s.pid,
    dataDir: dir,
    logFile,
    durability,
    cpuPids: () => [s.pid],
    cpuSeconds: () => treeCpuSeconds(s.pid),
    async stop(keep = false) {
      const how = await stopByPid(s, 10_000);
      if (!keep) removeDir(dir);
      return how;
    },
  };
}
