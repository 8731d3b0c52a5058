/**
 * A private RabbitMQ node: its own node name, ports, Mnesia/log dirs, config file, Erlang cookie
 * (HOME) and its own epmd, all under a temp dir; every listener on 127.0.0.1; no plugins (so no
 * management UI).
 *
 * Why its own epmd: a node registers with the epmd at ERL_EPMD_PORT (4369 by default) and starts
 * one in the background (`epmd -daemon`, re-parented to init) when none is running. That one we
 * could not stop by a PID we own, and the machine's global epmd is not ours to stop. So we start
 * `epmd -port P -address 127.0.0.1` in the foreground as our child and point the node at it with
 * ERL_EPMD_PORT=P.
 *
 * The process tree: our child is the `rabbitmq-server` shell script (Debian's
 * /usr/lib/rabbitmq/bin/rabbitmq-server, run directly as root rather than through the /usr/sbin
 * wrapper that switches to the rabbitmq user), which runs beam.smp in the background and turns
 * SIGTERM into a graceful `stop` of the node. If it is still alive after the grace period we
 * SIGKILL the shell and every descendant we recorded (beam.smp, erl_child_setup, inet_gethost).
 *
 * Durability (RabbitMQ's "Publisher Confirms" and "Quorum Queues" guides), independent of weir's
 * --fsync; both queues are durable and messages persistent (delivery_mode 2):
 *   quorum queue:  the Raft WAL is fdatasync'd (ra wal_sync_method default `datasync`, batched
 *                  across writers) before the confirm: the same contract as weir `always`.
 *   classic queue: persistent messages are confirmed once the message store has fsync'd them
 *                  (batched, every few hundred ms or when idle), or once every consumer has acked
 *                  them, whichever comes first: a consumer that keeps up can get a message confirmed
 *                  that was never written. Closer to weir `always` than to `never` on the publish
 *                  side, but weaker when consumers keep up.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { peerVersion, which } from '../install.js';
import {
  canBind, freePort, killOnExit, logTail, makeTempDir, removeDir, retryUntil, sleep, spawnLogged, stopByPid, treeCpuSeconds,
  waitForPort,
} from './process.js';
import type { Durability, FsyncSpec, PeerServer } from './types.js';

export type RabbitQueueKind = 'quorum' | 'classic';

export function rabbitDurability(kind: RabbitQueueKind, fsync: FsyncSpec): Durability {
  if (kind === 'quorum') {
    return {
      short: 'fdatasync before confirm',
      setting: 'quorum queue (1 node), Raft WAL fdatasync before confirm',
      exact: fsync === 'always',
      ...(fsync === 'always' ? {} : { note: `stronger than weir --fsync ${fsync}: fsync before every confirm (not configurable per queue)` }),
    };
  }
  return {
    short: 'batched fsync before confirm*',
    setting: 'classic durable queue, persistent msgs: message-store fsync in batches before confirm, or confirm once consumers acked it (whichever first)',
    exact: false,
    note:
      fsync === 'always'
        ? 'like weir always for messages that reach the store; a message acked by the consumer before the store write is confirmed without fsync'
        : `stronger than weir --fsync ${fsync} for messages that reach the store (batched fsync before confirm)`,
  };
}

/** Identity of a process: pid plus its start time (field 22 of /proc/<pid>/stat), so a recycled pid is never mistaken for it. */
interface ProcId {
  pid: number;
  start: string;
}

function statFields(pid: number): string[] | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' '); // [0] is field 3 (state)
  } catch {
    return null;
  }
}

/** All live descendants of `pid` (read from /proc; signals nothing). */
function descendants(pid: number): ProcId[] {
  const ppid = new Map<number, { ppid: number; start: string }>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const f = statFields(Number(e));
    if (f) ppid.set(Number(e), { ppid: Number(f[1]), start: f[19]! });
  }
  const out: ProcId[] = [];
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop()!;
    for (const [c, v] of ppid) {
      if (v.ppid === p) {
        out.push({ pid: c, start: v.start });
        stack.push(c);
      }
    }
  }
  return out;
}

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

function stillSame(p: ProcId): boolean {
  const f = statFields(p.pid);
  return f !== null && f[19] === p.start && f[0] !== 'Z';
}

export interface RabbitServer extends PeerServer {
  durability(kind: RabbitQueueKind): Durability;
  nodeName: string;
}

export async function startRabbit(fsync: FsyncSpec): Promise<RabbitServer> {
  const script = ['/usr/lib/rabbitmq/bin/rabbitmq-server'].find((p) => {
    try {
      readFileSync(p);
      return true;
    } catch {
      return false;
    }
  });
  const epmdBin = which('epmd');
  if (!script) throw new Error('/usr/lib/rabbitmq/bin/rabbitmq-server not found (package rabbitmq-server)');
  if (!epmdBin) throw new Error('epmd not found (package erlang-base)');
  const dir = makeTempDir('rabbitmq');
  for (const d of ['mnesia', 'log', 'home']) mkdirSync(path.join(dir, d));
  const amqpPort = await freePort();
  const epmdPort = await freePort();
  // The CLI tools pick their own distribution port from DIST_PORT + 10000 … + 10010; keep that valid.
  let distPort = 0;
  for (let i = 0; i < 50 && distPort === 0; i++) {
    const p = await freePort();
    if (p + 10_010 <= 65_535 && (await canBind(p + 10_000))) distPort = p;
  }
  if (distPort === 0) distPort = await freePort();
  const nodeName = `weirbench${process.pid}@localhost`;
  const conf = path.join(dir, 'rabbitmq.conf');
  writeFileSync(
    conf,
    [
      `listeners.tcp.default = 127.0.0.1:${amqpPort}`,
      // The benchmark connects as guest from 127.0.0.1 only (guest is loopback-only by default anyway).
      `loopback_users.guest = true`,
      // A 15 s run at 100k msg/s of 100 B stays far below these; keep the node from blocking publishers.
      `vm_memory_high_watermark.relative = 0.6`,
      `disk_free_limit.absolute = 1GB`,
      `log.console = true`,
      `log.console.level = warning`,
      `log.file.level = info`,
    ].join('\n') + '\n',
  );
  const enabledPlugins = path.join(dir, 'enabled_plugins');
  writeFileSync(enabledPlugins, '[].\n');
  const epmdLog = path.join(dir, 'epmd.log');
  const epmd = spawnLogged(epmdBin, ['-port', String(epmdPort), '-address', '127.0.0.1'], epmdLog);
  try {
    await waitForPort(epmdPort, 10_000, epmd);
  } catch (e) {
    await stopByPid(epmd, 2000);
    removeDir(dir);
    throw new Error(`epmd did not start: ${(e as Error).message}\n${logTail(epmdLog)}`);
  }
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: path.join(dir, 'home'), // .erlang.cookie goes here, not in /root
    ERL_EPMD_PORT: String(epmdPort),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    RABBITMQ_NODENAME: nodeName,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(amqpPort),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_MNESIA_BASE: path.join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: path.join(dir, 'log'),
    RABBITMQ_CONFIG_FILE: conf,
    RABBITMQ_ENABLED_PLUGINS_FILE: enabledPlugins,
    RABBITMQ_CONF_ENV_FILE: path.join(dir, 'rabbitmq-env.conf'), // empty: ignore /etc/rabbitmq/rabbitmq-env.conf
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
  };
  writeFileSync(path.join(dir, 'rabbitmq-env.conf'), '');
  const logFile = path.join(dir, 'rabbitmq.log');
  // If we die before stop(): SIGKILL beam & co. too, not only the shell (which would orphan them).
  // Registered before the shell's own exit hook (spawnLogged) so it runs first, while the tree is intact.
  let shellPid = 0;
  let known: ProcId[] = [];
  const unregisterKill = killOnExit(() => {
    const all = [...known, ...(shellPid > 0 ? descendants(shellPid) : [])];
    for (const p of all.filter(stillSame)) process.kill(p.pid, 'SIGKILL');
  });
  const s = spawnLogged(script, [], logFile, { env });
  shellPid = s.pid;
  const stopAll = async (): Promise<string> => {
    const now = descendants(s.pid);
    known = [...known.filter((k) => !now.some((n) => n.pid === k.pid)), ...now];
    let how = await stopByPid(s, 30_000);
    // The shell waits for beam to exit on SIGTERM; anything of ours left (same pid AND start time) we kill.
    const left = known.filter(stillSame).map((p) => p.pid);
    for (const p of left) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    if (left.length > 0) how += `; SIGKILL leftover descendants ${left.join(',')}`;
    await sleep(100);
    how += `; epmd: ${await stopByPid(epmd, 5000)}`;
    return how;
  };
  try {
    await retryUntil(() => waitForPort(amqpPort, 1000, s), 120_000, s);
    // Listening comes late in boot, but confirm with the CLI when we can (it needs the cookie in HOME).
    try {
      execFileSync('rabbitmqctl', ['-n', nodeName, '--timeout', '60', 'await_startup'], {
        env,
        stdio: 'ignore',
        timeout: 70_000,
      });
    } catch {
      /* the AMQP port answering is enough; drivers retry their connect */
    }
    known = descendants(s.pid);
  } catch (e) {
    unregisterKill();
    await stopAll();
    const tail = logTail(logFile) + '\n' + logTail(path.join(dir, 'log', `${nodeName}.log`));
    throw new Error(`rabbitmq-server did not start: ${(e as Error).message}\n${tail}`);
  }
  return {
    name: 'rabbitmq',
    version: peerVersion('rabbitmq'),
    host: '127.0.0.1',
    port: amqpPort,
    pid: s.pid,
    dataDir: dir,
    logFile,
    nodeName,
    durability: (kind) => rabbitDurability(kind, fsync),
    cpuPids: () => {
      const beam = descendants(s.pid).find((d) => comm(d.pid) === 'beam.smp');
      return beam ? [beam.pid] : [s.pid];
    },
    cpuSeconds: () => treeCpuSeconds(s.pid),
    async stop(keep = false) {
      unregisterKill();
      const how = await stopAll();
      if (!keep) removeDir(dir);
      return how;
    },
  };
}
