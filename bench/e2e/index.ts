/**
 * The load generator as a library (bench/peers builds on it). Nothing here is weir-specific except
 * `startWeirBroker` and the weir driver module (drivers/weir.ts), which callers reference by URL.
 *
 *   const result = await runWorkload({
 *     workload: buildWorkload('max-8p', { durationSeconds: 10 }),
 *     driver: { module: new URL('./drivers/nats.js', import.meta.url).href, config: { url } },
 *     brokerPids: [serverPid],
 *   });
 *   const report = buildReport({ command, preset: 'max-8p', driver: result.driver, workload: result.workload, runs: [result] });
 *   console.log(renderTable(report)); writeReport('out.json', report);
 */
export { Histogram, type HistogramJSON, type HistogramOptions } from '../../src/common/histogram.js';
export { DEFAULT_WORKLOAD, validateWorkload, describeWorkload, parseBytes, formatBytes, type Workload, type KeyDistribution } from './workload.js';
export { PRESETS, presetNames, buildWorkload, quickOverrides, type Preset } from './presets.js';
export {
  loadDriver,
  type Driver,
  type DriverConfig,
  type DriverModule,
  type DriverSpec,
  type DriverSubscribeOptions,
  type DriverSubscription,
  type MessageListener,
  type ProduceBatch,
} from './driver.js';
export { runWorkload, type RunOptions, type RunResult, type TimelinePoint, type BrokerUsage, type BacklogResult, type Rate, type Phase } from './runner.js';
export { latencyHistogram, summarizeLatency, mergeHistograms, LATENCY_LAYOUT, type LatencySummary, type Counters } from './stats.js';
export {
  buildReport,
  collectEnvironment,
  summarize,
  stat,
  renderTable,
  renderMarkdown,
  writeReport,
  type Report,
  type Summary,
  type Stat,
  type Environment,
} from './report.js';
export { ProcessSampler, readCpuSeconds, readMemory, readMachineBusySeconds, clockTicksPerSecond, waitForQuiet, type ResourceUsage } from './proc.js';
export { now, readStamp, writeStamp, STAMP_BYTES, sleep, within } from './clock.js';
export { startWeirBroker, projectRoot, type WeirBrokerProcess, type WeirBrokerOptions } from './weir-broker.js';
