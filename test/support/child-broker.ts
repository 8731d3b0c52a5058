import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * A broker as a child process (`bin/weir.js start`, so `npm run build` first), for tests that
 * SIGKILL it. Resolves once it prints its URL (with `output()`: everything it printed so far, stdout
 * and stderr); rejects if it exits first or takes over 30 s.
 */
export function startBrokerProcess(
  dataDir: string,
  options: { port?: number; fsync?: string; env?: Record<string, string>; args?: string[]; openFiles?: number } = {},
): Promise<{ proc: ChildProcess; url: string; output: () => string }> {
  return new Promise((resolve, reject) => {
    const args = [path.join(root, 'bin/weir.js'), 'start', '--port', String(options.port ?? 0), '--data', dataDir, '--fsync', options.fsync ?? 'never', ...(options.args ?? [])];
    const env = { ...process.env, ...options.env };
    // `openFiles`: under `ulimit -n` (soft and hard), so the broker cannot raise it.
    const proc = options.openFiles === undefined
      ? spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env })
      : spawn('sh', ['-c', `ulimit -n ${options.openFiles} && exec "$0" "$@"`, process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`broker did not start: ${out}`)), 30_000);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (wss?:\/\/[^/\s]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, url: m[1]!, output: () => out });
      }
    });
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    proc.once('exit', (code) => reject(new Error(`broker exited early (${code}): ${out}`)));
  });
}

/** Resolves once `proc` has exited, also when it already had (an 'exit' listener added late never fires). */
export function exited(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => proc.once('exit', () => resolve()));
}

/**
 * `bin/weir.js start ARGS` expected to refuse to start: resolves with its exit code and output once
 * it exits. One that starts serving instead (prints its URL) is SIGKILLed and reported with
 * `started: true`; one still running after `hangMs` is SIGKILLed too (`hung: true`), so a broker
 * that hangs or serves fails the test instead of stalling it.
 */
export function runBrokerToExit(
  args: string[],
  options: { spawn?: SpawnOptions; hangMs?: number } = {},
): Promise<{ code: number | null; output: string; started: boolean; hung: boolean }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [path.join(root, 'bin/weir.js'), 'start', ...args], { ...options.spawn, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let started = false;
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      proc.kill('SIGKILL');
    }, options.hangMs ?? 20_000);
    proc.stdout!.on('data', (d: Buffer) => {
      output += d.toString();
      if (!started && /listening on wss?:\/\//.test(output)) {
        started = true;
        proc.kill('SIGKILL');
      }
    });
    proc.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    proc.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output, started, hung });
    });
  });
}

/** Files under `dir` this process has open now (from /proc/self/fd). */
export function openFilesIn(dir: string): number {
  let n = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir + path.sep)) n++;
    } catch {
      // the listing's own fd, closed meanwhile
    }
  }
  return n;
}
