/**
 * Checking stored records before they are served (record.ts verifyRecords: each record's length,
 * magic, offset and CRC32C) against a batch-level checksum (one CRC32C over the whole batch, what a
 * Kafka-style batch format would check instead), on the broker's side (native, the CPU's crc32
 * instruction) and the SDK's (JavaScript slicing-by-8, readCheckedMessages vs readMessages).
 * Batches of 100-byte messages: 1,000 (a max-rate read) and 7 (a read at 5,000 msg/s).
 *
 *   npm run build && node dist/bench/protocol/verify-records.bench.js
 */
import { Bench } from 'tinybench';
import { nativeIo, nativeIoStatus } from '../../src/common/native-io.js';
import { crc32c } from '../../src/common/crc32c.js';
import { BatchBuilder } from '../../src/protocol/batch-builder.js';
import { readCheckedMessages, readMessages, type CorruptRecord } from '../../src/protocol/batch-reader.js';
import { readU32, sealRecords, stampOffsetAndTime, verifyRecords } from '../../src/protocol/record.js';

if (nativeIo === null) throw new Error(`the native helper is needed: ${nativeIoStatus}`);
const native = nativeIo;
const time = Number(process.argv.find((a) => a.startsWith('--time='))?.slice(7) ?? 1500);

function batch(n: number): Uint8Array {
  const b = new BatchBuilder();
  const value = new Uint8Array(100).map((_, i) => i * 7);
  for (let i = 0; i < n; i++) b.add(null, value);
  const out = b.view().slice();
  for (let at = 0, k = 0; at < out.length; at += 4 + readU32(out, at), k++) stampOffsetAndTime(out, at, 5000 + k, 1_700_000_000_000);
  sealRecords(out, 0, out.length);
  return out;
}
const big = batch(1000);
const small = batch(7);
if (native.verifyRecords(big, 0, big.length, 5000) !== 1000 || verifyRecords(big, 0, big.length, 5000) !== 1000) throw new Error('records do not check out');
/** The native CRC of a whole range, through verifyRecords' CRC path: one record spanning the batch. */
function nativeBatchCrc(b: Uint8Array): number {
  return native.sealRecords(wrapped, 0, wrapped.length) + b.length;
}
/** The 1,000-record batch as the value of one record, so that sealRecords computes one CRC over it. */
const wrapped = (() => {
  const bb = new BatchBuilder();
  bb.add(null, big.subarray(0, big.length - 36));
  return bb.view().slice();
})();

const corrupt: CorruptRecord[] = [];
let sink = 0;

const bench = new Bench({ time, warmupTime: 300 });
bench
  .add('broker: native verifyRecords, 1,000 × 100 B', () => void (sink += native.verifyRecords(big, 0, big.length, 5000)))
  .add('broker: native one CRC over the batch (batch-level), 1,000 × 100 B', () => void (sink += nativeBatchCrc(big)))
  .add('broker: native verifyRecords, 7 × 100 B', () => void (sink += native.verifyRecords(small, 0, small.length, 5000)))
  .add('SDK: readCheckedMessages (JS CRC), 1,000 × 100 B', () => void (sink += readCheckedMessages('t', 0, big, corrupt).length))
  .add('SDK: baseline readMessages (no check), 1,000 × 100 B', () => void (sink += readMessages('t', 0, big).length))
  .add('SDK: JS one CRC over the batch (batch-level), 1,000 × 100 B', () => void (sink += crc32c(big, 0, big.length)));
await bench.run();
if (corrupt.length > 0) throw new Error('a record failed');
console.log(`verifyRecords (record.ts / native/weir_io.c), batch-level CRC for comparison; Node ${process.version}; ${sink > 0 ? '' : ' '}`);
console.table(bench.tasks.map((t) => {
  const records = t.name.includes('1,000') ? 1000 : 7;
  return { task: t.name, 'ns/op': (t.result!.mean * 1e6).toFixed(0), 'ns/record': ((t.result!.mean * 1e6) / records).toFixed(1) };
}));
