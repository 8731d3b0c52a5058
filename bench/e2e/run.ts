/**
 * The end-to-end load generator for weir (`npm run bench -- …`):
 *
 *   node dist/bench/e2e/run.js --preset max-8p [--fsync always] [--runs 3] [--out bench/results/x.json]
 *   node dist/bench/e2e/run.js --partitions 4 --rate 20000 --message-size 512 --duration 20
 *   node dist/bench/e2e/run.js --list
 *
 * Each run starts a fresh broker child (`node bin/weir.js start --port 0 --data <tmp> --fsync …`),
 * runs the workload with producer and consumer threads of this process (each its own connection),
 * and stops the broker and removes its data directory, also on error or Ctrl-C.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { makeSecureSetup } from './secure.js';
import { buildReport, collectEnvironment, renderTable, writeReport, type Report } from './report.js';
import { buildWorkload, PRESETS, presetNames } from './presets.js';
import { waitForQuiet } from './proc.js';
import { runWorkload, type RunResult } from './runner.js';
import { projectRoot, snapshotWeirBuild, startWeirBroker, type WeirBrokerProcess, type WeirBuildSnapshot } from './weir-broker.js';
import { describeWorkload, parseBytes, type KeyDistribution, type Workload } from './workload.js';

/** Disturbed runs repeated at most this many times per series (--max-other-cores). */
const MAX_RETRIES = 10;

const USAGE = `usage: node dist/bench/e2e/run.js [--preset NAME] [options]

  --preset NAME         a named workload (--list shows them); options below override it
  --quick               short warm-up/duration (and a 64 MiB backlog) for smoke runs
  --runs N              repeat N times, each on a fresh broker; reports medians (default 1)
  --out FILE.json       write the JSON report, and FILE.md next to it

  --topics N            topics (default 1)
  --partitions N        partitions per topic (default 8)
  --message-size BYTES  payload bytes per message, ≥ 8 (default 100)
  --producers N         producers per topic, each on its own connection and thread (default 1)
  --consumers N         consumers per topic, one group per topic (default 1)
  --keys none|round-robin|random   key distribution (default none)
  --key-count N         distinct keys for round-robin/random (default 1000)
  --rate N              total target msg/s; 0 = max rate (default 0)
  --batch-size N        messages per produce batch (default 1000)
  --linger MS           at a fixed rate, longest a partial batch waits (default 1)
  --sleep-ms MS         at a fixed rate, sleep the last MS before each send with Atomics.wait
                        (sub-millisecond precision without spinning; default 0 = timers only)
  --thread-slice-us US  producer and consumer threads ask for a US µs scheduler slice (Linux >= 6.12;
                        default 0 = the kernel's; lat-5k-fine: 100)
  --timer-slack-ns NS   producer and consumer threads' timer slack (default 0 = the kernel's 50 µs;
                        lat-5k-fine: 1)
  --in-flight N         unacknowledged batches per producer (default 8)
  --max-backlog N       max rate: producers hold while N messages are unconsumed, so the run finds
                        the highest rate the consumers sustain (0 = flat out, the default)
  --warmup S            warm-up seconds (default 5)
  --duration S          measured seconds; for backlog, the drain time limit (default 30)
  --fsync MODE          never | always | interval:MS (default never)
  --backlog-bytes SIZE  backlog run: payload to write first, e.g. 2G, 64M
  --queue               consumers form one weir queue group (ack per message) instead of a consumer group
  --prefetch N          queue mode: unacknowledged messages per consumer (default 100)

  --credits N           weir consumer credit window per partition (default 10000)
  --check-crcs on|off   the SDK consumers check each record's CRC32C (ClientOptions.checkCrcs; default on)
  --secure              the broker serves wss:// (a private CA made for the series) and requires
                        authentication; clients trust the CA and send a JSON Web Token (bench/e2e/secure.ts)
  --cpu-prof DIR        run the broker under node --cpu-prof, profiles written to DIR
  --broker-arg ARG      extra \`weir start\` flag (repeatable), e.g. --broker-arg=--segment-bytes=268435456
  --broker-node-arg ARG extra node flag for the broker (repeatable), e.g. --broker-node-arg=--trace-gc
  --broker-log FILE     append the broker's stdout/stderr to FILE (default: only its stderr, to stderr)
  --url URL             use a running broker instead of starting one (no broker CPU/RSS)
  --wait-quiet S        before each run, wait up to S seconds for the machine to be idle
                        (< 0.15 cores busy over 8 s); each run reports "other cores" either way
  --max-other-cores X   discard and repeat (up to 10 times in the series) a run during which other
                        processes used more than X cores (a disturbed run); see "other cores"
  --tick-ms MS          progress line / timeline interval (default 1000)
  --list                list presets
`;

function int(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got ${JSON.stringify(v)}`);
  return n;
}

function commandLine(): string {
  const script = path.relative(process.cwd(), process.argv[1] ?? 'dist/bench/e2e/run.js');
  const quote = (a: string): string => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  return ['node', script, ...process.argv.slice(2)].map(quote).join(' ');
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      preset: { type: 'string' },
      quick: { type: 'boolean', default: false },
      runs: { type: 'string', default: '1' },
      out: { type: 'string' },
      topics: { type: 'string' },
      partitions: { type: 'string' },
      'message-size': { type: 'string' },
      producers: { type: 'string' },
      consumers: { type: 'string' },
      keys: { type: 'string' },
      'key-count': { type: 'string' },
      rate: { type: 'string' },
      'batch-size': { type: 'string' },
      linger: { type: 'string' },
      'sleep-ms': { type: 'string' },
      'thread-slice-us': { type: 'string' },
      'timer-slack-ns': { type: 'string' },
      'in-flight': { type: 'string' },
      'max-backlog': { type: 'string' },
      warmup: { type: 'string' },
      duration: { type: 'string' },
      fsync: { type: 'string' },
      'backlog-bytes': { type: 'string' },
      queue: { type: 'boolean' },
      prefetch: { type: 'string' },
      credits: { type: 'string' },
      'check-crcs': { type: 'string' },
      secure: { type: 'boolean', default: false },
      'cpu-prof': { type: 'string' },
      'broker-arg': { type: 'string', multiple: true },
      'broker-node-arg': { type: 'string', multiple: true },
      'broker-log': { type: 'string' },
      url: { type: 'string' },
      'wait-quiet': { type: 'string' },
      'tick-ms': { type: 'string' },
      'max-other-cores': { type: 'string' },
      list: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.list) {
    for (const name of presetNames()) process.stdout.write(`${name.padEnd(14)} ${PRESETS.get(name)!.description}\n`);
    return 0;
  }
  const keys = values.keys as KeyDistribution | undefined;
  const overrides: Partial<Workload> = {
    topics: int(values.topics, 'topics'),
    partitionsPerTopic: int(values.partitions, 'partitions'),
    messageSize: int(values['message-size'], 'message-size'),
    producersPerTopic: int(values.producers, 'producers'),
    consumersPerTopic: int(values.consumers, 'consumers'),
    keyDistribution: keys,
    keys: int(values['key-count'], 'key-count'),
    producerRate: int(values.rate, 'rate'),
    batchSize: int(values['batch-size'], 'batch-size'),
    lingerMs: int(values.linger, 'linger'),
    sleepMs: int(values['sleep-ms'], 'sleep-ms'),
    threadSliceUs: int(values['thread-slice-us'], 'thread-slice-us'),
    timerSlackNs: int(values['timer-slack-ns'], 'timer-slack-ns'),
    maxInFlightBatches: int(values['in-flight'], 'in-flight'),
    maxBacklog: int(values['max-backlog'], 'max-backlog'),
    warmupSeconds: int(values.warmup, 'warmup'),
    durationSeconds: int(values.duration, 'duration'),
    fsync: values.fsync,
    backlogBytes: values['backlog-bytes'] === undefined ? undefined : parseBytes(values['backlog-bytes']),
    consumeMode: values.queue ? 'queue' : undefined,
    prefetch: int(values.prefetch, 'prefetch'),
  };
  const workload = buildWorkload(values.preset, overrides, { quick: values.quick });
  const runs = Math.max(1, Math.floor(int(values.runs, 'runs') ?? 1));
  const credits = int(values.credits, 'credits');
  const cc = values['check-crcs'];
  if (cc !== undefined && cc !== 'on' && cc !== 'off') throw new Error(`--check-crcs must be on or off, got ${JSON.stringify(cc)}`);
  const checkCrcs = cc === undefined ? undefined : cc === 'on';
  const secure = values.secure ? await makeSecureSetup() : null;
  if (secure) process.once('exit', () => secure.dispose());
  const nodeArgs = [...(values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(values['cpu-prof'])}`] : []), ...(values['broker-node-arg'] ?? [])];
  const brokerLog = values['broker-log'] ? path.resolve(values['broker-log']) : null;
  const root = projectRoot();
  const command = commandLine();

  const abort = new AbortController();
  let interrupted = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    interrupted++;
    if (interrupted > 1) process.exit(130); // second Ctrl-C: the exit hook still kills the broker
    process.stderr.write(`\n${sig}: stopping (threads, broker, temp data)…\n`);
    abort.abort(new Error(`interrupted by ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const environment = collectEnvironment(root);
  process.stderr.write(`weir e2e — ${workload.name}: ${describeWorkload(workload)}\n`);
  const results: RunResult[] = [];
  // One build for the whole series: dist/ may be rebuilt while we run (npm test, another benchmark).
  const snapshot: WeirBuildSnapshot | null = values.url === undefined ? snapshotWeirBuild(root) : null;
  if (snapshot) process.stderr.write(`  broker and SDK build ${snapshot.hash}, run from a snapshot in ${snapshot.dir}\n`);
  const maxOther = values['max-other-cores'] === undefined ? null : Number(values['max-other-cores']);
  const discarded: string[] = [];
  try {
    await runSeries();
  } finally {
    snapshot?.remove();
  }

  async function runSeries(): Promise<void> {
    let retries = 0;
    for (let i = 0; i < runs; i++) {
      if (abort.signal.aborted) break;
      process.stderr.write(`run ${i + 1}/${runs}\n`);
      const quietFor = int(values['wait-quiet'], 'wait-quiet');
      if (quietFor !== undefined && quietFor > 0) {
        const quiet = await waitForQuiet({ timeoutMs: quietFor * 1000, signal: abort.signal });
        process.stderr.write(quiet ? '  machine is idle\n' : `  machine still busy after ${quietFor} s; running anyway\n`);
      }
      let broker: WeirBrokerProcess | null = null;
      // A broker that dies mid-run (crash, or a signal from another process) fails the run.
      const runAbort = new AbortController();
      const onOuter = (): void => runAbort.abort(abort.signal.reason);
      abort.signal.addEventListener('abort', onOuter, { once: true });
      try {
        let url = values.url;
        if (snapshot) {
          broker = await startWeirBroker({
            root: snapshot.dir,
            fsync: workload.fsync,
            nodeArgs,
            args: [...(secure?.brokerArgs ?? []), ...(values['broker-arg'] ?? [])],
            ...(brokerLog ? { onOutput: (line: string, stream: 'stdout' | 'stderr') => fs.appendFileSync(brokerLog, `[run ${i + 1} ${stream}] ${line}\n`) } : {}),
          });
          url = broker.url;
          process.stderr.write(`  broker pid ${broker.pid} at ${url} (data ${broker.dataDir}, fsync ${workload.fsync})\n`);
          const pid = broker.pid;
          broker.onUnexpectedExit(({ code, signal }) => {
            const why = `the broker (pid ${pid}) exited during the run: code ${code}, signal ${signal}`;
            process.stderr.write(`  ERROR: ${why}\n`);
            runAbort.abort(new Error(why));
          });
        }
        const config: Record<string, unknown> = { url };
        if (credits !== undefined) config.credits = credits;
        if (checkCrcs !== undefined) config.checkCrcs = checkCrcs;
        if (secure) {
          config.token = secure.token;
          config.ca = secure.ca;
        }
        const result = await runWorkload({
          workload,
          driver: { module: snapshot?.driverModule ?? new URL('./drivers/weir.js', import.meta.url).href, config },
          brokerPids: broker ? [broker.pid] : [],
          signal: runAbort.signal,
          ...(values['tick-ms'] ? { tickMs: Math.max(50, int(values['tick-ms'], 'tick-ms')!) } : {}),
        });
        const other = result.machine.otherCores;
        if (maxOther !== null && other !== null && other > maxOther && retries < MAX_RETRIES) {
          retries++;
          discarded.push(`a run discarded and repeated: other processes used ${other.toFixed(2)} cores (limit ${maxOther}); it measured ${Math.round(result.produced.msgsPerSec)} msg/s`);
          process.stderr.write(`  other processes used ${other.toFixed(2)} cores during the window (limit ${maxOther}): discarding this run and repeating it\n`);
          i--;
          continue;
        }
        results.push(result);
        if (other !== null && other > 0.1) {
          process.stderr.write(`  WARNING: other processes used ${other.toFixed(2)} cores during the window: this run was disturbed\n`);
        }
      } finally {
        abort.signal.removeEventListener('abort', onOuter);
        if (broker) {
          const status = await broker.stop();
          if (status.code !== 0 && status.code !== null) process.stderr.write(`  broker exited with code ${status.code}\n`);
        }
      }
    }
  }
  if (results.length === 0) return 1;
  const brokerCommand = ['node', ...nodeArgs, 'bin/weir.js start --port 0 --data <tmp> --fsync', workload.fsync, ...(values['broker-arg'] ?? [])].join(' ');
  const report: Report = buildReport({
    command,
    preset: workload.name,
    driver: results[0]!.driver,
    workload,
    runs: results,
    notes: [
      ...discarded.map((d) => `Disturbed machine: ${d}.`),
      ...(snapshot ? [`Broker and SDK build (hash of dist/src): ${snapshot.hash}, copied at the start and used for every run.`] : []),
      values.url
        ? `Broker: already running at ${values.url} (not started by this command; no broker CPU/RSS).`
        : `Broker: a fresh child process per run, \`${brokerCommand}\`; producers and consumers are worker threads of the load generator, each with its own connection, on the same machine.`,
    ],
    environment,
  });
  const commitAtEnd = collectEnvironment(root).commit;
  if (commitAtEnd !== environment.commit) report.notes.push(`The git commit changed during the series: ${environment.commit} at the start, ${commitAtEnd} at the end.`);
  process.stdout.write(`\n${renderTable(report)}\n`);
  if (values.out) {
    const files = writeReport(values.out, report);
    process.stderr.write(`wrote ${path.relative(process.cwd(), files.json)} and ${path.relative(process.cwd(), files.markdown)}\n`);
  }
  return abort.signal.aborted ? 130 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const interrupted = err instanceof Error && err.message.startsWith('interrupted by');
    process.stderr.write(`e2e: ${err instanceof Error ? (interrupted ? err.message : (err.stack ?? err.message)) : String(err)}\n`);
    process.exitCode = 1;
  },
);
