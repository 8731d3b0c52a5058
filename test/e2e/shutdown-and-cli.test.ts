import { spawn, execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { tmpDir } from '../support/tmp-dir.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const weir = path.join(root, 'bin/weir.js');
const run = promisify(execFile);
let child: ChildProcess | undefined;
const tmp = tmpDir('weir-cli-');
afterEach(() => {
  child?.kill('SIGKILL');
  tmp.cleanup();
});

function start(args: string[]): Promise<{ proc: ChildProcess; url: string; output: () => string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [weir, 'start', '--port', '0', '--data', tmp.dir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (ws:\/\/[^/\s]+)/.exec(out);
      if (m) resolve({ proc, url: m[1]!, output: () => out });
    });
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    proc.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
  });
}

function cli(args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = execFile(process.execPath, [weir, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
    if (input !== undefined) p.stdin!.end(input);
  });
}

it('serves a person at a terminal (topics, produce, consume) and shuts down cleanly on SIGTERM', async () => {
  const b = await start(['--fsync', 'always', '--partitions', '3']);
  child = b.proc;
  expect(await cli(['topics', 'create', 'cli.orders', '--partitions', '2', '--url', b.url])).toMatch(/created cli\.orders 2/);
  expect(await cli(['topics', 'list', '--url', b.url])).toMatch(/cli\.orders 2/);
  const produced = await cli(['produce', 'cli.orders', '--url', b.url, '--key-sep', ':'], 'a:one\nb:two\na:three\n');
  expect(produced).toMatch(/acked 3 messages/);
  const consumed = await cli(['consume', 'cli.orders', '--url', b.url, '--from', 'earliest', '--count', '3', '--group', 'people']);
  const lines = consumed.trim().split('\n').map((l) => l.split(' '));
  expect(lines.length).toBe(3);
  const byKey = (k: string) => lines.filter((l) => l[2] === k).map((l) => l[3]);
  expect(byKey('a')).toEqual(['one', 'three']); // order per key
  expect(byKey('b')).toEqual(['two']);
  const described = await cli(['topics', 'describe', 'cli.orders', '--url', b.url]);
  expect(described).toMatch(/partitions 2/);

  const exited = new Promise<number | null>((r) => b.proc.once('exit', (code) => r(code)));
  b.proc.kill('SIGTERM');
  expect(await exited).toBe(0);
  child = undefined;
  expect(b.output()).toMatch(/SIGTERM, shutting down/);
  // Every partition closed its log cleanly (flushed, fsynced, marked).
  for (const p of ['0', '1']) {
    expect(fs.existsSync(path.join(tmp.dir, 'topics', 'cli.orders', p, '.weir-clean-shutdown'))).toBe(true);
  }
});

it('is importable by its package name', async () => {
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', "import { connect } from 'weir'; console.log(typeof connect);"], { cwd: root });
  expect(stdout.trim()).toBe('function');
});

it('refuses to start, saying why, when uWebSockets.js falls back to its JavaScript server', async () => {
  const result = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const proc = spawn(process.execPath, [weir, 'start', '--port', '0', '--data', tmp.dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, UWS_USE_FALLBACK: '1' },
    });
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    proc.once('exit', (code) => resolve({ code, out }));
  });
  expect(result.code).not.toBe(0);
  expect(result.out).toMatch(/refuses to run/);
  expect(result.out).not.toMatch(/listening on/);
});
