/**
 * `weir start | produce | consume | topics | groups | txn | dlq | verify | users`. `start` runs a broker in this process until SIGINT or
 * SIGTERM, then shuts down gracefully (stop accepting, drain rings, flush, fsync, close).
 */
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import diagnostics_channel from 'node:diagnostics_channel';
import fs from 'node:fs';
import { Broker, isLoopbackHost, parseActorHost, type BrokerOptions } from '../broker.js';
import { WeirError } from '../common/errors.js';
import { WeirCode } from '../protocol/error-codes.js';
import type { JwtOptions, TenantConfig } from '../security/index.js';
import { applyThreadSlice, nativeIo, nativeIoStatus, raiseOpenFileLimit } from '../common/native-io.js';
import { logBrokerEvents } from './event-log.js';

const USAGE = `usage:
  weir start [--port 7070] [--host 127.0.0.1] [--data ./data] [--partitions 8] [--fsync never|interval:MS|always]
             [--segment-bytes N] [--retention-bytes N] [--retention-ms N] [--segment-ms N] [--max-frame-bytes N] [--max-message-bytes N]
             (--retention-ms: records older are deleted segment by segment, quiet topics too; --segment-ms: roll a segment at this age, default retention/4)
             [--page-cache-bytes N]   (per partition: newest bytes kept in the OS page cache, older ones dropped once written back; default 32 MiB, 0 = the kernel decides)
             [--sched-slice-us N]     (the gateway thread's scheduler slice, Linux >= 6.12: it preempts longer-slice threads when a request wakes it; default 100, 0 = the kernel's)
             [--actors-per-thread N|auto]   (partition actors per worker thread; auto = spread each topic over the cores)
             [--actor-host auto|threads|gateway] (gateway = partition actors on the gateway's thread: less CPU at low rates; auto = there while a topic is quiet, threads while it is busy)
             [--idle-release-ms N]    (a partition quiet this long frees its buffers and closes its files; default 10000)
             [--tls-cert FILE --tls-key FILE [--tls-ca FILE]]   (serve wss://; key passphrase from WEIR_TLS_PASSPHRASE; reloaded on SIGHUP and when the files change;
                                                       --tls-ca: client certificates are requested and, when presented, must be signed by it)
             [--allowed-origin ORIGIN ...]   (browser pages allowed to connect, e.g. https://app.example.com; others get 403)
             [--max-connections-per-ip N]    (default 100)   [--insecure]   (listen on a non-loopback --host without authentication)
             [--users FILE] [--roles FILE] [--token-file FILE] [--audit-log FILE]   (authentication and permissions: docs/security.md)
             [--jwt-secret-file FILE] [--jwt-public-key FILE ...] [--jwt-alg RS256|ES256|EdDSA] [--jwt-jwks FILE]
             [--jwt-issuer ISS] [--jwt-audience AUD] [--jwt-clock-skew MS]
             [--produce-quota BYTES/s] [--consume-quota BYTES/s]   (per principal, e.g. 200KB/s or 1MiB/s; over it its answers and deliveries are held back)
             [--max-connections-per-principal N]   (default 1000)   [--tenants FILE]   (JSON list of {name, prefix, maxTopics?, maxStorageBytes?})
  weir topics [list | create NAME [--partitions N] | describe NAME] [--url ws://127.0.0.1:7070]
  weir produce TOPIC [--url URL] [--key K] [--key-sep SEP] [--header k=v ...] [--idempotent]   (one message per stdin line)
  weir consume TOPIC [--url URL] [--group G] [--from earliest|latest|OFFSET|@TIMESTAMP] [--count N] [--queue [--prefetch N]]
  weir consume --pattern 'orders.*.paid' [same options]   (* one word, # zero or more)
  weir groups reset GROUP TOPIC (--to-earliest | --to-latest | --to-offset N | --to-timestamp ISO|MS) [--url URL]
  weir txn [list [--topic T] [--all] | commit TXN | rollback TXN] [--url URL]
  weir dlq [--url URL] read TOPIC [--max N] | redrive TOPIC   (dead letters of a queue topic)
  (every command that connects takes [--ca FILE] (or env WEIR_CA): the CA of a wss:// broker's certificate, when Node does not trust it)
  weir verify DATA_DIR [--topic T] [--partition N] [--json]   (check every record and index of a stopped broker's data, read-only)
  weir users [--users FILE] add NAME [--role R ...] [--tenant T] [--password-stdin | --no-password] [--api-key] | set-password NAME
             | remove NAME | list [--json] | add-key NAME | remove-key ID   (the users file of weir start --users FILE; weir users -h)
`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const io = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin };
  switch (command) {
    case 'start':
      return start(rest);
    case 'produce':
      return (await import('./commands/produce.js')).run(rest, io);
    case 'consume':
      return (await import('./commands/consume.js')).run(rest, io);
    case 'topics':
      return (await import('./commands/topics.js')).run(rest, io);
    case 'groups':
      return (await import('./commands/groups.js')).run(rest, io);
    case 'txn':
      return (await import('./commands/txn.js')).run(rest, io);
    case 'dlq':
      return (await import('./commands/dlq.js')).run(rest, io);
    case 'verify':
      return (await import('./commands/verify.js')).run(rest, io);
    case 'users':
      return (await import('./commands/users.js')).run(rest, io);
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`weir: unknown command ${JSON.stringify(command)}\n${USAGE}`);
      return 2;
  }
}

function int(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}

const RATE_UNITS: Readonly<Record<string, number>> = { '': 1, k: 1e3, m: 1e6, g: 1e9, ki: 1024, mi: 1024 ** 2, gi: 1024 ** 3 };

/** A byte rate: `200000`, `200KB/s`, `1MiB/s` (K, M, G: powers of 1000; Ki, Mi, Gi: of 1024). */
function byteRate(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]i?)?b?(?:\/s)?$/i.exec(v.trim());
  const n = m === null ? NaN : Number(m[1]) * RATE_UNITS[(m[2] ?? '').toLowerCase()]!;
  if (!(n >= 1 && Number.isFinite(n))) throw new WeirError(WeirCode.BAD_CONFIG, `--${name} must be a byte rate such as 200000, 200KB/s or 1MiB/s (got ${JSON.stringify(v)})`);
  return Math.floor(n);
}

/** `--users`, `--roles`, `--token-file`, `--audit-log` and `--jwt-*` as BrokerOptions.security (undefined: none given). */
function securityOptionsOf(values: Record<string, string | boolean | string[] | undefined>): NonNullable<BrokerOptions['security']> | undefined {
  const str = (name: string): string | undefined => values[name] as string | undefined;
  const alg = str('jwt-alg');
  if (alg !== undefined && alg !== 'RS256' && alg !== 'ES256' && alg !== 'EdDSA') throw new WeirError(WeirCode.BAD_CONFIG, `--jwt-alg must be RS256, ES256 or EdDSA (got ${JSON.stringify(alg)})`);
  const publicKeys = values['jwt-public-key'] as string[] | undefined;
  const jwt: JwtOptions = {
    ...(str('jwt-secret-file') !== undefined ? { secretFile: str('jwt-secret-file')! } : {}),
    ...(publicKeys !== undefined ? { publicKeyFiles: publicKeys } : {}),
    ...(alg !== undefined ? { alg } : {}),
    ...(str('jwt-jwks') !== undefined ? { jwksFile: str('jwt-jwks')! } : {}),
    ...(str('jwt-issuer') !== undefined ? { issuer: str('jwt-issuer')! } : {}),
    ...(str('jwt-audience') !== undefined ? { audience: str('jwt-audience')! } : {}),
    ...(str('jwt-clock-skew') !== undefined ? { clockSkewMs: int(str('jwt-clock-skew'), 'jwt-clock-skew')! } : {}),
  };
  const tokenFile = str('token-file');
  let token: string | undefined;
  if (tokenFile !== undefined) {
    try {
      token = fs.readFileSync(tokenFile, 'utf8').replace(/[\r\n]+$/, '');
    } catch (e) {
      throw new WeirError(WeirCode.BAD_CONFIG, `--token-file ${tokenFile}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
    }
  }
  const produceQuota = byteRate(str('produce-quota'), 'produce-quota');
  const consumeQuota = byteRate(str('consume-quota'), 'consume-quota');
  const quotas = {
    ...(produceQuota !== undefined ? { produceBytesPerSec: produceQuota } : {}),
    ...(consumeQuota !== undefined ? { consumeBytesPerSec: consumeQuota } : {}),
  };
  const perPrincipal = int(str('max-connections-per-principal'), 'max-connections-per-principal');
  const tenantsFile = str('tenants');
  let tenants: TenantConfig[] | undefined;
  if (tenantsFile !== undefined) {
    try {
      tenants = JSON.parse(fs.readFileSync(tenantsFile, 'utf8')) as TenantConfig[];
    } catch (e) {
      throw new WeirError(WeirCode.BAD_CONFIG, `--tenants ${tenantsFile}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
    }
  }
  const security = {
    ...(Object.keys(quotas).length > 0 ? { quotas } : {}),
    ...(perPrincipal !== undefined ? { maxConnectionsPerPrincipal: perPrincipal } : {}),
    ...(tenants !== undefined ? { tenants } : {}),
    ...(str('users') !== undefined ? { usersFile: str('users')! } : {}),
    ...(str('roles') !== undefined ? { rolesFile: str('roles')! } : {}),
    ...(token !== undefined ? { token } : {}),
    ...(str('audit-log') !== undefined ? { auditLog: str('audit-log')! } : {}),
    ...(Object.keys(jwt).length > 0 ? { jwt } : {}),
  };
  return Object.keys(security).length > 0 ? security : undefined;
}

async function start(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '7070' },
      host: { type: 'string', default: '127.0.0.1' },
      data: { type: 'string', default: './data' },
      partitions: { type: 'string', default: '8' },
      fsync: { type: 'string', default: 'never' },
      'segment-bytes': { type: 'string' },
      'retention-bytes': { type: 'string' },
      'retention-ms': { type: 'string' },
      'segment-ms': { type: 'string' },
      'page-cache-bytes': { type: 'string' },
      'sched-slice-us': { type: 'string', default: '100' },
      'max-frame-bytes': { type: 'string' },
      'max-message-bytes': { type: 'string' },
      'actors-per-thread': { type: 'string', default: 'auto' },
      'actor-host': { type: 'string', default: 'auto' },
      'test-hooks': { type: 'boolean', default: false },
      'idle-release-ms': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-ca': { type: 'string' },
      'allowed-origin': { type: 'string', multiple: true },
      'max-connections-per-ip': { type: 'string' },
      insecure: { type: 'boolean', default: false },
      users: { type: 'string' },
      roles: { type: 'string' },
      'token-file': { type: 'string' },
      'audit-log': { type: 'string' },
      'jwt-secret-file': { type: 'string' },
      'jwt-public-key': { type: 'string', multiple: true },
      'jwt-alg': { type: 'string' },
      'jwt-jwks': { type: 'string' },
      'jwt-issuer': { type: 'string' },
      'jwt-audience': { type: 'string' },
      'jwt-clock-skew': { type: 'string' },
      'produce-quota': { type: 'string' },
      'consume-quota': { type: 'string' },
      'max-connections-per-principal': { type: 'string' },
      tenants: { type: 'string' },
    },
    strict: true,
  });
  const tls = tlsFiles(values['tls-cert'], values['tls-key'], values['tls-ca']);
  const security = securityOptionsOf(values);
  const sliceUs = int(values['sched-slice-us'], 'sched-slice-us')!;
  // The process's main thread is the gateway's (and a quiet topic's partition actors'): every
  // request wakes it. A short slice lets it preempt whatever runs when a request arrives.
  // Set here, not in Broker: an embedding app owns its main thread.
  const sliceProblem = sliceUs > 0 ? applyThreadSlice(sliceUs) : null;
  // V8's memory reducer takes a heap that allocates little for an idle one and runs full GCs to
  // shrink it, which drop the hot functions' code: with little garbage per request that cost more
  // CPU than the garbage saved (docs/performance.md). The
  // broker's heaps stay small; keep them as they are. Process-wide, so set here, not in Broker.
  v8.setFlagsFromString('--no-memory-reducer-for-small-heaps');
  // A socket per client, files per partition. Process-wide too.
  const files = raiseOpenFileLimit();
  const gateway: Record<string, number> = {};
  const mf = int(values['max-frame-bytes'], 'max-frame-bytes');
  const mm = int(values['max-message-bytes'], 'max-message-bytes');
  if (mf !== undefined) gateway.maxFrameBytes = mf;
  if (mm !== undefined) gateway.maxMessageBytes = mm;
  const perIp = int(values['max-connections-per-ip'], 'max-connections-per-ip');
  if (perIp !== undefined) gateway.maxConnectionsPerAddress = perIp;
  // Before the start: what recovery finds (torn tails, damage) is logged too.
  logBrokerEvents((line) => process.stderr.write(`weir: ${line.level === 'info' ? '' : `${line.level.toUpperCase()} `}${line.text}\n`));
  const broker = await Broker.start({
    dataDir: values.data!,
    host: values.host!,
    port: int(values.port, 'port')!,
    defaultPartitions: int(values.partitions, 'partitions')!,
    fsync: values.fsync!,
    ...(values['segment-bytes'] ? { segmentBytes: int(values['segment-bytes'], 'segment-bytes')! } : {}),
    ...(values['retention-bytes'] ? { retentionBytes: int(values['retention-bytes'], 'retention-bytes')! } : {}),
    ...(values['retention-ms'] ? { retentionMs: int(values['retention-ms'], 'retention-ms')! } : {}),
    ...(values['segment-ms'] ? { segmentMs: int(values['segment-ms'], 'segment-ms')! } : {}),
    ...(values['page-cache-bytes'] ? { pageCacheBytes: int(values['page-cache-bytes'], 'page-cache-bytes')! } : {}),
    gateway,
    actorsPerThread: values['actors-per-thread'] === 'auto' ? 'auto' : int(values['actors-per-thread'], 'actors-per-thread')!,
    actorHost: parseActorHost(values['actor-host']),
    testHooks: values['test-hooks']!,
    ...(values['idle-release-ms'] ? { idleReleaseMs: int(values['idle-release-ms'], 'idle-release-ms')! } : {}),
    ...(tls !== undefined ? { tls } : {}),
    ...(values['allowed-origin'] !== undefined ? { allowedOrigins: values['allowed-origin'] } : {}),
    insecure: values.insecure!,
    ...(security !== undefined ? { security } : {}),
  });
  const limit = (n: number): string => (n < 0 ? 'unlimited' : String(n));
  const filesNote = typeof files === 'string' ? '' : `, open files ${limit(files.soft)}${files.before !== files.soft ? ` (raised from ${limit(files.before)})` : ''}`;
  process.stdout.write(
    `weir listening on ${broker.url}/ (data ${values.data} locked by ${broker.dataDirLock.kind === 'flock' ? 'flock' : 'pid file'}, fsync ${values.fsync}, actors on ${values['actor-host']}${filesNote})\n`,
  );
  if (!broker.authenticationRequired) {
    process.stdout.write(
      values.insecure && !isLoopbackHost(values.host!)
        ? `weir: WARNING no authentication and --insecure: anyone who can reach ${values.host} can read, write and delete every topic\n`
        : `weir: no authentication configured: listening on ${values.host} only, so only this machine can connect\n`,
    );
  }
  // What the broker could not take as stored (it serves the rest): say so once, at start.
  for (const problem of broker.topics.loadProblems) process.stderr.write(`weir: ${problem}\n`);
  for (const u of broker.topics.unavailable()) process.stderr.write(`weir: partition ${u.topic}/${u.partition} is not served: ${u.message ?? u.code ?? 'unknown error'}\n`);
  if (nativeIo === null) {
    const dropBehind = values['page-cache-bytes'] !== '0' ? 'page-cache drop-behind is off and ' : '';
    process.stderr.write(`weir: ${dropBehind}records are sealed by the slower JavaScript CRC32C and the data directory is locked by a pid file, not flock: the native I/O helper is ${nativeIoStatus}\n`);
  }
  if (typeof files === 'string' && nativeIo !== null) process.stderr.write(`weir: the open-file limit was not raised: ${files}\n`);
  if (sliceProblem !== null) process.stderr.write(`weir: --sched-slice-us ${sliceUs} not applied: ${sliceProblem}\n`);
  // With --actor-host auto, say where each topic goes and when (a move is a change of cost per message).
  diagnostics_channel.subscribe('weir:partition:move', (m) => {
    const { topic, to, ms } = m as { topic: string; to: string; ms: number };
    process.stdout.write(`weir: topic ${topic} now on ${to === 'gateway' ? "the gateway's thread" : 'worker threads'} (its requests held ${ms} ms during the move)\n`);
  });
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      process.stdout.write(`weir: ${signal}, shutting down\n`);
      broker.close().then(
        () => resolve(0),
        (err: unknown) => {
          process.stderr.write(`weir: shutdown failed: ${(err as Error).message}\n`);
          resolve(1);
        },
      );
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    // A renewed certificate without a restart (the outcome is logged from weir:tls:reload).
    if (tls !== undefined) process.on('SIGHUP', () => void broker.reloadTls('signal'));
    broker.onFatal((err) => {
      process.stderr.write(`weir: supervision gave up: ${err.message}\n`);
      resolve(1);
    });
  });
}

/** `--tls-cert` and `--tls-key` (both or neither), `--tls-ca`, the key's passphrase from WEIR_TLS_PASSPHRASE. */
function tlsFiles(certFile: string | undefined, keyFile: string | undefined, caFile: string | undefined): BrokerOptions['tls'] {
  if (certFile === undefined && keyFile === undefined) {
    if (caFile !== undefined) throw new Error('--tls-ca needs --tls-cert and --tls-key');
    return undefined;
  }
  if (certFile === undefined || keyFile === undefined) throw new Error('--tls-cert and --tls-key go together');
  const passphrase = process.env.WEIR_TLS_PASSPHRASE;
  return { certFile, keyFile, ...(caFile !== undefined ? { caFile } : {}), ...(passphrase ? { passphrase } : {}) };
}
