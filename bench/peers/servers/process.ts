/**
 * Process plumbing shared by the peer servers: free loopback ports, a temp directory per run,
 * spawning a server as our child with its output in a log file, readiness polling, stopping by
 * PID (SIGTERM, then SIGKILL after a grace period), and CPU time of a process tree read from
 * /proc/<pid>/stat.
 *
 * Invariant: we only ever signal PIDs we spawned ourselves (`ChildProcess.pid`) or that a server
 * we spawned wrote into a pid file inside OUR temp dir, and only after checking /proc/<pid> is
 * still a descendant of, or, the process we started.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A port the kernel just gave us on 127.0.0.1 (closed again: a small race we accept). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** A free port p such that p + offset is free too (RabbitMQ's CLI uses dist port + 10000). */
export async function freePortBelow(max: number): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const p = await freePort();
    if (p <= max) return p;
  }
  // Fall back to scanning a range we can bind.
  for (let p = 20000; p <= max; p += 7) {
    if (await canBind(p)) return p;
  }
  throw new Error(`no free port <= ${max}`);
}

export function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

export function makeTempDir(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), `weir-peer-${prefix}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export interface Spawned {
  child: ChildProcess;
  pid: number;
  logFile: string;
  /** Resolves with the exit code/signal once the child is gone. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  isAlive(): boolean;
}

/**
 * Last-resort cleanup: if this process exits (error, signal handler calling process.exit) while a
 * server we started still runs, SIGKILL it. Only PIDs of our own children are registered.
 */
const exitKills = new Set<() => void>();
let exitHookInstalled = false;

export function killOnExit(fn: () => void): () => void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const f of exitKills) {
        try {
          f();
        } catch {
          /* best effort */
        }
      }
    });
  }
  exitKills.add(fn);
  return () => exitKills.delete(fn);
}

/** Spawns `cmd args` with stdout+stderr appended to `logFile`; the child is NOT detached. */
export function spawnLogged(cmd: string, args: string[], logFile: string, opts: SpawnOptions = {}): Spawned {
  const fd = openSync(logFile, 'a');
  const child = spawn(cmd, args, { ...opts, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  let alive = true;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      alive = false;
      resolve({ code, signal });
    });
    child.once('error', () => {
      alive = false;
      resolve({ code: -1, signal: null });
    });
  });
  if (child.pid === undefined) throw new Error(`spawn ${cmd} failed (see ${logFile})`);
  const pid = child.pid;
  const unregister = killOnExit(() => {
    if (alive) process.kill(pid, 'SIGKILL');
  });
  void exited.then(unregister);
  return { child, pid: child.pid, logFile, exited, isAlive: () => alive };
}

/**
 * SIGTERM `s`, wait up to `graceMs` for exit, then SIGKILL. Returns how it ended. Only `s.pid`
 * (our own child) is signalled.
 */
export async function stopByPid(s: Spawned, graceMs: number): Promise<string> {
  if (!s.isAlive()) return 'already exited';
  try {
    process.kill(s.pid, 'SIGTERM');
  } catch {
    return 'already exited';
  }
  const t = await Promise.race([s.exited.then(() => 'term'), sleep(graceMs).then(() => 'timeout')]);
  if (t === 'term') return `SIGTERM pid ${s.pid}`;
  try {
    process.kill(s.pid, 'SIGKILL');
  } catch {
    /* raced with exit */
  }
  await Promise.race([s.exited, sleep(5000)]);
  return `SIGKILL pid ${s.pid} (no exit ${graceMs} ms after SIGTERM)`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolves once a TCP connect to 127.0.0.1:port succeeds, or throws after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs: number, s?: Spawned): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (s && !s.isAlive()) throw new Error(`server exited before listening on ${port} (log: ${s.logFile})`);
    const ok = await new Promise<boolean>((resolve) => {
      const sock = netConnect({ host: '127.0.0.1', port });
      sock.once('connect', () => {
        sock.destroy();
        resolve(true);
      });
      sock.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listening on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** Retries `fn` until it resolves or `timeoutMs` passes (then rethrows the last error). */
export async function retryUntil<T>(fn: () => Promise<T>, timeoutMs: number, s?: Spawned): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    if (s && !s.isAlive()) throw new Error(`server exited during startup (log: ${s.logFile})`);
    try {
      return await fn();
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw last instanceof Error ? last : new Error(String(last));
    await sleep(200);
  }
}

const CLK_TCK = 100; // getconf CLK_TCK on Linux x64/arm64

interface StatLine {
  pid: number;
  ppid: number;
  utime: number;
  stime: number;
  cutime: number;
  cstime: number;
}

function readStat(pid: number): StatLine | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces and parentheses: fields start after the LAST ')'.
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // rest[0] = state (field 3), so field n is rest[n - 3].
    return {
      pid,
      ppid: Number(rest[1]),
      utime: Number(rest[11]),
      stime: Number(rest[12]),
      cutime: Number(rest[13]),
      cstime: Number(rest[14]),
    };
  } catch {
    return null;
  }
}

/**
 * CPU seconds (user + system) used so far by `rootPid` and every live descendant, plus the time of
 * descendants already reaped (cutime/cstime). RabbitMQ is a shell → beam.smp → erl_child_setup
 * tree, so summing the tree matters there; nats-server and redis-server are single processes.
 */
export function treeCpuSeconds(rootPid: number): number {
  const stats: StatLine[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const st = readStat(Number(e));
    if (st) stats.push(st);
  }
  const children = new Map<number, StatLine[]>();
  for (const st of stats) {
    const arr = children.get(st.ppid);
    if (arr) arr.push(st);
    else children.set(st.ppid, [st]);
  }
  const root = stats.find((s) => s.pid === rootPid);
  if (!root) return 0;
  let ticks = 0;
  const stack = [root];
  while (stack.length > 0) {
    const st = stack.pop()!;
    ticks += st.utime + st.stime + st.cutime + st.cstime;
    for (const c of children.get(st.pid) ?? []) stack.push(c);
  }
  return ticks / CLK_TCK;
}

/** The last `n` lines of a log file, for error messages. */
export function logTail(file: string, n = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
  } catch {
    return '(no log)';
  }
}
