/**
 * The weir broker under test, as a child process (so its CPU and memory are measured alone):
 *
 *   node [nodeArgs] bin/weir.js start --port 0 --data <tmp> --fsync <mode>
 *
 * The URL is read from its stdout line `weir listening on ws://HOST:PORT/` (or wss://). stop() sends SIGTERM
 * (graceful: drain, flush, close; needed for --cpu-prof to write its profiles), then SIGKILL after
 * a grace period, and removes the data directory. An exit hook SIGKILLs any broker still running
 * and removes its directory if this process exits without stopping it (error, signal).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface WeirBrokerOptions {
  fsync: string;
  /** Run the broker from this tree (a snapshotWeirBuild() dir) instead of the project's dist/. */
  root?: string;
  /** Extra node flags for the broker, e.g. ['--cpu-prof', '--cpu-prof-dir=/tmp/prof']. */
  nodeArgs?: string[];
  /** Extra `weir start` flags. */
  args?: string[];
  /** Parent of the temporary data directory (default: the OS temp dir). */
  tmpRoot?: string;
  startTimeoutMs?: number;
  /** Broker stdout/stderr lines (default: stderr lines go to this process's stderr). */
  onOutput?: (line: string, stream: 'stdout' | 'stderr') => void;
}

export interface WeirBrokerProcess {
  readonly pid: number;
  readonly url: string;
  readonly dataDir: string;
  /** Called if the broker exits before stop() was called (crash, a signal from someone else). */
  onUnexpectedExit(listener: (status: { code: number | null; signal: NodeJS.Signals | null }) => void): void;
  /** Resolves with the exit status once the process is gone and its data directory removed. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const live = new Map<ChildProcess, string>();
const snapshots = new Set<string>();
let hookInstalled = false;

function installExitHook(): void {
  if (hookInstalled) return;
  hookInstalled = true;
  process.on('exit', () => {
    for (const [child, dir] of live) {
      try {
        if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      fs.rmSync(dir, { recursive: true, force: true });
    }
    for (const dir of snapshots) fs.rmSync(dir, { recursive: true, force: true });
  });
}

export interface WeirBuildSnapshot {
  /** A tree with bin/, dist/src/, dist/bench/e2e/, package.json, build/Release/weir_io.node (when built) and a node_modules symlink. */
  readonly dir: string;
  /** weirBuildHash() of the snapshot. */
  readonly hash: string;
  /** The weir driver module inside the snapshot (its SDK is the snapshot's). */
  readonly driverModule: string;
  remove(): void;
}

/**
 * Copy the compiled broker and SDK to a temporary tree, so a series of runs measures ONE build even
 * if dist/ is rebuilt meanwhile (by `npm test`, another benchmark, an editor). node_modules is a
 * symlink to the project's; the snapshot is removed by remove() or when this process exits.
 */
export function snapshotWeirBuild(root = projectRoot()): WeirBuildSnapshot {
  installExitHook();
  if (!fs.existsSync(path.join(root, 'dist', 'src', 'cli', 'main.js'))) throw new Error('weir is not built: run `npm run build` first');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weir-build-'));
  snapshots.add(dir);
  try {
    fs.cpSync(path.join(root, 'dist', 'src'), path.join(dir, 'dist', 'src'), { recursive: true });
    fs.cpSync(path.join(root, 'dist', 'bench', 'e2e'), path.join(dir, 'dist', 'bench', 'e2e'), { recursive: true });
    fs.cpSync(path.join(root, 'bin'), path.join(dir, 'bin'), { recursive: true });
    fs.copyFileSync(path.join(root, 'package.json'), path.join(dir, 'package.json'));
    // The log's native helper (src/common/native-io.ts looks for it beside package.json).
    const addon = path.join(root, 'build', 'Release', 'weir_io.node');
    if (fs.existsSync(addon)) {
      fs.mkdirSync(path.join(dir, 'build', 'Release'), { recursive: true });
      fs.copyFileSync(addon, path.join(dir, 'build', 'Release', 'weir_io.node'));
    }
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    snapshots.delete(dir);
    throw err;
  }
  return {
    dir,
    hash: weirBuildHash(dir),
    driverModule: pathToFileURL(path.join(dir, 'dist', 'bench', 'e2e', 'drivers', 'weir.js')).href,
    remove: () => {
      fs.rmSync(dir, { recursive: true, force: true });
      snapshots.delete(dir);
    },
  };
}

/** The project root: the nearest parent directory of this module with weir's package.json. */
export function projectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        if ((JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === 'weir') return dir;
      } catch {
        // keep looking
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot find the weir project root (package.json with name "weir")');
    dir = parent;
  }
}

/**
 * A short hash of the compiled broker (every .js file under dist/src): the code a broker child
 * actually runs. Compare it across runs: a rebuild in the middle of a series mixes two versions.
 */
export function weirBuildHash(root: string = projectRoot()): string {
  const h = createHash('sha256');
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.js')) h.update(e.name).update(fs.readFileSync(p));
    }
  };
  walk(path.join(root, 'dist', 'src'));
  return h.digest('hex').slice(0, 12);
}

export async function startWeirBroker(options: WeirBrokerOptions): Promise<WeirBrokerProcess> {
  installExitHook();
  const root = options.root ?? projectRoot();
  const bin = path.join(root, 'bin', 'weir.js');
  if (!fs.existsSync(path.join(root, 'dist', 'src', 'cli', 'main.js'))) throw new Error('weir is not built: run `npm run build` first');
  const dataDir = fs.mkdtempSync(path.join(options.tmpRoot ?? os.tmpdir(), 'weir-e2e-'));
  const argv = [...(options.nodeArgs ?? []), bin, 'start', '--port', '0', '--data', dataDir, '--fsync', options.fsync, ...(options.args ?? [])];
  const child = spawn(process.execPath, argv, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  live.set(child, dataDir);
  // Default: the broker's stderr, and stdout after the listening line (it prints little: shutdown
  // notices such as "weir: SIGTERM, shutting down" tell who stopped it).
  let listening = false;
  const output = options.onOutput ?? ((line, stream) => (stream === 'stderr' || listening) && process.stderr.write(`[broker ${child.pid}] ${line}\n`));
  const tail: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const cleanup = async (): Promise<{ code: number | null; signal: NodeJS.Signals | null }> => {
    const status = await exited;
    live.delete(child);
    fs.rmSync(dataDir, { recursive: true, force: true });
    return status;
  };
  let settled = (): void => {};
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`broker did not report its URL within ${options.startTimeoutMs ?? 60_000} ms`)), options.startTimeoutMs ?? 60_000);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      void cleanup().then(() => reject(new Error(`${err.message}\n${tail.join('\n')}`)));
    };
    lines(child.stdout!, (line) => {
      tail.push(line);
      if (tail.length > 50) tail.shift();
      output(line, 'stdout');
      const m = /weir listening on (wss?:\/\/\S+?)\/?(?:\s|$)/.exec(line);
      if (m) {
        listening = true;
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    lines(child.stderr!, (line) => {
      tail.push(line);
      if (tail.length > 50) tail.shift();
      output(line, 'stderr');
    });
    const onError = (err: Error): void => fail(err);
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => fail(new Error(`broker exited before listening (code ${code}, signal ${signal})`));
    child.once('error', onError);
    child.once('exit', onExit);
    settled = () => {
      child.off('error', onError);
      child.off('exit', onExit);
    };
  });
  settled();
  child.on('error', () => {}); // e.g. a failed kill(): stop() still waits for 'exit'
  let stopping: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | null = null;
  const unexpected: Array<(status: { code: number | null; signal: NodeJS.Signals | null }) => void> = [];
  void exited.then((status) => {
    if (stopping === null) for (const l of unexpected) l(status);
  });
  return {
    pid: child.pid!,
    url,
    dataDir,
    onUnexpectedExit: (listener) => {
      unexpected.push(listener);
    },
    stop: (graceMs = 20_000) => {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const t = setTimeout(() => {
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
          }, graceMs);
          await exited;
          clearTimeout(t);
        }
        return cleanup();
      })();
      return stopping;
    },
  };
}

function lines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  });
  stream.on('end', () => {
    if (buf) onLine(buf);
  });
}
