/**
 * A hand-written SVG chart of a side-by-side report, no dependency: per preset, one row with
 *   - left: sustained throughput (msg/s) per system, horizontal bars (fixed-rate presets: broker
 *     CPU seconds per million messages instead, since every system carries the same rate);
 *   - right: end-to-end latency by percentile (p50 … p99.99, the "nines" on an evenly spaced
 *     axis, milliseconds on a log axis), one line per system, from the runs' merged histograms.
 */
import type { PeersReport, SystemResult } from './report.js';
import { isMaxRate, mergedEndToEnd, sustained } from './report.js';

const COLORS: Record<string, string> = {
  weir: '#d62728',
  'nats-jetstream': '#1f77b4',
  'nats-jetstream-async': '#17becf',
  'rabbitmq-quorum': '#ff7f0e',
  'rabbitmq-classic': '#9467bd',
  'redis-streams': '#2ca02c',
};

const PERCENTILES = [50, 90, 99, 99.9, 99.99];
const W = 1320;
const ROW_H = 330;
const TOP = 50;

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmtInt = (v: number): string => Math.round(v).toLocaleString('en-US');
const fmtTick = (v: number): string => (v >= 1 ? fmtInt(v) : String(Number(v.toPrecision(1))));
const fmtMs = (v: number): string => (v >= 100 ? `${Math.round(v)}` : v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toFixed(3));

function text(x: number, y: number, s: string, attrs = ''): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${esc(s)}</text>`;
}

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/**
 * Bars per system. Max-rate presets: sustained msg/s. Fixed-rate presets (every system carries the
 * same rate, so throughput says nothing): broker CPU seconds per million messages.
 */
function barPanel(x0: number, y0: number, w: number, h: number, systems: SystemResult[], maxRate: boolean): string {
  const out: string[] = [];
  const data = systems.map((s) => ({
    s,
    v: s.summary ? (maxRate ? sustained(s.summary) : s.summary.brokerCpuSecondsPerMillionMessages.median) : null,
  }));
  const fmt = maxRate ? fmtInt : (v: number): string => v.toFixed(1);
  const max = niceMax(Math.max(1, ...data.map((d) => d.v ?? 0)));
  const labelW = 160;
  const plotX = x0 + labelW;
  const plotW = w - labelW - 70;
  const barH = Math.min(34, (h - 40) / Math.max(1, data.length) - 8);
  out.push(text(x0, y0 - 8, maxRate ? 'sustained throughput (msg/s, higher is better)' : 'broker CPU seconds per million messages (lower is better)', 'font-size="13" font-weight="bold"'));
  // grid
  for (let i = 0; i <= 4; i++) {
    const gx = plotX + (plotW * i) / 4;
    out.push(`<line x1="${gx}" y1="${y0}" x2="${gx}" y2="${y0 + h - 30}" stroke="#ddd"/>`);
    out.push(text(gx, y0 + h - 14, fmt((max * i) / 4), 'font-size="11" text-anchor="middle" fill="#555"'));
  }
  data.forEach(({ s, v }, i) => {
    const y = y0 + 10 + i * (barH + 8);
    out.push(text(plotX - 8, y + barH / 2 + 4, s.system, 'font-size="12" text-anchor="end"'));
    if (v === null) {
      out.push(text(plotX + 4, y + barH / 2 + 4, s.problems.length > 0 ? 'skipped (see report)' : 'n/a', 'font-size="11" fill="#888"'));
      return;
    }
    const bw = (plotW * v) / max;
    out.push(`<rect x="${plotX}" y="${y}" width="${bw.toFixed(1)}" height="${barH.toFixed(1)}" fill="${COLORS[s.system] ?? '#777'}"${s.durability.exact ? '' : ' fill-opacity="0.55" stroke="#333" stroke-dasharray="4 2"'}/>`);
    out.push(text(plotX + bw + 4, y + barH / 2 + 4, `${fmt(v)}${s.durability.exact ? '' : ' ≠'}`, 'font-size="11"'));
  });
  return out.join('\n');
}

function latencyPanel(x0: number, y0: number, w: number, h: number, systems: SystemResult[]): string {
  const out: string[] = [];
  const series = systems
    .map((s) => {
      const hist = mergedEndToEnd(s);
      return hist ? { s, pts: PERCENTILES.map((p) => hist.percentile(p) / 1000) } : null;
    })
    .filter((x): x is { s: SystemResult; pts: number[] } => x !== null);
  out.push(text(x0, y0 - 8, 'end-to-end latency by percentile (ms, log scale)', 'font-size="13" font-weight="bold"'));
  const plotX = x0 + 50;
  const plotW = w - 50 - 280;
  const plotH = h - 40;
  if (series.length === 0) {
    out.push(text(plotX, y0 + 40, 'no data', 'font-size="12" fill="#888"'));
    return out.join('\n');
  }
  const all = series.flatMap((s) => s.pts).filter((v) => v > 0);
  const lo = Math.floor(Math.log10(Math.max(1e-3, Math.min(...all))));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...all))));
  const yOf = (v: number): number => y0 + plotH - ((Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo)) * plotH;
  const xOf = (i: number): number => plotX + (plotW * i) / (PERCENTILES.length - 1);
  for (let d = lo; d <= hi; d++) {
    const y = yOf(10 ** d);
    out.push(`<line x1="${plotX}" y1="${y.toFixed(1)}" x2="${plotX + plotW}" y2="${y.toFixed(1)}" stroke="#ddd"/>`);
    out.push(text(plotX - 6, y + 4, fmtTick(10 ** d), 'font-size="11" text-anchor="end" fill="#555"'));
  }
  PERCENTILES.forEach((p, i) => {
    out.push(`<line x1="${xOf(i)}" y1="${y0}" x2="${xOf(i)}" y2="${y0 + plotH}" stroke="#eee"/>`);
    out.push(text(xOf(i), y0 + plotH + 16, `p${p}`, 'font-size="11" text-anchor="middle" fill="#555"'));
  });
  series.forEach(({ s, pts }, k) => {
    const color = COLORS[s.system] ?? '#777';
    const d = pts.map((v, i) => `${i === 0 ? 'M' : 'L'}${xOf(i).toFixed(1)},${yOf(v).toFixed(1)}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${s.durability.exact ? '' : ' stroke-dasharray="6 3"'}/>`);
    pts.forEach((v, i) => out.push(`<circle cx="${xOf(i).toFixed(1)}" cy="${yOf(v).toFixed(1)}" r="3" fill="${color}"><title>${esc(`${s.system} p${PERCENTILES[i]}: ${fmtMs(v)} ms`)}</title></circle>`));
    const ly = y0 + 10 + k * 18;
    const lx = plotX + plotW + 16;
    out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 20}" y2="${ly}" stroke="${color}" stroke-width="2"${s.durability.exact ? '' : ' stroke-dasharray="6 3"'}/>`);
    out.push(text(lx + 24, ly + 4, `${s.system} (p99 ${fmtMs(pts[2]!)} all runs)`, 'font-size="11"'));
  });
  return out.join('\n');
}

export function renderChart(report: PeersReport): string {
  const H = TOP + report.presets.length * ROW_H + 40;
  const e = report.environment;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    text(20, 26, `weir side by side (weir --fsync ${report.fsync}) — ${e.date.slice(0, 10)}, commit ${e.commit}, Node ${e.node}, ${e.cpuModel}, ${e.cores} cores`, 'font-size="15" font-weight="bold"'),
  ];
  report.presets.forEach((p, i) => {
    const y = TOP + i * ROW_H;
    parts.push(text(20, y + 14, `${p.preset}: ${p.description}`, 'font-size="13" fill="#333"'));
    parts.push(barPanel(20, y + 44, 560, ROW_H - 60, p.systems, isMaxRate(p.workload)));
    parts.push(latencyPanel(620, y + 44, W - 640, ROW_H - 60, p.systems));
  });
  parts.push(text(20, H - 14, 'Dashed / pale: durability not the same contract as weir\'s for this run (see the markdown report). Medians of the runs; latency lines from the merged histograms.', 'font-size="11" fill="#555"'));
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
