/**
 * Installs the peer brokers from Debian's own packages, only when missing, and makes sure the
 * distribution's services of those packages are not left running (the benchmark starts its own
 * private instances, see `servers/`). On this image /usr/sbin/policy-rc.d (exit 101) already keeps
 * maintainer scripts from starting services; the checks below are for machines without it.
 *
 * Why the care: `rabbitmq-server`'s maintainer script starts a system service (and with it a global
 * `epmd` on 4369) when the init policy allows it, and `redis-server` / `nats-server` ship services
 * too. A benchmark must not compete with a stray broker for the 2 cores, and must never kill a
 * process it did not start: so we only ever stop
 *   - the distro service of these exact packages (its daemon running as the package's system user),
 *     through `service NAME stop`, then SIGTERM to what still runs as that user, and
 *   - an `epmd` that was NOT running before our `apt-get install` and IS running after it (then it
 *     was started by rabbitmq-server's postinst, i.e. by us).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export type PeerName = 'nats' | 'rabbitmq' | 'redis';

/** What each peer needs on the machine: the Debian package and the binaries we exec. */
export const PACKAGES: Record<PeerName, { pkg: string; binaries: string[]; service: string }> = {
  nats: { pkg: 'nats-server', binaries: ['nats-server'], service: 'nats-server' },
  rabbitmq: {
    pkg: 'rabbitmq-server',
    // rabbitmq-server is a shell wrapper around erl; rabbitmqctl is used for readiness and stop.
    binaries: ['rabbitmq-server', 'rabbitmqctl'],
    service: 'rabbitmq-server',
  },
  redis: { pkg: 'redis-server', binaries: ['redis-server'], service: 'redis-server' },
};

export interface InstallResult {
  /** Peers whose binaries are present after this step. */
  ready: PeerName[];
  /** Peers that could not be installed, with the command and its error. */
  failed: { peer: PeerName; command: string; error: string }[];
  /** Human-readable log of what was done (printed by run.ts). */
  log: string[];
}

/** Debian puts daemons in /usr/sbin (rabbitmq-server, redis-server via /usr/bin). */
const EXTRA_PATH = ['/usr/sbin', '/sbin', '/usr/lib/rabbitmq/bin'];

export function which(bin: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${bin}`], {
    encoding: 'utf8',
    env: { ...process.env, PATH: `${process.env['PATH'] ?? ''}:${EXTRA_PATH.join(':')}` },
  });
  const p = r.stdout.trim();
  return r.status === 0 && p !== '' ? p : null;
}

function dpkgInstalled(pkg: string): boolean {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

/** Is the peer's package installed with its binaries on PATH? */
export function havePeer(peer: PeerName): boolean {
  const spec = PACKAGES[peer];
  return dpkgInstalled(spec.pkg) && spec.binaries.every((b) => which(b) !== null);
}

/** PIDs of running processes whose comm (exact, first 15 chars) is `name`. Reads /proc; kills nothing. */
export function pidsByComm(name: string): number[] {
  const out: number[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const comm = readFileSync(`/proc/${e}/comm`, 'utf8').trim();
      if (comm === name.slice(0, 15)) out.push(Number(e));
    } catch {
      /* process exited meanwhile */
    }
  }
  return out;
}

/** The system user each Debian package runs its service as (our own instances run as root). */
const SERVICE_USER: Record<PeerName, { user: string; comms: string[] }> = {
  nats: { user: 'nats', comms: ['nats-server'] },
  redis: { user: 'redis', comms: ['redis-server'] },
  // The rabbitmq service runs beam.smp (and epmd, erl_child_setup) as user rabbitmq.
  rabbitmq: { user: 'rabbitmq', comms: ['beam.smp', 'epmd', 'erl_child_setup'] },
};

function uidOf(user: string): number | null {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[0] === user) return Number(f[2]);
    }
  } catch {
    /* no passwd */
  }
  return null;
}

function processUid(pid: number): number | null {
  try {
    const m = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** PIDs of the distro service of `peer`: its daemon's process name, running as the package's user. */
export function distroServicePids(peer: PeerName): number[] {
  const { user, comms } = SERVICE_USER[peer];
  const uid = uidOf(user);
  if (uid === null) return [];
  return comms.flatMap((c) => pidsByComm(c)).filter((pid) => processUid(pid) === uid);
}

/**
 * Stops the distro services of our packages if they run (e.g. started by a package's postinst on a
 * machine whose init policy allows it). A service is recognised by its daemon running as the
 * package's system user (redis, rabbitmq, nats): our own instances run as root. First the package's
 * own `service NAME stop`; whatever still runs as that user then gets SIGTERM. Returns log lines.
 */
export function stopDistroServices(peers: PeerName[]): string[] {
  const log: string[] = [];
  for (const peer of peers) {
    const pids = distroServicePids(peer);
    if (pids.length === 0) continue;
    const svc = PACKAGES[peer].service;
    log.push(`distro service ${svc} is running (pids ${pids.join(',')} as user ${SERVICE_USER[peer].user}): service ${svc} stop`);
    spawnSync('service', [svc, 'stop'], { stdio: 'ignore', timeout: 60_000 });
    for (const pid of distroServicePids(peer)) {
      log.push(`  still running: SIGTERM pid ${pid} (${svc}, user ${SERVICE_USER[peer].user})`);
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* gone */
      }
    }
  }
  return log;
}

/**
 * Installs the missing peers with one `apt-get update` + one `apt-get install`, then stops any
 * service the install started. Never throws: a peer that cannot be had is reported in `failed`.
 */
export function ensurePeersInstalled(wanted: PeerName[]): InstallResult {
  const log: string[] = [];
  const failed: InstallResult['failed'] = [];
  const missing = wanted.filter((p) => !havePeer(p));
  if (missing.length === 0) {
    log.push(`peers already installed: ${wanted.map((p) => PACKAGES[p].pkg).join(', ')}`);
  } else {
    const pkgs = missing.map((p) => PACKAGES[p].pkg);
    const epmdBefore = new Set(pidsByComm('epmd'));
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const upd = 'apt-get update';
    log.push(`$ ${upd}`);
    const u = spawnSync('apt-get', ['update'], { encoding: 'utf8', env, timeout: 300_000 });
    if (u.status !== 0) log.push(`  apt-get update failed (${u.status}): ${tail(u.stderr)}; trying install anyway`);
    const args = ['install', '-y', '--no-install-recommends', ...pkgs];
    const cmd = `apt-get ${args.join(' ')}`;
    log.push(`$ ${cmd}`);
    const r = spawnSync('apt-get', args, { encoding: 'utf8', env, timeout: 900_000 });
    if (r.status !== 0) {
      // One package failing fails the whole transaction: retry one by one to save the others.
      log.push(`  failed (${r.status}): ${tail(r.stderr)}; retrying package by package`);
      for (const p of missing) {
        const a1 = ['install', '-y', '--no-install-recommends', PACKAGES[p].pkg];
        const r1 = spawnSync('apt-get', a1, { encoding: 'utf8', env, timeout: 900_000 });
        if (r1.status !== 0) failed.push({ peer: p, command: `apt-get ${a1.join(' ')}`, error: tail(r1.stderr || r1.stdout) });
      }
    }
    // rabbitmq-server's postinst may have started the service and a global epmd.
    log.push(...stopDistroServices(missing));
    for (const pid of pidsByComm('epmd')) {
      if (epmdBefore.has(pid)) continue; // not ours: leave it alone
      log.push(`  epmd pid ${pid} appeared during our apt-get install (rabbitmq postinst): SIGTERM`);
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* gone */
      }
    }
  }
  // Services may be running from an earlier session's install on a reused machine.
  log.push(...stopDistroServices(wanted));
  const ready = wanted.filter((p) => havePeer(p));
  for (const p of wanted) {
    if (!ready.includes(p) && !failed.some((f) => f.peer === p)) {
      failed.push({
        peer: p,
        command: `command -v ${PACKAGES[p].binaries.join(' ')}`,
        error: `package ${PACKAGES[p].pkg} ${dpkgInstalled(PACKAGES[p].pkg) ? 'installed but binary not found' : 'not installed'}`,
      });
    }
  }
  return { ready, failed, log };
}

function tail(s: string | null | undefined, lines = 6): string {
  return (s ?? '').trim().split('\n').slice(-lines).join(' | ');
}

/** Version strings for the report. */
export function peerVersion(peer: PeerName): string {
  const pkg = PACKAGES[peer].pkg;
  const r = spawnSync('dpkg-query', ['-W', '-f=${Version}', pkg], { encoding: 'utf8' });
  return r.status === 0 ? `${pkg} ${r.stdout.trim()}` : `${pkg} (unknown)`;
}
