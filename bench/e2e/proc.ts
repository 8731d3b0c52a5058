/**
 * CPU time and memory of other processes (the broker under test), from Linux /proc.
 *
 * - CPU: utime + stime of /proc/<pid>/stat (fields 14 and 15, every thread of the process), in
 *   clock ticks of `getconf CLK_TCK` (100 when that fails).
 * - Memory: VmRSS (now) and VmHWM (peak resident set since start) of /proc/<pid>/status.
 *
 * On a system without /proc every reading is null and reports say "n/a".
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

let ticks: number | null = null;

export function clockTicksPerSecond(): number {
  if (ticks === null) {
    try {
      const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
      ticks = Number.isFinite(n) && n > 0 ? n : 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

/** CPU seconds (user + system) the process used so far, or null if it cannot be read. */
export function readCpuSeconds(pid: number): number | null {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state): utime is field 14 → rest[11], stime field 15 → rest[12].
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return null;
  return (utime + stime) / clockTicksPerSecond();
}

/**
 * Busy CPU seconds of the whole machine so far (user+nice+system+irq+softirq+steal of the `cpu`
 * line of /proc/stat), or null. The difference over a window, minus the broker's and the load
 * generator's own CPU, is what OTHER processes used: a disturbed run shows up there.
 */
export function readMachineBusySeconds(): number | null {
  let stat: string;
  try {
    stat = fs.readFileSync('/proc/stat', 'utf8');
  } catch {
    return null;
  }
  const line = /^cpu\s+(.+)$/m.exec(stat);
  if (!line) return null;
  const f = line[1]!.trim().split(/\s+/).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice (guest is already in user)
  const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
  return Number.isFinite(busy) ? busy / clockTicksPerSecond() : null;
}

export interface MemoryReading {
  rssBytes: number;
  /** Peak RSS since the process started. */
  hwmBytes: number;
}

export function readMemory(pid: number): MemoryReading | null {
  let status: string;
  try {
    status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const kb = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, 'm').exec(status);
    return m ? Number(m[1]) * 1024 : NaN;
  };
  const rss = kb('VmRSS');
  if (Number.isNaN(rss)) return null;
  const hwm = kb('VmHWM');
  return { rssBytes: rss, hwmBytes: Number.isNaN(hwm) ? rss : hwm };
}

export interface ResourceMark {
  /** Monotonic ms (performance.now of this process). */
  at: number;
  cpuSeconds: number | null;
}

export interface ResourceUsage {
  cpuSeconds: number | null;
  /** Average cores busy over the interval (cpuSeconds / wall seconds). */
  cpuCores: number | null;
  /** Largest VmRSS sampled in the interval, and VmHWM at its end. */
  peakRssBytes: number | null;
  hwmBytes: number | null;
  rssEndBytes: number | null;
}

/**
 * Samples a set of processes (summed) every `intervalMs` for peak RSS; mark() / usageSince() give
 * the CPU time of an interval (e.g. the measured window).
 */
export class ProcessSampler {
  private timer: ReturnType<typeof setInterval> | null = null;
  private peakRss = 0;
  private sampled = false;

  constructor(
    readonly pids: readonly number[],
    private readonly intervalMs = 200,
  ) {}

  start(): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Restart the peak-RSS tracking (e.g. at the start of the measured window). */
  resetPeak(): void {
    this.peakRss = 0;
    this.sampled = false;
    this.sample();
  }

  mark(): ResourceMark {
    return { at: performance.now(), cpuSeconds: this.cpuSeconds() };
  }

  usageSince(start: ResourceMark): ResourceUsage {
    this.sample();
    const end = this.mark();
    const cpu = start.cpuSeconds === null || end.cpuSeconds === null ? null : end.cpuSeconds - start.cpuSeconds;
    const wall = (end.at - start.at) / 1000;
    const mem = this.memory();
    return {
      cpuSeconds: cpu,
      cpuCores: cpu === null || wall <= 0 ? null : cpu / wall,
      peakRssBytes: this.sampled ? this.peakRss : null,
      hwmBytes: mem?.hwmBytes ?? null,
      rssEndBytes: mem?.rssBytes ?? null,
    };
  }

  cpuSeconds(): number | null {
    let sum = 0;
    for (const pid of this.pids) {
      const s = readCpuSeconds(pid);
      if (s === null) return null;
      sum += s;
    }
    return sum;
  }

  memory(): MemoryReading | null {
    let rss = 0;
    let hwm = 0;
    for (const pid of this.pids) {
      const m = readMemory(pid);
      if (m === null) return null;
      rss += m.rssBytes;
      hwm += m.hwmBytes;
    }
    return { rssBytes: rss, hwmBytes: hwm };
  }

  private sample(): void {
    const m = this.memory();
    if (m === null) return;
    this.sampled = true;
    if (m.rssBytes > this.peakRss) this.peakRss = m.rssBytes;
  }
}

/**
 * Wait until the machine is quiet: less than `maxBusyCores` busy over `windowMs`, checked
 * repeatedly. Resolves true when quiet, false after `timeoutMs`. Other benchmarks running on the
 * same machine (and their brokers) would otherwise distort a run.
 */
export async function waitForQuiet(options: { maxBusyCores?: number; windowMs?: number; timeoutMs: number; signal?: AbortSignal }): Promise<boolean> {
  const max = options.maxBusyCores ?? 0.15;
  const windowMs = options.windowMs ?? 8000;
  const deadline = performance.now() + options.timeoutMs;
  for (;;) {
    const a = readMachineBusySeconds();
    if (a === null) return true; // cannot tell
    await new Promise((r) => setTimeout(r, windowMs));
    if (options.signal?.aborted) return false;
    const b = readMachineBusySeconds()!;
    if ((b - a) / (windowMs / 1000) < max) return true;
    if (performance.now() > deadline) return false;
  }
}
