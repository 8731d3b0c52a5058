/**
 * Sealing appended records (record.ts sealRecords: each record's CRC32C): the native helper's
 * (the CPU's crc32 instruction, one call per batch) against the JavaScript slicing-by-8 it
 * replaced on the log's append path. Batches of 100-byte messages: 1,000 (max rate) and 7 (a
 * request at 5,000 msg/s with a 1 ms linger).
 *
 *   npm run build && node dist/bench/protocol/seal-records.bench.js
 */
import { Bench } from 'tinybench';
import { nativeIo, nativeIoStatus } from '../../src/common/native-io.js';
import { BatchBuilder } from '../../src/protocol/batch-builder.js';
import { sealRecords } from '../../src/protocol/record.js';

if (nativeIo === null) throw new Error(`the native helper is needed: ${nativeIoStatus}`);
const native = nativeIo;
const time = Number(process.argv.find((a) => a.startsWith('--time='))?.slice(7) ?? 1500);

function batch(n: number): Uint8Array {
  const b = new BatchBuilder();
  const value = new Uint8Array(100).map((_, i) => i * 7);
  for (let i = 0; i < n; i++) b.add(null, value);
  return b.view().slice();
}
const big = batch(1000);
const small = batch(7);
const check = big.slice();
sealRecords(check, 0, check.length);
native.sealRecords(big, 0, big.length);
if (!Buffer.from(check).equals(Buffer.from(big))) throw new Error('implementations disagree');

const bench = new Bench({ time, warmupTime: 300 });
bench
  .add('native sealRecords, 1,000 × 100 B', () => void native.sealRecords(big, 0, big.length))
  .add('baseline JS sealRecords, 1,000 × 100 B', () => void sealRecords(big, 0, big.length))
  .add('native sealRecords, 7 × 100 B', () => void native.sealRecords(small, 0, small.length))
  .add('baseline JS sealRecords, 7 × 100 B', () => void sealRecords(small, 0, small.length));
await bench.run();
console.log(`sealRecords (record.ts / native/weir_io.c); Node ${process.version}`);
console.table(bench.tasks.map((t) => {
  const records = t.name.includes('1,000') ? 1000 : 7;
  return { task: t.name, 'ns/op': (t.result!.mean * 1e6).toFixed(0), 'ns/record': ((t.result!.mean * 1e6) / records).toFixed(1) };
}));
