/**
 * Decoding frames (protocol/plain-frame-decoder.ts) against cbor-x, which decodeFrame used alone
 * before and still falls back to. Frames as they arrive: a produce request as the SDK sends it
 * (7 records of 100 B, the size of a request at 5,000 msg/s with a 1 ms linger), its answer, and a
 * consumer's commit. A loop runs them warm; in the broker at 5,000 msg/s they run cold, once a
 * millisecond between other threads, which only the end-to-end benchmark measures
 * (docs/performance.md item 28).
 *
 *   npm run build && node dist/bench/protocol/plain-frame-decoder.bench.js [--time=ms]
 */
import { Bench } from 'tinybench';
import { BatchBuilder } from '../../src/protocol/batch-builder.js';
import { decodeFrameWithCborX, encodeFrame } from '../../src/protocol/cbor.js';
import { decodePlainFrame } from '../../src/protocol/plain-frame-decoder.js';

const time = Number(process.argv.find((a) => a.startsWith('--time='))?.slice(7) ?? 1500);

const builder = new BatchBuilder();
for (let i = 0; i < 7; i++) builder.add(null, new Uint8Array(100).fill(i));
const frames = {
  produce: new Uint8Array(encodeFrame({ op: 'produce', topic: 'bench', records: builder.view().slice(), id: 40_017 })),
  result: new Uint8Array(encodeFrame({ op: 'result', id: 40_017, parts: [[3, 1_234_567, 7]] })),
  commit: new Uint8Array(encodeFrame({ op: 'commit', id: 12, group: 'bench-group', topic: 'bench', offsets: [[0, 1_234_567], [1, 1_200_000]] })),
};
for (const [name, bytes] of Object.entries(frames)) {
  if (decodePlainFrame(bytes) === undefined) throw new Error(`${name}: not in the plain subset`);
}

let sink = 0;

const bench = new Bench({ time, warmupTime: 300 });
for (const [name, bytes] of Object.entries(frames)) {
  bench
    .add(`${name} (${bytes.length} B): plain decoder`, () => {
      sink += Object.keys(decodePlainFrame(bytes)!).length;
    })
    .add(`${name} (${bytes.length} B): cbor-x`, () => {
      sink += Object.keys(decodeFrameWithCborX(bytes) as object).length;
    });
}
await bench.run();
console.log(`frame decoding; Node ${process.version}`);
console.table(
  bench.tasks.map((t) => ({
    task: t.name,
    'ns/op (mean)': Math.round(t.result!.mean * 1e6),
    '± %': t.result!.rme.toFixed(1),
    samples: t.result!.samples.length,
  })),
);
if (sink === -1) console.log(sink);
