/**
 * The side-by-side report: one table over every preset and system (throughput, end-to-end
 * latency, broker CPU per million messages, the durability each system ran with, weir's ratio to
 * each peer), written as JSON + Markdown + an SVG chart into bench/results/.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Histogram, type HistogramJSON } from '../../src/common/histogram.js';
import { summarize, type Environment, type Summary } from '../e2e/report.js';
import type { RunResult } from '../e2e/runner.js';
import { mergeHistograms } from '../e2e/stats.js';
import { describeWorkload, type Workload } from '../e2e/workload.js';
import type { Durability } from './servers/types.js';
import type { SystemName } from './systems.js';
import { renderChart } from './chart.js';
import type { DiskProbe } from './disk.js';

/** A run as stored in the report: everything but its full-precision histograms (≈ 100 KB each). */
export type StoredRun = Omit<RunResult, 'histograms'> & {
  histograms?: RunResult['histograms'];
  /** Cores used on average by processes outside the benchmark during the run (idle.ts). */
  otherCores?: number;
};

export interface SystemResult {
  system: SystemName;
  version: string;
  durability: Durability;
  runs: StoredRun[];
  summary: Summary | null;
  /**
   * Latency histograms of all runs merged, re-bucketed to 0.8 % precision (subBucketBits 7) to keep
   * the JSON small; per-run percentiles in `runs[i]` come from the full-precision histograms.
   */
  histograms?: { endToEnd: HistogramJSON | null; publish: HistogramJSON | null };
  /** Why this system has no (or fewer) runs: install/start failure, run error. */
  problems: string[];
}

export interface PresetResult {
  preset: string;
  description: string;
  workload: Workload;
  systems: SystemResult[];
}

export interface PeersReport {
  tool: 'weir-peers';
  version: 1;
  environment: Environment;
  command: string;
  fsync: string;
  /** Extra `weir start` flags of every weir run (absent in reports written before they existed). */
  weirArgs?: string[];
  runsPerSystem: number;
  install: string[];
  /** fdatasync cost of the disk under the servers' data dirs, measured before the runs. */
  disk: DiskProbe | null;
  presets: PresetResult[];
  notes: string[];
}

/** Sustained rate: what was both produced and consumed (a consumer that lags does not count). */
export function sustained(s: Summary): number | null {
  const p = s.producedMsgsPerSec.median;
  const c = s.consumedMsgsPerSec.median;
  if (p === null || c === null) return null;
  return Math.min(p, c);
}

export function isMaxRate(w: Workload): boolean {
  return w.producerRate === 0 && w.backlogBytes === 0;
}

const int = (v: number | null | undefined): string => (v === null || v === undefined || Number.isNaN(v) ? 'n/a' : Math.round(v).toLocaleString('en-US'));
const fix = (v: number | null | undefined, d = 2): string => (v === null || v === undefined || Number.isNaN(v) ? 'n/a' : v.toFixed(d));
const ms = (v: number | null | undefined): string =>
  v === null || v === undefined || Number.isNaN(v) ? 'n/a' : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : Math.round(v).toLocaleString('en-US');
const ratio = (v: number | null): string => (v === null || !Number.isFinite(v) ? 'n/a' : `${v >= 10 ? v.toFixed(1) : v.toFixed(2)}×`);

export interface Row {
  preset: string;
  system: string;
  durability: string;
  sustainedMsgsPerSec: number | null;
  producedMsgsPerSec: number | null;
  consumedMsgsPerSec: number | null;
  mbPerSec: number | null;
  p50: number | null;
  p99: number | null;
  p999: number | null;
  cpuPerMillion: number | null;
  /** weir sustained msg/s ÷ this system's (max-rate presets). */
  weirThroughputRatio: number | null;
  /** this system's end-to-end p99 ÷ weir's (> 1: weir lower). */
  weirP99Ratio: number | null;
  exact: boolean;
}

export function rows(report: PeersReport): Row[] {
  const out: Row[] = [];
  for (const p of report.presets) {
    const weir = p.systems.find((s) => s.system === 'weir' && s.summary !== null);
    const wRate = weir?.summary ? sustained(weir.summary) : null;
    const wP99 = weir?.summary?.endToEndP99Ms.median ?? null;
    for (const s of p.systems) {
      const sum = s.summary;
      const rate = sum ? sustained(sum) : null;
      const p99 = sum?.endToEndP99Ms.median ?? null;
      const mb = sum ? Math.min(sum.producedMbPerSec.median ?? Infinity, sum.consumedMbPerSec.median ?? Infinity) : null;
      out.push({
        preset: p.preset,
        system: s.system,
        durability: s.durability.short,
        sustainedMsgsPerSec: rate,
        producedMsgsPerSec: sum?.producedMsgsPerSec.median ?? null,
        consumedMsgsPerSec: sum?.consumedMsgsPerSec.median ?? null,
        mbPerSec: mb === null || !Number.isFinite(mb) ? null : mb,
        p50: sum?.endToEndP50Ms.median ?? null,
        p99,
        p999: sum?.endToEndP999Ms.median ?? null,
        cpuPerMillion: sum?.brokerCpuSecondsPerMillionMessages.median ?? null,
        weirThroughputRatio: s.system === 'weir' || !isMaxRate(p.workload) || wRate === null || rate === null || rate === 0 ? null : wRate / rate,
        weirP99Ratio: s.system === 'weir' || wP99 === null || p99 === null || wP99 === 0 ? null : p99 / wP99,
        exact: s.durability.exact,
      });
    }
  }
  return out;
}

/** Columns `leftCols` and the last (`lastLeft`) are left-aligned, the numbers in between right-aligned. */
function table(headers: string[], body: string[][], markdown: boolean, leftCols = 2, lastLeft = true): string {
  const left = (i: number): boolean => i < leftCols || (lastLeft && i === headers.length - 1);
  if (markdown) {
    const line = (cells: string[]): string => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
    return [line(headers), line(headers.map((_, i) => (left(i) ? '---' : '---:'))), ...body.map(line)].join('\n');
  }
  const widths = headers.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (left(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].map((l) => l.trimEnd()).join('\n');
}

/** The one table: every preset × system. `durability` is a short marker here; the legend has the words. */
export function renderMainTable(report: PeersReport, markdown: boolean): string {
  const headers = [
    'preset', 'system', 'msg/s', 'prod msg/s', 'cons msg/s', 'MB/s', 'e2e p50 ms', 'e2e p99 ms', 'e2e p99.9 ms', 'CPU s/M msgs',
    'weir msg/s ÷ peer', 'peer p99 ÷ weir', 'durability',
  ];
  const body = rows(report).map((r) => [
    r.preset,
    r.system,
    int(r.sustainedMsgsPerSec),
    int(r.producedMsgsPerSec),
    int(r.consumedMsgsPerSec),
    fix(r.mbPerSec, 1),
    ms(r.p50),
    ms(r.p99),
    ms(r.p999),
    fix(r.cpuPerMillion),
    r.system === 'weir' ? '—' : ratio(r.weirThroughputRatio),
    r.system === 'weir' ? '—' : ratio(r.weirP99Ratio),
    `${r.exact ? '' : '≠ '}${r.durability}`,
  ]);
  return table(headers, body, markdown);
}

/** Median (min – max) over the runs, per preset and system: how much the runs varied. */
export function renderSpreadTable(report: PeersReport, markdown: boolean): string {
  const spread = (v: Array<number | null>, f: (x: number) => string): string => {
    const xs = v.filter((x): x is number => x !== null && Number.isFinite(x)).sort((a, b) => a - b);
    if (xs.length === 0) return 'n/a';
    const med = xs.length % 2 === 1 ? xs[xs.length >> 1]! : (xs[xs.length / 2 - 1]! + xs[xs.length / 2]!) / 2;
    return xs.length === 1 ? f(med) : `${f(med)} (${f(xs[0]!)} – ${f(xs[xs.length - 1]!)})`;
  };
  const body: string[][] = [];
  for (const p of report.presets) {
    for (const s of p.systems) {
      if (s.runs.length === 0) continue;
      body.push([
        p.preset,
        s.system,
        String(s.runs.length),
        spread(s.runs.map((r) => Math.min(r.produced.msgsPerSec, r.consumed.msgsPerSec)), (x) => int(x)),
        spread(s.runs.map((r) => r.endToEndLatencyMs.p50), ms),
        spread(s.runs.map((r) => r.endToEndLatencyMs.p99), ms),
        spread(s.runs.map((r) => r.endToEndLatencyMs.p999), ms),
        spread(s.runs.map((r) => r.broker?.cpuSecondsPerMillionMessages ?? null), (x) => fix(x)),
      ]);
    }
  }
  return table(['preset', 'system', 'runs', 'msg/s', 'e2e p50 ms', 'e2e p99 ms', 'e2e p99.9 ms', 'CPU s/M msgs'], body, markdown, 2, false);
}

function durabilityNotes(report: PeersReport): string[] {
  const seen = new Map<string, string>();
  for (const p of report.presets) {
    for (const s of p.systems) {
      const key = `${s.system}: ${s.durability.setting}`;
      if (!seen.has(key)) seen.set(key, s.durability.exact ? 'same contract as weir' : `≠ ${s.durability.note ?? 'not the same contract as weir'}`);
    }
  }
  return [...seen].map(([k, v]) => `${k} (${v})`);
}

function problems(report: PeersReport): string[] {
  return report.presets.flatMap((p) => p.systems.flatMap((s) => s.problems.map((m) => `${p.preset} / ${s.system}: ${m}`)));
}

export function renderTerminal(report: PeersReport): string {
  const e = report.environment;
  const out = [
    `side by side, weir --fsync ${report.fsync}, ${report.runsPerSystem} run(s) per system (medians)`,
    `date ${e.date}, commit ${e.commit}, Node ${e.node}, ${e.cpuModel}, ${e.cores} cores`,
    ...(report.disk ? [`disk: 4 KiB append + fdatasync p50 ${report.disk.p50Ms} ms, p99 ${report.disk.p99Ms} ms (${report.disk.dir})`] : []),
    '',
    renderMainTable(report, false),
    '',
    'durability:',
    ...durabilityNotes(report).map((l) => `  ${l}`),
  ];
  const pr = problems(report);
  if (pr.length > 0) out.push('', 'problems:', ...pr.map((l) => `  ${l}`));
  return out.join('\n');
}

export function renderMarkdown(report: PeersReport, chartFile: string | null): string {
  const e = report.environment;
  const lines = [
    `# weir side by side: NATS JetStream, RabbitMQ, Redis Streams`,
    '',
    `- **Command**: \`${report.command}\``,
    `- **Date**: ${e.date}  **Commit**: ${e.commit}  **Node**: ${e.node}`,
    `- **Machine**: ${e.cpuModel}, ${e.cores} cores, ${Math.round(e.memoryBytes / 1024 ** 3)} GiB RAM, ${e.os}`,
    `- **Runs**: ${report.runsPerSystem} per system and preset, each on a freshly started server with an empty data directory; medians.`,
    `- **weir fsync**: \`${report.fsync}\``,
    ...(report.weirArgs && report.weirArgs.length > 0 ? [`- **weir flags**: \`${report.weirArgs.join(' ')}\``] : []),
    ...(report.disk ? [`- **Disk**: 4 KiB append + fdatasync in ${report.disk.dir}: p50 ${report.disk.p50Ms} ms, p99 ${report.disk.p99Ms} ms (${report.disk.appends} appends, measured before the runs)`] : []),
    '',
    '## Presets',
    '',
    ...report.presets.map((p) => `- \`${p.preset}\`: ${describeWorkload(p.workload)}; warm-up ${p.workload.warmupSeconds} s, measured ${p.workload.durationSeconds} s`),
    '',
    '## Results',
    '',
    renderMainTable(report, true),
    '',
    '- **msg/s**: the sustained rate, min(produced and acknowledged, consumed) per second over the measured window; prod/cons are shown separately.',
    '- **e2e**: end-to-end latency, receive time − intended send time (coordinated-omission corrected), over the measured window.',
    '- **CPU s/M msgs**: CPU seconds (user+sys) of the server process (weir: the broker process, all threads; RabbitMQ: beam.smp) per million messages produced in the window.',
    '- **weir msg/s ÷ peer** (max-rate presets) and **peer p99 ÷ weir**: above 1 means weir is ahead.',
    '- **≠** marks a system whose durability is not the same contract as weir\'s for this run (see below); compare those rows with care.',
    '- At max rate every producer keeps 8 batches of 1 000 messages in flight, so end-to-end latency there is mostly queueing behind that window (Little\'s law: 8 000 msgs ÷ rate), not the idle latency of the system; the fixed-rate preset measures that. A system whose consumer cannot keep up with its own producer (cons < prod) builds a backlog during the window and its latency grows with it.',
    '',
    '### Spread over the runs: median (min – max)',
    '',
    renderSpreadTable(report, true),
    '',
    '## Durability settings',
    '',
    ...durabilityNotes(report).map((l) => `- ${l}`),
    '',
    '## Peer versions and mapping',
    '',
    ...versionLines(report).map((l) => `- ${l}`),
    ...report.notes.map((n) => `- ${n}`),
  ];
  if (chartFile) lines.push('', `![throughput and latency](${chartFile})`);
  const pr = problems(report);
  if (pr.length > 0) lines.push('', '## Problems', '', ...pr.map((l) => `- ${l}`));
  if (report.install.length > 0) lines.push('', '## Install log', '', '```', ...report.install, '```');
  lines.push('');
  return lines.join('\n');
}

function versionLines(report: PeersReport): string[] {
  const seen = new Map<string, string>();
  for (const p of report.presets) for (const s of p.systems) seen.set(s.system, s.version);
  return [...seen].map(([k, v]) => `${k}: ${v}`);
}

/** Merged end-to-end histogram of a system's runs (for the chart). */
export function mergedEndToEnd(s: SystemResult): Histogram | null {
  const j = s.histograms?.endToEnd;
  if (j) return Histogram.fromJSON(j);
  const runs = s.runs.filter((r) => r.histograms);
  if (runs.length === 0) return null;
  const h = mergeHistograms(runs.map((r) => r.histograms!.endToEnd));
  return h.count > 0 ? h : null;
}

const COMPACT_BITS = 7;

/**
 * The same samples in a coarser layout: every source bucket's count is recorded at that bucket's
 * highest equivalent value (the value percentile() reports for it), so no percentile moves by more
 * than the coarse bucket width. Bucket math as documented in src/common/histogram.ts.
 */
export function compactHistogram(j: HistogramJSON, bits = COMPACT_BITS): HistogramJSON {
  const out = new Histogram({ highest: j.highest, subBucketBits: bits });
  const half = 2 ** (j.subBucketBits - 1);
  for (let k = 0; k < j.counts.length; k += 2) {
    const i = j.counts[k]!;
    const c = j.counts[k + 1]!;
    let v: number;
    if (i < 2 * half) v = i;
    else {
      const e = Math.floor(i / half) - 1;
      v = (i - e * half + 1) * 2 ** e - 1;
    }
    out.record(Math.min(Math.max(v, j.min), j.max), c);
  }
  const json = out.toJSON();
  // Keep the exact aggregates (record() above only saw bucket values).
  return { ...json, min: j.min, max: j.max, sum: j.sum };
}

/** Summary from the runs, merged compact histograms, and the runs without their big histograms. */
export function finalize(s: SystemResult): SystemResult {
  const withHist = s.runs.filter((r): r is RunResult => r.histograms !== undefined);
  const merged = (pick: (r: RunResult) => HistogramJSON): HistogramJSON | null => {
    if (withHist.length === 0) return null;
    const h = mergeHistograms(withHist.map(pick));
    return h.count > 0 ? compactHistogram(h.toJSON()) : null;
  };
  const histograms = withHist.length > 0 ? { endToEnd: merged((r) => r.histograms.endToEnd), publish: merged((r) => r.histograms.publish) } : s.histograms;
  return {
    ...s,
    summary: s.runs.length > 0 ? summarize(s.runs as RunResult[]) : null,
    ...(histograms ? { histograms } : {}),
    runs: s.runs.map(({ histograms: _drop, ...rest }) => rest),
  };
}

/** JSON.stringify with 2-space indentation, but arrays of numbers on one line (histogram counts). */
export function stringifyCompact(v: unknown): string {
  return JSON.stringify(v, null, 2).replace(/\[(\s*-?[\d.e+-]+(?:,\s*-?[\d.e+-]+)*\s*)\]/g, (_m, body: string) => `[${body.replace(/\s+/g, '')}]`);
}

export function writePeersReport(dir: string, base: string, report: PeersReport): { json: string; markdown: string; svg: string } {
  fs.mkdirSync(dir, { recursive: true });
  const json = path.join(dir, `${base}.json`);
  const markdown = path.join(dir, `${base}.md`);
  const svg = path.join(dir, `${base}.svg`);
  fs.writeFileSync(svg, renderChart(report));
  fs.writeFileSync(markdown, renderMarkdown(report, path.basename(svg)));
  fs.writeFileSync(json, `${stringifyCompact(report)}\n`);
  return { json, markdown, svg };
}
