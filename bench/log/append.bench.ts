/**
 * PartitionLog benchmarks against bare-fs baselines (tinybench).
 *
 *   npx tsc -p tsconfig.build.json && node dist/bench/log/append.bench.js [--time=ms]
 *
 * Workload: batches of 1000 records of exactly 100 bytes (36-byte header + 64-byte value, no key,
 * the ~100 B messages of the 1M msgs/s target). Groups:
 *  1. append+flush, fsync never   vs  one fs.writeSync of the same bytes
 *  2. append+flush, fsync always  vs  fs.writeSync + fs.fdatasyncSync
 *  3. append with a flush every 8 MiB: mostly the CPU cost (stamp + CRC + copy) per batch
 *  0. sequential read(offset, 1 MiB, 10000)  vs  fs.readSync of 1 MiB (run first, page cache warm)
 * Disk use is bounded: the log runs with retentionBytes and the baselines wrap their file position.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { Bench, type Task } from 'tinybench';
import { PartitionLog } from '../../src/log/index.js';
import { F_HEADER_COUNT, F_KEY_LENGTH, F_MAGIC, F_VALUE_LENGTH, RECORD_MAGIC, writeU32 } from '../../src/protocol/record.js';

const RECORDS = 1000;
const RECORD_BYTES = 100;
const VALUE_BYTES = RECORD_BYTES - 36;
const BATCH_BYTES = RECORDS * RECORD_BYTES;
const WRAP_BYTES = 256 * 1024 * 1024;
const time = Number(process.argv.find((a) => a.startsWith('--time='))?.slice(7) ?? 2000);

function producerBatch(): Uint8Array {
  const b = new Uint8Array(BATCH_BYTES);
  for (let i = 0; i < RECORDS; i++) {
    const at = i * RECORD_BYTES;
    writeU32(b, at, RECORD_BYTES - 4);
    writeU32(b, at + F_KEY_LENGTH, 0xffffffff); // -1: no key
    writeU32(b, at + F_VALUE_LENGTH, VALUE_BYTES);
    b[at + F_HEADER_COUNT] = 0;
    b[at + F_MAGIC] = RECORD_MAGIC;
    for (let j = 0; j < VALUE_BYTES; j++) b[at + 36 + j] = (i + j) & 0xff;
  }
  return b;
}

const batch = producerBatch();
const root = fs.mkdtempSync(os.tmpdir() + '/weir-log-bench-');
let dirs = 0;
const newDir = () => `${root}/${dirs++}`;

function logFor(mode: 'never' | 'always', dir = newDir()): PartitionLog {
  return PartitionLog.open({ dir, fsync: { mode }, retentionBytes: WRAP_BYTES, writeBufferBytes: 8 * 1024 * 1024 });
}

function bareFile(): { fd: number; pos: number } {
  return { fd: fs.openSync(`${root}/bare-${dirs++}`, 'w+'), pos: 0 };
}

const never = logFor('never');
const always = logFor('always');
const cpuOnly = logFor('never');
const bareNever = bareFile();
const bareAlways = bareFile();

let flushes = 0;
function appendFlush(log: PartitionLog): void {
  log.append(batch, 0, BATCH_BYTES, RECORDS);
  log.flush();
  if (++flushes % 64 === 0) log.applyRetention();
}
/** Appends to a growing file like the log does (overwriting would skip block allocation and size updates). */
function bareWrite(f: { fd: number; pos: number }, sync: boolean): void {
  fs.writeSync(f.fd, batch, 0, BATCH_BYTES, f.pos);
  if (sync) fs.fdatasyncSync(f.fd);
  f.pos += BATCH_BYTES;
  if (f.pos >= WRAP_BYTES) {
    fs.ftruncateSync(f.fd, 0);
    f.pos = 0;
  }
}

// Read side: 32 MiB of records (one segment, in the page cache).
const readDir = newDir();
const readLog = logFor('never', readDir);
for (let i = 0; i < (32 * 1024 * 1024) / BATCH_BYTES; i++) {
  readLog.append(batch, 0, BATCH_BYTES, RECORDS);
  readLog.flush();
}
const readEnd = readLog.durableOffset;
let readAt = 0;
const bareRead = { fd: fs.openSync(`${readDir}/00000000000000000000.log`, 'r'), pos: 0 };
const readBuf = Buffer.allocUnsafeSlow(1 << 20);
const readSize = fs.fstatSync(bareRead.fd).size;
for (let p = 0; p < readSize; p += readBuf.length) fs.readSync(bareRead.fd, readBuf, 0, readBuf.length, p); // warm the cache

// Reads first (own Bench, own warmup), while the read log is still in the page cache.
const readBench = new Bench({ time, warmupTime: Math.min(500, time / 4) });
readBench
  .add('log read 1 MiB sequential', () => {
    const r = readLog.read(readAt, 1 << 20, 10_000);
    readAt = r.nextOffset >= readEnd ? 0 : r.nextOffset;
  })
  .add('baseline readSync 1 MiB', () => {
    const n = fs.readSync(bareRead.fd, readBuf, 0, readBuf.length, bareRead.pos);
    bareRead.pos = bareRead.pos + n >= readSize ? 0 : bareRead.pos + n;
  })
  .add('baseline readSync 1 MiB into a new Buffer', () => {
    const out = Buffer.allocUnsafeSlow(readBuf.length);
    const n = fs.readSync(bareRead.fd, out, 0, out.length, bareRead.pos);
    bareRead.pos = bareRead.pos + n >= readSize ? 0 : bareRead.pos + n;
  });
await readBench.warmup();
await readBench.run();

const bench = new Bench({ time, warmupTime: Math.min(500, time / 4) });
bench
  .add('log append+flush, fsync never', () => appendFlush(never))
  .add('baseline writeSync, no sync', () => bareWrite(bareNever, false))
  .add('log append+flush, fsync always', () => appendFlush(always))
  .add('baseline writeSync + fdatasync', () => bareWrite(bareAlways, true))
  .add('log append, flush every 8 MiB', () => {
    cpuOnly.append(batch, 0, BATCH_BYTES, RECORDS);
    if (cpuOnly.bufferedBytes >= 8 * 1024 * 1024) {
      cpuOnly.flush();
      if (++flushes % 8 === 0) cpuOnly.applyRetention();
    }
  });

await bench.warmup();
await bench.run();

function commit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu?'} ×${os.cpus().length}, commit ${commit()}, tmp ${os.tmpdir()}`);
console.table(
  [...readBench.tasks, ...bench.tasks].map((t: Task) => {
    const hz = t.result?.hz ?? 0;
    const isRead = t.name.includes('read');
    const bytesPerOp = isRead ? (1 << 20) : BATCH_BYTES;
    return {
      task: t.name,
      'ops/s': Math.round(hz),
      'p99 ms': t.result ? t.result.p99.toFixed(3) : '-',
      'MB/s': Math.round((hz * bytesPerOp) / 1e6),
      'msgs/s': Math.round((hz * bytesPerOp) / RECORD_BYTES),
    };
  }),
);

for (const l of [never, always, cpuOnly, readLog]) l.destroy();
for (const f of [bareNever, bareAlways, bareRead]) fs.closeSync(f.fd);
fs.rmSync(root, { recursive: true, force: true });
