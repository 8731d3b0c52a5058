/**
 * Is the machine idle enough to measure? Benchmarks on 2 cores are easily disturbed by another
 * process (another benchmark, a build). Before each run we sample /proc/stat for a second and list
 * the busiest other processes, so a disturbed run is reported as such instead of silently skewed.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { sleep } from './servers/process.js';

function cpuTotals(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!; // "cpu  user nice system idle iowait irq softirq steal …"
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

function procTicks(): Map<number, { ticks: number; childTicks: number; cmd: string; ppid: number }> {
  const out = new Map<number, { ticks: number; childTicks: number; cmd: string; ppid: number }>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const s = readFileSync(`/proc/${e}/stat`, 'utf8');
      const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
      const cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8').replace(/\0/g, ' ').trim() || s.slice(s.indexOf('(') + 1, s.lastIndexOf(')'));
      out.set(Number(e), { ticks: Number(rest[11]) + Number(rest[12]), childTicks: Number(rest[13]) + Number(rest[14]), cmd, ppid: Number(rest[1]) });
    } catch {
      /* exited */
    }
  }
  return out;
}

export interface IdleSample {
  /** Share of all cores busy over the sample, 0 … 1. */
  busy: number;
  /** Other processes that used ≥ 5 % of a core, busiest first. */
  top: { pid: number; cores: number; cmd: string }[];
}

/** Samples the machine for `ms` (this process and its threads excluded from `top`). */
export async function sampleIdle(ms = 1000): Promise<IdleSample> {
  const a = cpuTotals();
  const pa = procTicks();
  await sleep(ms);
  const b = cpuTotals();
  const pb = procTicks();
  const busy = b.total > a.total ? (b.busy - a.busy) / (b.total - a.total) : 0;
  const top: IdleSample['top'] = [];
  for (const [pid, v] of pb) {
    if (pid === process.pid) continue;
    const before = pa.get(pid);
    if (!before) continue;
    const cores = (v.ticks - before.ticks) / 100 / (ms / 1000);
    if (cores >= 0.05) top.push({ pid, cores, cmd: v.cmd.slice(0, 120) });
  }
  top.sort((x, y) => y.cores - x.cores);
  return { busy, top };
}

export function describeIdle(s: IdleSample): string {
  const who = s.top.slice(0, 3).map((t) => `pid ${t.pid} ${t.cores.toFixed(2)} cores: ${t.cmd}`).join('; ');
  return `${Math.round(s.busy * 100)} % of the cores busy${who ? ` (${who})` : ''}`;
}

/** Waits until the machine is below `threshold` busy, for at most `maxMs`; returns the last sample. */
export async function waitForIdle(threshold: number, maxMs: number, log: (s: string) => void): Promise<IdleSample> {
  const deadline = Date.now() + maxMs;
  let s = await sampleIdle();
  let said = false;
  while (s.busy > threshold && Date.now() < deadline) {
    if (!said) log(`  machine busy: ${describeIdle(s)}; waiting up to ${Math.round((deadline - Date.now()) / 1000)} s for it to be idle`);
    said = true;
    await sleep(5000);
    s = await sampleIdle();
  }
  return s;
}

/** user + nice + system ticks of all cores (not irq/softirq/steal: loopback traffic lands there). */
function machineTaskTicks(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0);
}

/** utime+stime (+ reaped children) of this process and all its live descendants, in ticks. */
function ourTreeTicks(procs: ReturnType<typeof procTicks>): number {
  const children = new Map<number, number[]>();
  for (const [pid, v] of procs) {
    const a = children.get(v.ppid);
    if (a) a.push(pid);
    else children.set(v.ppid, [pid]);
  }
  let ticks = 0;
  const stack = [process.pid];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    const e = procs.get(pid);
    if (e) ticks += e.ticks + e.childTicks;
    for (const c of children.get(pid) ?? []) stack.push(c);
  }
  return ticks;
}

export interface Disturbance {
  /** Cores used on average by everything that is not us (machine user+system minus our tree). */
  otherCores: number;
  /** The busiest other processes still alive at the end (short-lived ones only show in otherCores). */
  top: IdleSample['top'];
}

/**
 * Watches for OTHER work on the machine during a run. The machine's user+system CPU minus that of
 * this process and its descendants (the servers we started, the weir broker child) catches
 * short-lived processes too (a build, another benchmark's broker that came and went); the per-process
 * list names the long-lived ones. start() before the run, stop() after.
 */
export class DisturbanceMonitor {
  private before: ReturnType<typeof procTicks> | null = null;
  private machine0 = 0;
  private ours0 = 0;
  private t0 = 0;

  start(): void {
    this.before = procTicks();
    this.machine0 = machineTaskTicks();
    this.ours0 = ourTreeTicks(this.before);
    this.t0 = performance.now();
  }

  stop(minCores = 0.1): Disturbance {
    const before = this.before;
    if (!before) return { otherCores: 0, top: [] };
    const after = procTicks();
    const secs = (performance.now() - this.t0) / 1000;
    // Our servers are stopped after stop(), so they are still in `after`; reaped children of ours are in childTicks.
    const otherCores = Math.max(0, (machineTaskTicks() - this.machine0 - (ourTreeTicks(after) - this.ours0)) / 100 / secs);
    const ours = (pid: number): boolean => {
      for (let p = pid, guard = 0; p > 1 && guard < 64; guard++) {
        if (p === process.pid) return true;
        const e = after.get(p) ?? before.get(p);
        if (!e) return false;
        p = e.ppid;
      }
      return false;
    };
    const top: IdleSample['top'] = [];
    for (const [pid, v] of after) {
      if (ours(pid)) continue;
      const cores = (v.ticks - (before.get(pid)?.ticks ?? 0)) / 100 / secs; // new since start(): all of it
      if (cores >= minCores) top.push({ pid, cores, cmd: v.cmd.slice(0, 120) });
    }
    return { otherCores, top: top.sort((x, y) => y.cores - x.cores) };
  }
}
