/**
 * What an idle partition costs the broker (issue 21): memory and file descriptors per
 * single-partition topic, with the broker's default options (`actorHost: 'auto'`, so quiet
 * topics' actors live on the gateway's thread).
 *
 *   npm run build && node dist/bench/e2e/idle-partitions.js --topics 1000 [--step 250] [--idle-s 12] [--sample 20]
 *
 * The broker runs in a child process of its own (this script forked with --child, node
 * --expose-gc), so its numbers are its own: RSS (/proc/self/status), V8 heap, external and
 * arrayBuffers (process.memoryUsage() after a full GC), open fds (/proc/self/fd), CPU time, and
 * the broker's own accounting (Broker.partitionResources). This process creates the topics over
 * one SDK connection (20 requests in flight), sampling at every `--step` topics, then lets them
 * sit `--idle-s` seconds (more than the 10 s after which a used partition releases what it
 * allocated) and samples again; `--sample N` then produces to and reads back N of them, samples,
 * waits `--idle-s` again and samples once more. With `--json FILE` the samples are written there too.
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import { fileURLToPath } from 'node:url';
import { Broker } from '../../src/broker.js';
import { connect } from '../../src/client/index.js';

interface Sample {
  label: string;
  topics: number;
  rssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  arrayBuffersBytes: number;
  fds: number;
  /** CPU time (user + system) the broker process used so far. */
  cpuMs: number;
  /** The broker's own accounting of its partitions, when it has one (Broker.partitionResources). */
  resources: unknown;
}

type ToChild = { type: 'sample'; label: string; topics: number } | { type: 'stop' };
type FromChild = { type: 'ready'; url: string } | { type: 'sample'; sample: Sample } | { type: 'stopped'; closeMs: number };

const MiB = 1024 * 1024;
const CREATE_IN_FLIGHT = 20;

if (process.argv.includes('--child')) await child();
else await parent();

/** The broker's process: start a broker with default options and answer sample requests. */
async function child(): Promise<void> {
  v8.setFlagsFromString('--no-memory-reducer-for-small-heaps'); // as `weir start` does (src/cli/main.ts)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weir-idle-'));
  const broker = await Broker.start({ port: 0, dataDir: dir });
  const send = (m: FromChild): void => void process.send!(m);
  process.on('message', (m: ToChild) => {
    if (m.type === 'sample') {
      const gc = (globalThis as { gc?: () => void }).gc;
      gc?.();
      const mem = process.memoryUsage();
      const stats = (broker as unknown as { partitionResources?: () => unknown }).partitionResources?.() ?? null;
      send({
        type: 'sample',
        sample: {
          label: m.label,
          topics: m.topics,
          rssBytes: rssNow(),
          heapUsedBytes: mem.heapUsed,
          heapTotalBytes: mem.heapTotal,
          externalBytes: mem.external,
          arrayBuffersBytes: mem.arrayBuffers,
          fds: fs.readdirSync('/proc/self/fd').length,
          cpuMs: cpuMsNow(),
          resources: stats,
        },
      });
    } else {
      const t0 = Date.now();
      void broker.close().then(() => {
        const closeMs = Date.now() - t0;
        fs.rmSync(dir, { recursive: true, force: true });
        send({ type: 'stopped', closeMs });
        process.disconnect();
      });
    }
  });
  send({ type: 'ready', url: broker.url });
}

function cpuMsNow(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Resident set size from /proc (process.memoryUsage().rss is the same number, read the same way). */
function rssNow(): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : process.memoryUsage().rss;
}

async function parent(): Promise<void> {
  const { values } = parseArgs({
    options: {
      topics: { type: 'string', default: '1000' },
      step: { type: 'string' },
      'idle-s': { type: 'string', default: '12' },
      sample: { type: 'string', default: '20' },
      json: { type: 'string' },
    },
  });
  const total = Number(values.topics);
  const step = Number(values.step ?? Math.max(1, Math.floor(total / 4)));
  const idleS = Number(values['idle-s']);
  const sampleN = Math.min(total, Number(values.sample));
  const proc = fork(fileURLToPath(import.meta.url), ['--child'], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const pending: Array<(m: FromChild) => void> = [];
  proc.on('message', (m: FromChild) => pending.shift()?.(m));
  const next = (): Promise<FromChild> => new Promise((resolve) => pending.push(resolve));
  const ask = async (label: string, topics: number): Promise<Sample> => {
    const reply = next();
    proc.send({ type: 'sample', label, topics } satisfies ToChild);
    const m = await reply;
    if (m.type !== 'sample') throw new Error(`unexpected ${m.type}`);
    print(m.sample);
    return m.sample;
  };
  const ready = await next();
  if (ready.type !== 'ready') throw new Error('broker did not start');
  const client = await connect(ready.url);
  const samples: Sample[] = [];
  const started = Date.now();
  try {
    samples.push(await ask('empty broker', 0));
    for (let n = 0; n < total; ) {
      const upTo = Math.min(total, n + step);
      // A few requests in flight: the broker creates them one after another anyway.
      while (n < upTo) {
        const batch = Math.min(upTo - n, CREATE_IN_FLIGHT);
        await Promise.all(Array.from({ length: batch }, (_, k) => client.createTopic(`idle.${n + k}`, { partitions: 1 })));
        n += batch;
      }
      samples.push(await ask(`after creating (${((Date.now() - started) / 1000).toFixed(1)} s)`, n));
    }
    await new Promise((r) => setTimeout(r, idleS * 1000));
    samples.push(await ask(`after ${idleS} s idle`, total));
    if (sampleN > 0) {
      // The lazy paths: produce to and read back a sample of the topics.
      const stride = Math.max(1, Math.floor(total / sampleN));
      for (let i = 0; i < sampleN; i++) {
        const topic = `idle.${i * stride}`;
        await client.produce(topic, [{ value: `m-${i}` }, { value: `n-${i}` }]);
        const r = await client.fetch(topic, 0, 0);
        if (r.messages.length !== 2) throw new Error(`${topic}: read ${r.messages.length} messages back, not 2`);
      }
      samples.push(await ask(`after producing to and reading ${sampleN}`, total));
      await new Promise((r) => setTimeout(r, idleS * 1000));
      samples.push(await ask(`after another ${idleS} s idle`, total));
    }
  } finally {
    await client.close();
    const closeMs = await stop(proc, next);
    console.log(`broker close: ${closeMs === null ? 'did not finish in 120 s' : `${(closeMs / 1000).toFixed(1)} s`}`);
  }
  const base = samples[0]!;
  const idle = samples.find((s) => s.label.startsWith('after ') && s.label.includes('idle')) ?? samples[samples.length - 1]!;
  const per = (b: number, a: number): string => `${((b - a) / total / 1024).toFixed(1)} KiB`;
  const idleAt = samples.indexOf(idle);
  const before = samples[idleAt - 1]!;
  console.log(`\nper idle partition (${total} topics, after ${idleS} s idle, minus the empty broker):`);
  console.log(`  RSS ${per(idle.rssBytes, base.rssBytes)}, heap used ${per(idle.heapUsedBytes, base.heapUsedBytes)}, external ${per(idle.externalBytes, base.externalBytes)}, arrayBuffers ${per(idle.arrayBuffersBytes, base.arrayBuffersBytes)}, fds ${((idle.fds - base.fds) / total).toFixed(2)}`);
  console.log(`  broker RSS with ${total} idle partitions: ${(idle.rssBytes / MiB).toFixed(0)} MiB; CPU while idle: ${((idle.cpuMs - before.cpuMs) / (idleS * 1000) * 100).toFixed(1)} % of a core`);
  if (values.json) fs.writeFileSync(values.json, JSON.stringify({ topics: total, node: process.version, samples }, null, 2));
}

/** A wait that does not keep this process alive once everything else is done. */
function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

function print(s: Sample): void {
  const mib = (b: number): string => (b / MiB).toFixed(1).padStart(8);
  console.log(
    `${String(s.topics).padStart(6)} topics  rss ${mib(s.rssBytes)} MiB  heap ${mib(s.heapUsedBytes)} MiB  external ${mib(s.externalBytes)} MiB  arrayBuffers ${mib(s.arrayBuffersBytes)} MiB  fds ${String(s.fds).padStart(6)}  ${s.label}` +
      `  cpu ${(s.cpuMs / 1000).toFixed(1)} s` +
      (s.resources === null ? '' : `\n        ${JSON.stringify(s.resources)}`),
  );
}

/** Stop the broker; resolves with how long its close() took, or null if it did not finish in 120 s. */
async function stop(proc: ChildProcess, next: () => Promise<FromChild>): Promise<number | null> {
  if (proc.exitCode !== null) return null;
  const done = next();
  proc.send({ type: 'stop' } satisfies ToChild);
  const m = await Promise.race([done, sleep(120_000).then(() => null)]);
  const exited = new Promise((r) => proc.once('exit', r));
  if (proc.exitCode === null) await Promise.race([exited, sleep(5_000)]);
  if (proc.exitCode === null) proc.kill('SIGKILL');
  return m !== null && m.type === 'stopped' ? m.closeMs : null;
}
