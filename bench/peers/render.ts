/**
 * Re-renders the Markdown and SVG of a side-by-side JSON report (after a change to the report or
 * chart code, without re-running the benchmark):
 *
 *   node dist/bench/peers/render.js bench/results/<date>-peers.json
 */
import fs from 'node:fs';
import path from 'node:path';
import { finalize, renderTerminal, writePeersReport, type PeersReport } from './report.js';

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: node dist/bench/peers/render.js REPORT.json\n');
  process.exit(2);
}
const report = JSON.parse(fs.readFileSync(file, 'utf8')) as PeersReport;
if (report.tool !== 'weir-peers') throw new Error(`${file} is not a weir-peers report`);
// Older reports kept every run's histograms: compact them the way run.ts now does.
for (const p of report.presets) p.systems = p.systems.map(finalize);
const files = writePeersReport(path.dirname(file), path.basename(file, '.json'), report);
process.stdout.write(`${renderTerminal(report)}\n\nwrote ${files.markdown}, ${files.svg}\n`);
