/**
 * `npm run bench:peers [-- options]`: weir side by side with NATS JetStream, RabbitMQ (quorum and
 * classic queues) and Redis Streams on this machine, through the same load generator
 * (bench/e2e/runner.ts) with one Driver per system.
 *
 *   install (apt, only what is missing; distro services stopped)
 *   → for each preset, for each run, for each system: start a fresh server (temp dir, loopback,
 *     free port) → run the preset → stop it by PID
 *   → one table (stdout) + bench/results/<date>-peers.{json,md,svg}
 *
 * Options:
 *   --presets a,b        e2e presets (default max-8p,lat-5k,lat-5k-fine)
 *   --peers a,b          nats (= nats-jetstream + nats-jetstream-async), redis, rabbitmq (= rabbitmq-quorum +
 *                        rabbitmq-classic), or single system names
 *   --fsync MODE         weir's never | always | interval:MS; peers get their closest setting
 *   --weir-arg ARG       extra `weir start` flag (repeatable), e.g. --weir-arg=--actor-host=gateway;
 *                        named in the report
 *   --runs N             runs per system and preset (medians are reported; default 1)
 *   --duration S         measured seconds (default 15); --warmup S (default 5)
 *   --quick              1 s warm-up, 5 s measured (smoke test)
 *   --no-install         do not run apt-get; skip peers that are not installed
 *   --out DIR            results directory (default bench/results)
 *   --name NAME          file base name (default <date>-peers[-fsync-MODE][-quick])
 *   --wait-idle S        before each run, wait up to S seconds for the machine to be idle (default 600;
 *                        a run that starts on a busy machine is reported as disturbed)
 *   --retries N          re-run a run that another process disturbed (≥ 0.2 core on average), up to N times (default 3)
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildWorkload, PRESETS } from '../e2e/presets.js';
import type { Workload } from '../e2e/workload.js';
import { collectEnvironment } from '../e2e/report.js';
import { runWorkload } from '../e2e/runner.js';
import { projectRoot } from '../e2e/weir-broker.js';
import { ensurePeersInstalled, havePeer, stopDistroServices, type PeerName } from './install.js';
import { finalize, renderTerminal, writePeersReport, type PeersReport, type PresetResult, type SystemResult } from './report.js';
import { probeFdatasync } from './disk.js';
import { describeIdle, DisturbanceMonitor, waitForIdle } from './idle.js';
import { parseFsyncSpec } from './servers/types.js';
import { parsePeers, startSystem, SYSTEM_PEER, weirDurability, type PeerSystem, type RunningSystem, type SystemName } from './systems.js';

/** Busy share of the 2 cores above which the machine is not idle (another benchmark or build running). */
const IDLE_THRESHOLD = 0.15;
/** Other processes using this much CPU (summed, on average) during a run disturb it (an idle weir broker uses ≈ 0.1). */
const DISTURBANCE_CORES = 0.2;

const MAPPING_NOTES = [
  'Partitions: weir topic with N partitions = NATS: one stream (file storage, 1 replica) with subjects <topic>.0…N-1; RabbitMQ: N durable queues <topic>.<p>; Redis: N stream keys <topic>:<p>. No key: a whole batch goes to one partition, round-robin per batch (as weir does); keys: murmur2 (weir\'s partitioner).',
  'Produce: every system acknowledges every message. weir: one produce request per batch (≤ 1000 msgs); nats-jetstream: one js.publish() per message awaiting its PubAck (client option noAsyncTraces: true); nats-jetstream-async: the same messages and PubAcks, but core publish() with a reply subject per message and one wildcard subscription collecting the PubAcks (nats.go\'s PublishAsync pattern; nats.js v2 has no such call), every PubAck checked; RabbitMQ: sendToQueue on a ConfirmChannel, persistent messages, confirm callback per message; Redis: one pipeline of XADD per batch. In flight: ≤ 8 batches per producer for every system.',
  'Consume: weir: consumer group, credit window 10 000 per partition; NATS: durable pull consumer, AckPolicy None, consume() with a 10 000-message buffer; RabbitMQ: prefetch 1 000 per queue consumer, manual acks with multiple=true every 200 messages or 20 ms; Redis: XREADGROUP … BLOCK 100 NOACK, COUNT 1000 per stream.',
  'Every system runs as a separate process on the same 2 cores as the load generator (its producer and consumer threads); servers are started fresh for each run with an empty data directory under the OS temp dir, listening on 127.0.0.1 only.',
];

/**
 * Presets a peer cannot run like for like: queue mode (one ack per message, prefetch) is RabbitMQ's
 * model, the peer the issue names for it; delayed delivery needs a broker feature none of the
 * Debian-packaged peers has (RabbitMQ's delayed-message exchange is a separate plugin; Redis Streams
 * and the packaged NATS server have none), and emulating it client-side would not measure the broker.
 */
function peerCannotRun(system: PeerSystem, w: Workload): string | null {
  if (w.delayMs > 0) return 'not run: no native delayed delivery in the packaged server';
  if (w.consumeMode === 'queue' && !system.startsWith('rabbitmq')) return 'not run: queue mode (ack per message) is compared with RabbitMQ';
  return null;
}

function parse(): {
  presets: string[];
  peers: PeerSystem[];
  fsync: ReturnType<typeof parseFsyncSpec>;
  weirArgs: string[];
  runs: number;
  duration: number;
  warmup: number;
  quick: boolean;
  install: boolean;
  out: string;
  name: string | undefined;
  waitIdleMs: number;
  retries: number;
} {
  const { values } = parseArgs({
    options: {
      presets: { type: 'string', default: 'max-8p,lat-5k,lat-5k-fine' },
      peers: { type: 'string', default: 'nats,rabbitmq,redis' },
      fsync: { type: 'string', default: 'never' },
      'weir-arg': { type: 'string', multiple: true },
      runs: { type: 'string', default: '1' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      quick: { type: 'boolean', default: false },
      'no-install': { type: 'boolean', default: false },
      out: { type: 'string' },
      name: { type: 'string' },
      'wait-idle': { type: 'string', default: '600' },
      retries: { type: 'string', default: '3' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: false,
  });
  if (values.help) {
    const src = fs.readFileSync(new URL(import.meta.url), 'utf8');
    process.stdout.write(`${/\/\*\*([\s\S]*?)\*\//.exec(src)?.[1]?.replace(/^ \* ?/gm, '') ?? ''}\n`);
    process.exit(0);
  }
  const presets = values.presets.split(',').map((s) => s.trim()).filter(Boolean);
  for (const p of presets) if (!PRESETS.has(p)) throw new Error(`unknown preset ${p}; presets: ${[...PRESETS.keys()].join(', ')}`);
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be an integer ≥ 1');
  const num = (v: string | undefined, d: number, name: string): number => {
    if (v === undefined) return d;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number`);
    return n;
  };
  return {
    presets,
    peers: parsePeers(values.peers),
    fsync: parseFsyncSpec(values.fsync),
    weirArgs: values['weir-arg'] ?? [],
    runs,
    duration: num(values.duration, 15, 'duration'),
    warmup: num(values.warmup, 5, 'warmup'),
    quick: values.quick,
    install: !values['no-install'],
    out: values.out ?? path.join(projectRoot(), 'bench', 'results'),
    name: values.name,
    waitIdleMs: Number(values['wait-idle']) * 1000 || 0,
    retries: Math.max(0, Math.floor(Number(values.retries) || 0)),
  };
}

async function main(): Promise<void> {
  const opts = parse();
  const root = projectRoot();
  const log = (s: string): void => void process.stderr.write(`${s}\n`);
  const env = collectEnvironment(root);
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
  const weirVersion = `weir ${pkg.version} (${env.commit})`;

  // ------------------------------------------------------------------------------ install
  const wantedPeers = [...new Set(opts.peers.map((s) => SYSTEM_PEER[s]))] as PeerName[];
  const installLog: string[] = [];
  const unavailable = new Map<PeerName, string>();
  if (wantedPeers.length > 0) {
    log(`install: checking ${wantedPeers.join(', ')}${opts.install ? '' : ' (--no-install)'}`);
    if (opts.install) {
      const r = ensurePeersInstalled(wantedPeers);
      installLog.push(...r.log);
      for (const f of r.failed) unavailable.set(f.peer, `not installed: \`${f.command}\` failed: ${f.error}`);
    } else {
      installLog.push(...stopDistroServices(wantedPeers));
      for (const p of wantedPeers.filter((x) => !havePeer(x))) unavailable.set(p, 'not installed and --no-install given');
    }
    for (const l of installLog) log(`  ${l}`);
    for (const [p, why] of unavailable) log(`  SKIP ${p}: ${why}`);
  }

  const disk = probeFdatasync();
  log(`disk: 4 KiB append + fdatasync in ${disk.dir}: p50 ${disk.p50Ms} ms, p99 ${disk.p99Ms} ms`);

  // ------------------------------------------------------------------------------ signals
  const abort = new AbortController();
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    log(`\n${sig}: stopping the current run and server`);
    abort.abort(new Error(`interrupted by ${sig}`));
    setTimeout(() => process.exit(130), 60_000).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  // ------------------------------------------------------------------------------ runs
  const systems: SystemName[] = ['weir', ...opts.peers];
  const presets: PresetResult[] = [];
  for (const preset of opts.presets) {
    const workload = buildWorkload(
      preset,
      { fsync: opts.fsync, ...(opts.quick ? {} : { durationSeconds: opts.duration, warmupSeconds: opts.warmup }) },
      { quick: opts.quick },
    );
    const results = new Map<SystemName, SystemResult>(
      systems.map((s) => [
        s,
        { system: s, version: s === 'weir' ? weirVersion : '', durability: s === 'weir' ? weirDurability(opts.fsync) : { short: 'n/a', setting: 'n/a', exact: false }, runs: [], summary: null, problems: [] },
      ]),
    );
    presets.push({ preset, description: PRESETS.get(preset)!.description, workload, systems: [] });
    for (let run = 1; run <= opts.runs && !interrupted; run++) {
      for (const system of systems) {
        if (interrupted) break;
        const res = results.get(system)!;
        if (system !== 'weir') {
          const unfit = peerCannotRun(system as PeerSystem, workload);
          if (unfit !== null) {
            if (!res.problems.includes(unfit)) res.problems.push(unfit);
            continue;
          }
          const peer = SYSTEM_PEER[system as PeerSystem];
          const why = unavailable.get(peer);
          if (why !== undefined) {
            if (!res.problems.includes(why)) res.problems.push(why);
            continue;
          }
        }
        for (let attempt = 1; attempt <= opts.retries + 1 && !interrupted; attempt++) {
          const tag = `run ${run}${attempt > 1 ? ` (attempt ${attempt})` : ''}`;
          log(`\n=== ${preset} · ${system} · ${tag}/${opts.runs}`);
          const idle = await waitForIdle(IDLE_THRESHOLD, opts.waitIdleMs, log);
          const busyBefore = idle.busy > IDLE_THRESHOLD ? `started on a busy machine: ${describeIdle(idle)}` : null;
          let sys: RunningSystem;
          try {
            sys = await startSystem(system, opts.fsync, weirVersion, opts.weirArgs);
          } catch (e) {
            const msg = `server did not start: ${(e as Error).message.split('\n').slice(0, 6).join(' | ')}`;
            log(`  SKIP: ${msg}`);
            res.problems.push(msg);
            if (system !== 'weir') unavailable.set(SYSTEM_PEER[system as PeerSystem], msg);
            break;
          }
          res.version = sys.version;
          res.durability = sys.durability;
          log(`  ${sys.version}; durability: ${sys.durability.setting}${sys.durability.exact ? '' : ` (≠ ${sys.durability.note ?? ''})`}; pids ${sys.cpuPids.join(',')}`);
          const monitor = new DisturbanceMonitor();
          monitor.start();
          let disturbed: string | null = busyBefore;
          try {
            const r = await runWorkload({ workload, driver: sys.driver, brokerPids: sys.cpuPids, log, signal: abort.signal, topicPrefix: 'peers' });
            const others = monitor.stop(0.05);
            if (others.otherCores >= DISTURBANCE_CORES) {
              const who = others.top.slice(0, 3).map((o) => `pid ${o.pid} ${o.cores.toFixed(2)} cores: ${o.cmd}`).join('; ');
              disturbed = `disturbed: other processes used ${others.otherCores.toFixed(2)} cores on average${who ? ` (${who})` : ' (short-lived)'}`;
            }

            log(
              `  → ${Math.round(r.produced.msgsPerSec).toLocaleString('en-US')} prod/s, ${Math.round(r.consumed.msgsPerSec).toLocaleString('en-US')} cons/s, e2e p50 ${r.endToEndLatencyMs.p50} ms p99 ${r.endToEndLatencyMs.p99} ms, CPU ${r.broker?.cpuSecondsPerMillionMessages?.toFixed(2) ?? 'n/a'} s/M`,
            );
            if (disturbed !== null && attempt <= opts.retries) {
              log(`  ! ${tag} ${disturbed}: discarded, retrying`);
              res.problems.push(`${tag} discarded, ${disturbed}`);
              continue;
            }
            if (disturbed !== null) {
              log(`  ! ${tag} ${disturbed}: kept (no retries left)`);
              res.problems.push(`${tag} kept although ${disturbed}`);
            }
            res.runs.push({ ...r, otherCores: Math.round(others.otherCores * 100) / 100 });
            for (const e of r.errors) res.problems.push(`${tag}: ${e}`);
            break;
          } catch (e) {
            const msg = `${tag} failed: ${(e as Error).message.split('\n')[0]}`;
            log(`  ! ${msg}`);
            res.problems.push(msg);
            break;
          } finally {
            const how = await sys.stop().catch((e: unknown) => `stop failed: ${(e as Error).message}`);
            log(`  stopped: ${how}`);
          }
        }
      }
    }
    presets[presets.length - 1]!.systems = systems.map((s) => finalize(results.get(s)!));
  }

  // ------------------------------------------------------------------------------ report
  const date = new Date().toISOString();
  const report: PeersReport = {
    tool: 'weir-peers',
    version: 1,
    environment: { ...env, date },
    command: `npm run bench:peers -- ${process.argv.slice(2).join(' ')}`.trim(),
    fsync: opts.fsync,
    weirArgs: opts.weirArgs,
    runsPerSystem: opts.runs,
    install: installLog,
    disk,
    presets,
    notes: MAPPING_NOTES,
  };
  process.stdout.write(`\n${renderTerminal(report)}\n`);
  const base = opts.name ?? `${date.slice(0, 10)}-peers${opts.fsync === 'never' ? '' : `-fsync-${opts.fsync.replace(':', '')}`}${opts.quick ? '-quick' : ''}`;
  const files = writePeersReport(opts.out, base, report);
  process.stdout.write(`\nwrote ${path.relative(process.cwd(), files.json)}, ${path.relative(process.cwd(), files.markdown)}, ${path.relative(process.cwd(), files.svg)}\n`);
  if (interrupted) process.exitCode = 130;
}


main().catch((e: unknown) => {
  process.stderr.write(`bench:peers failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
