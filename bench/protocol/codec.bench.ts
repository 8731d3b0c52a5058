/**
 * The record-batch codec against the design it replaced: one cbor-x object per message.
 *
 *   npm run build && node dist/bench/protocol/codec.bench.js [--time=ms]
 *
 * 1000 messages of a 10-byte key and a 100-byte value, one header. Groups:
 *  1. build a batch: BatchBuilder            vs  cbor-x encode of an array of message objects
 *  2. gateway scan: scanBatch (validate+index) vs cbor-x decode into objects
 *  3. consumer read: readMessages + value access vs cbor-x decode + value access
 */
import { Bench } from 'tinybench';
import { Encoder } from 'cbor-x';
import { BatchBuilder } from '../../src/protocol/batch-builder.js';
import { readMessages } from '../../src/protocol/batch-reader.js';
import { RecordIndex, scanBatch } from '../../src/protocol/record.js';

const N = 1000;
const time = Number(process.argv.find((a) => a.startsWith('--time='))?.slice(7) ?? 1500);
const cbor = new Encoder({ useRecords: false, mapsAsObjects: true });
const value = new Uint8Array(100).fill(42);
const keys = Array.from({ length: N }, (_, i) => `key-${String(i).padStart(6, '0')}`);
const headers = { trace: 'abc123' };
const objects = keys.map((key) => ({ key, value, headers }));

const builder = new BatchBuilder(256 * 1024);
for (let i = 0; i < N; i++) builder.add(keys[i], value, headers);
const batch = builder.take();
const cborBatch = cbor.encode(objects);
const index = new RecordIndex();
let sink = 0;

const bench = new Bench({ time, warmupTime: 300 });
bench
  .add('build: BatchBuilder (record batch)', () => {
    for (let i = 0; i < N; i++) builder.add(keys[i], value, headers);
    sink += builder.view().length;
    builder.reset();
  })
  .add('build: cbor-x encode of message objects (rejected)', () => {
    sink += cbor.encode(objects).length;
  })
  .add('gateway: scanBatch (validate + index)', () => {
    sink += scanBatch(batch, index, { maxRecordBytes: 1 << 20, maxRecords: 100_000 });
  })
  .add('gateway: cbor-x decode into objects (rejected)', () => {
    sink += (cbor.decode(cborBatch) as unknown[]).length;
  })
  .add('consumer: readMessages + key/value', () => {
    for (const m of readMessages('t', 0, batch)) sink += m.value.length + m.offset;
  })
  .add('consumer: cbor-x decode + key/value (rejected)', () => {
    for (const m of cbor.decode(cborBatch) as Array<{ key: string; value: Uint8Array }>) sink += m.value.length + m.key.length;
  });

await bench.run();
console.log(`codec: ${N} messages per op (10 B key, 100 B value, 1 header); Node ${process.version}`);
console.table(
  bench.tasks.map((t) => ({
    task: t.name,
    'ops/s': Math.round(t.result!.hz),
    'M msgs/s': ((t.result!.hz * N) / 1e6).toFixed(2),
    'ns/msg': ((t.result!.mean * 1e6) / N).toFixed(0),
  })),
);
if (sink === -1) console.log(sink);
