/**
 * Reports of load-generator runs: the machine and build they ran on, medians over repeated runs,
 * a human table for the terminal, and JSON + Markdown files for bench/results/.
 *
 * Broker-agnostic: the side-by-side benchmark (bench/peers) builds the same Report from its own runs.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RunResult } from './runner.js';
import { describeWorkload, formatBytes, type Workload } from './workload.js';

export interface Environment {
  date: string;
  /** `git rev-parse --short HEAD`, with "-dirty" when tracked files have uncommitted changes. */
  commit: string;
  /** The tracked files with uncommitted changes (at most 20), when dirty. */
  dirtyFiles?: string[];
  node: string;
  cpuModel: string;
  cores: number;
  memoryBytes: number;
  os: string;
}

export interface Stat {
  median: number | null;
  min: number | null;
  max: number | null;
  values: Array<number | null>;
}

export interface Summary {
  runs: number;
  producedMsgsPerSec: Stat;
  consumedMsgsPerSec: Stat;
  producedMbPerSec: Stat;
  consumedMbPerSec: Stat;
  publishP50Ms: Stat;
  publishP99Ms: Stat;
  publishP999Ms: Stat;
  publishP9999Ms: Stat;
  publishMaxMs: Stat;
  endToEndP50Ms: Stat;
  endToEndP99Ms: Stat;
  endToEndP999Ms: Stat;
  endToEndP9999Ms: Stat;
  endToEndMaxMs: Stat;
  lagEnd: Stat;
  brokerCpuSecondsPerMillionMessages: Stat;
  brokerCpuCores: Stat;
  brokerPeakRssBytes: Stat;
  loadGeneratorCpuCores: Stat;
  otherProcessesCpuCores: Stat;
  drainMsgsPerSec: Stat;
  drainMbPerSec: Stat;
  drainSeconds: Stat;
  fillMsgsPerSec: Stat;
  fillMbPerSec: Stat;
  drainPeakRssBytes: Stat;
}

export interface Report {
  tool: 'weir-e2e';
  version: 1;
  environment: Environment;
  /** The exact command line. */
  command: string;
  preset: string;
  driver: string;
  workload: Workload;
  /** Free-form facts about the setup (e.g. how the broker was started). */
  notes: string[];
  summary: Summary;
  runs: RunResult[];
}

export function collectEnvironment(cwd = process.cwd()): Environment {
  let commit = 'unknown';
  const head = (() => {
    try {
      return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return null;
    }
  })();
  let dirtyFiles: string[] = [];
  if (head) {
    try {
      dirtyFiles = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
        .split('\n')
        .map((l) => l.slice(3).trim())
        .filter((l) => l !== '');
    } catch {
      // unknown: report the commit alone
    }
    commit = dirtyFiles.length > 0 ? `${head}-dirty` : head;
  }
  let cpuModel = os.cpus()[0]?.model?.trim() ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpuModel = m[1]!.trim();
  } catch {
    // not Linux
  }
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return {
    date: new Date().toISOString(),
    commit,
    ...(dirtyFiles.length > 0 ? { dirtyFiles: dirtyFiles.slice(0, 20) } : {}),
    node: process.version,
    cpuModel,
    cores,
    memoryBytes: os.totalmem(),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
  };
}

export function stat(values: Array<number | null | undefined>): Stat {
  const vs = values.map((v) => (v === undefined || v === null || Number.isNaN(v) ? null : v));
  const nums = vs.filter((v): v is number => v !== null).sort((a, b) => a - b);
  if (nums.length === 0) return { median: null, min: null, max: null, values: vs };
  const mid = nums.length >> 1;
  const median = nums.length % 2 === 1 ? nums[mid]! : (nums[mid - 1]! + nums[mid]!) / 2;
  return { median, min: nums[0]!, max: nums[nums.length - 1]!, values: vs };
}

export function summarize(runs: RunResult[]): Summary {
  const s = (f: (r: RunResult) => number | null | undefined): Stat => stat(runs.map(f));
  return {
    runs: runs.length,
    producedMsgsPerSec: s((r) => r.produced.msgsPerSec),
    consumedMsgsPerSec: s((r) => r.consumed.msgsPerSec),
    producedMbPerSec: s((r) => r.produced.mbPerSec),
    consumedMbPerSec: s((r) => r.consumed.mbPerSec),
    publishP50Ms: s((r) => r.publishLatencyMs.p50),
    publishP99Ms: s((r) => r.publishLatencyMs.p99),
    publishP999Ms: s((r) => r.publishLatencyMs.p999),
    publishP9999Ms: s((r) => r.publishLatencyMs.p9999),
    publishMaxMs: s((r) => r.publishLatencyMs.max),
    endToEndP50Ms: s((r) => r.endToEndLatencyMs.p50),
    endToEndP99Ms: s((r) => r.endToEndLatencyMs.p99),
    endToEndP999Ms: s((r) => r.endToEndLatencyMs.p999),
    endToEndP9999Ms: s((r) => r.endToEndLatencyMs.p9999),
    endToEndMaxMs: s((r) => r.endToEndLatencyMs.max),
    lagEnd: s((r) => r.lag.end),
    brokerCpuSecondsPerMillionMessages: s((r) => r.broker?.cpuSecondsPerMillionMessages),
    brokerCpuCores: s((r) => r.broker?.cpuCores),
    brokerPeakRssBytes: s((r) => r.broker?.peakRssBytes),
    loadGeneratorCpuCores: s((r) => r.loadGenerator?.cpuCores),
    otherProcessesCpuCores: s((r) => r.machine?.otherCores),
    drainMsgsPerSec: s((r) => r.backlog?.drainMsgsPerSec),
    drainMbPerSec: s((r) => r.backlog?.drainMbPerSec),
    drainSeconds: s((r) => r.backlog?.drainSeconds),
    fillMsgsPerSec: s((r) => r.backlog?.fillMsgsPerSec),
    fillMbPerSec: s((r) => r.backlog?.fillMbPerSec),
    drainPeakRssBytes: s((r) => r.backlog?.drainPeakRssBytes),
  };
}

export function buildReport(args: {
  command: string;
  preset: string;
  driver: string;
  workload: Workload;
  runs: RunResult[];
  notes?: string[];
  environment?: Environment;
}): Report {
  return {
    tool: 'weir-e2e',
    version: 1,
    environment: args.environment ?? collectEnvironment(),
    command: args.command,
    preset: args.preset,
    driver: args.driver,
    workload: args.workload,
    notes: args.notes ?? [],
    summary: summarize(args.runs),
    runs: args.runs,
  };
}

// ------------------------------------------------------------------------------------ formatting

const int = (v: number | null | undefined): string => (v === null || v === undefined || Number.isNaN(v) ? 'n/a' : Math.round(v).toLocaleString('en-US'));
const fix = (v: number | null | undefined, d = 2): string => (v === null || v === undefined || Number.isNaN(v) ? 'n/a' : v.toFixed(d));
const ms = (v: number | null | undefined): string => (v === null || v === undefined || Number.isNaN(v) ? 'n/a' : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : Math.round(v).toLocaleString('en-US'));
const mib = (v: number | null | undefined): string => (v === null || v === undefined ? 'n/a' : `${Math.round(v / 1048576)} MiB`);
/** "median (min – max)" */
const spread = (st: Stat, f: (v: number | null) => string): string =>
  st.median === null ? 'n/a' : st.values.length > 1 ? `${f(st.median)} (${f(st.min)} – ${f(st.max)})` : f(st.median);

function table(headers: string[], rows: string[][], markdown: boolean): string {
  if (markdown) {
    const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
    return [line(headers), line(headers.map((_, i) => (i === 0 ? '---' : '---:'))), ...rows.map(line)].join('\n');
  }
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function throughputTable(report: Report, markdown: boolean): string {
  const backlog = report.workload.backlogBytes > 0;
  const headers = ['run', 'produced msg/s', 'consumed msg/s', 'prod MB/s', 'cons MB/s', 'unconsumed at end', 'broker CPU s / M msgs', 'broker cores', 'broker peak RSS', 'loadgen cores', 'other cores'];
  if (backlog) headers.push('drain msg/s', 'drain s');
  const rows = report.runs.map((r, i) => {
    const row = [
      String(i + 1),
      int(r.produced.msgsPerSec),
      int(r.consumed.msgsPerSec),
      fix(r.produced.mbPerSec, 1),
      fix(r.consumed.mbPerSec, 1),
      int(r.lag.end),
      fix(r.broker?.cpuSecondsPerMillionMessages),
      fix(r.broker?.cpuCores),
      mib(r.broker?.peakRssBytes),
      fix(r.loadGenerator?.cpuCores),
      fix(r.machine?.otherCores),
    ];
    if (backlog) row.push(int(r.backlog?.drainMsgsPerSec), `${fix(r.backlog?.drainSeconds, 1)}${r.backlog?.drained === false ? ' (not drained)' : ''}`);
    return row;
  });
  if (report.runs.length > 1) {
    const s = report.summary;
    const row = [
      'median',
      int(s.producedMsgsPerSec.median),
      int(s.consumedMsgsPerSec.median),
      fix(s.producedMbPerSec.median, 1),
      fix(s.consumedMbPerSec.median, 1),
      int(s.lagEnd.median),
      fix(s.brokerCpuSecondsPerMillionMessages.median),
      fix(s.brokerCpuCores.median),
      mib(s.brokerPeakRssBytes.median),
      fix(s.loadGeneratorCpuCores.median),
      fix(s.otherProcessesCpuCores.median),
    ];
    if (backlog) row.push(int(s.drainMsgsPerSec.median), fix(s.drainSeconds.median, 1));
    rows.push(row);
  }
  return table(headers, rows, markdown);
}

function latencyTable(report: Report, markdown: boolean): string {
  const headers = ['run', 'latency (ms)', 'p50', 'p99', 'p99.9', 'p99.99', 'max'];
  const rows: string[][] = [];
  report.runs.forEach((r, i) => {
    for (const [label, l] of [
      ['publish', r.publishLatencyMs],
      ['end-to-end', r.endToEndLatencyMs],
    ] as const) {
      rows.push([String(i + 1), label, ms(l.p50), ms(l.p99), ms(l.p999), ms(l.p9999), ms(l.max)]);
    }
  });
  if (report.runs.length > 1) {
    const s = report.summary;
    rows.push(['median', 'publish', ms(s.publishP50Ms.median), ms(s.publishP99Ms.median), ms(s.publishP999Ms.median), ms(s.publishP9999Ms.median), ms(s.publishMaxMs.median)]);
    rows.push(['median', 'end-to-end', ms(s.endToEndP50Ms.median), ms(s.endToEndP99Ms.median), ms(s.endToEndP999Ms.median), ms(s.endToEndP9999Ms.median), ms(s.endToEndMaxMs.median)]);
  }
  return table(headers, rows, markdown);
}

function envLines(e: Environment): string[] {
  return [
    `date ${e.date}, commit ${e.commit}, Node ${e.node}`,
    `${e.cpuModel}, ${e.cores} cores, ${formatBytes(e.memoryBytes)} RAM, ${e.os}`,
  ];
}

/** The terminal table. */
export function renderTable(report: Report): string {
  const out = [
    `${report.driver} — ${report.preset}: ${describeWorkload(report.workload)}`,
    ...envLines(report.environment),
    '',
    throughputTable(report, false),
    '',
    latencyTable(report, false),
  ];
  const errors = report.runs.flatMap((r, i) => r.errors.map((e) => `run ${i + 1}: ${e}`));
  if (errors.length > 0) out.push('', 'errors:', ...errors.map((e) => `  ${e}`));
  return out.join('\n');
}

export function renderMarkdown(report: Report): string {
  const e = report.environment;
  const s = report.summary;
  const w = report.workload;
  const lines = [
    `# ${report.driver} e2e: ${report.preset}`,
    '',
    `- **Workload**: ${describeWorkload(w)}; warm-up ${w.warmupSeconds} s, ${w.backlogBytes > 0 ? `drain limit ${w.durationSeconds} s` : `measured ${w.durationSeconds} s`}`,
    `- **Command**: \`${report.command}\``,
    `- **Date**: ${e.date}  **Commit**: ${e.commit}${e.dirtyFiles ? ` (uncommitted changes in ${e.dirtyFiles.join(', ')})` : ''}  **Node**: ${e.node}`,
    `- **Machine**: ${e.cpuModel}, ${e.cores} cores, ${formatBytes(e.memoryBytes)} RAM, ${e.os}`,
    ...report.notes.map((n) => `- ${n}`),
    `- **Runs**: ${s.runs}; medians, with (min – max) over the runs:`,
    '',
    `| metric | median (min – max) |`,
    `|---|---:|`,
    `| produced msg/s | ${spread(s.producedMsgsPerSec, int)} |`,
    `| consumed msg/s | ${spread(s.consumedMsgsPerSec, int)} |`,
    `| produced MB/s (payload) | ${spread(s.producedMbPerSec, (v) => fix(v, 1))} |`,
    `| publish latency p50 / p99 / p99.9 ms | ${spread(s.publishP50Ms, ms)} / ${spread(s.publishP99Ms, ms)} / ${spread(s.publishP999Ms, ms)} |`,
    `| publish latency p99.99 / max ms | ${spread(s.publishP9999Ms, ms)} / ${spread(s.publishMaxMs, ms)} |`,
    `| end-to-end latency p50 / p99 / p99.9 ms | ${spread(s.endToEndP50Ms, ms)} / ${spread(s.endToEndP99Ms, ms)} / ${spread(s.endToEndP999Ms, ms)} |`,
    `| end-to-end latency p99.99 / max ms | ${spread(s.endToEndP9999Ms, ms)} / ${spread(s.endToEndMaxMs, ms)} |`,
    `| unconsumed at end (sent − received, msgs) | ${spread(s.lagEnd, int)} |`,
    `| broker CPU s per million msgs | ${spread(s.brokerCpuSecondsPerMillionMessages, (v) => fix(v))} |`,
    `| broker CPU (cores busy) | ${spread(s.brokerCpuCores, (v) => fix(v))} |`,
    `| broker peak RSS | ${spread(s.brokerPeakRssBytes, mib)} |`,
    `| load generator CPU (cores busy, same machine) | ${spread(s.loadGeneratorCpuCores, (v) => fix(v))} |`,
    `| other processes' CPU during the window (cores; ≈ 0 = quiet machine) | ${spread(s.otherProcessesCpuCores, (v) => fix(v))} |`,
  ];
  if (w.backlogBytes > 0) {
    lines.push(
      `| backlog fill msg/s (max rate, no consumer) | ${spread(s.fillMsgsPerSec, int)} |`,
      `| backlog fill MB/s | ${spread(s.fillMbPerSec, (v) => fix(v, 1))} |`,
      `| drain msg/s (from consumer start until caught up) | ${spread(s.drainMsgsPerSec, int)} |`,
      `| drain MB/s | ${spread(s.drainMbPerSec, (v) => fix(v, 1))} |`,
      `| drain seconds | ${spread(s.drainSeconds, (v) => fix(v, 1))} |`,
      `| broker peak RSS during the drain | ${spread(s.drainPeakRssBytes, mib)} |`,
    );
  }
  lines.push('', '## Runs', '', throughputTable(report, true), '', latencyTable(report, true));
  const errors = report.runs.flatMap((r, i) => r.errors.map((err) => `- run ${i + 1}: ${err}`));
  if (errors.length > 0) lines.push('', '## Errors', '', ...errors);
  lines.push(
    '',
    'Publish latency: ack time − intended send time (coordinated-omission corrected). End-to-end: receive time − intended send time.',
    'Broker CPU: utime+stime of the broker process (all threads) over the measured window, per million messages through the broker (the larger of produced and consumed). Full per-second timelines and histograms are in the JSON file.',
    '',
  );
  return lines.join('\n');
}

/** JSON with 2-space indentation, but arrays of plain numbers (histogram counts) on one line. */
export function stringifyCompact(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(/\[\s*(-?[\d.e+-]+(?:,\s*-?[\d.e+-]+)*)\s*\]/g, (_, body: string) => `[${body.split(/,\s*/).join(', ')}]`);
}

/** Write FILE (JSON) and FILE with a .md extension next to it. Returns both paths. */
export function writeReport(file: string, report: Report): { json: string; markdown: string } {
  const json = path.resolve(file);
  fs.mkdirSync(path.dirname(json), { recursive: true });
  fs.writeFileSync(json, `${stringifyCompact(report)}\n`);
  const markdown = json.replace(/\.json$/i, '') + '.md';
  fs.writeFileSync(markdown, renderMarkdown(report));
  return { json, markdown };
}
