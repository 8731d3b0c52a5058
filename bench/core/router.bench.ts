/**
 * The key router (murmur2 per keyed record, sticky for unkeyed) against a baseline that only walks
 * the same index without hashing, so the difference is the routing itself.
 *
 *   npm run build && node dist/bench/core/router.bench.js
 */
import { Bench } from 'tinybench';
import { BatchBuilder } from '../../src/protocol/batch-builder.js';
import { RecordIndex, scanBatch } from '../../src/protocol/record.js';
import { Router } from '../../src/core/router.js';

const N = 1000;
const time = Number(process.argv.find((a) => a.startsWith('--time='))?.slice(7) ?? 1500);
const value = new Uint8Array(100);
const keyed = new BatchBuilder();
const unkeyed = new BatchBuilder();
for (let i = 0; i < N; i++) {
  keyed.add(`user-${i % 977}`, value);
  unkeyed.add(null, value);
}
const kb = keyed.take();
const ub = unkeyed.take();
const ki = new RecordIndex();
const ui = new RecordIndex();
scanBatch(kb, ki, { maxRecordBytes: 1 << 20, maxRecords: 1e6 });
scanBatch(ub, ui, { maxRecordBytes: 1 << 20, maxRecords: 1e6 });
const router = new Router();
let sink = 0;

const bench = new Bench({ time, warmupTime: 300 });
bench
  .add('route keyed (murmur2) to 8 partitions', () => {
    sink += router.routeBatch(kb, ki, 8, 0).touchedCount;
  })
  .add('route unkeyed (sticky) to 8 partitions', () => {
    sink += router.routeBatch(ub, ui, 8, 3).touchedCount;
  })
  .add('baseline: walk the index, no hashing', () => {
    let s = 0;
    for (let i = 0; i < ki.count; i++) s += ki.keyLength[i]! + ki.size[i]!;
    sink += s;
  });
await bench.run();
console.log(`router: ${N} records per op; Node ${process.version}`);
console.table(bench.tasks.map((t) => ({ task: t.name, 'M records/s': ((t.result!.hz * N) / 1e6).toFixed(1), 'ns/record': ((t.result!.mean * 1e6) / N).toFixed(1) })));
if (sink === -1) console.log(sink);
