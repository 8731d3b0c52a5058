/**
 * copyBytes (src/common/copy-bytes.ts) against a bare TypedArray#set, for a 136 KB batch between
 * plain and shared memory at congruent and non-congruent offsets (V8 copies shared memory word by
 * word only when both addresses are congruent modulo 8).
 *
 *   npm run build && node dist/bench/common/copy-bytes.bench.js
 */
import { Bench } from 'tinybench';
import { copyBytes } from '../../src/common/copy-bytes.js';

const time = Number(process.argv.find((a) => a.startsWith('--time='))?.slice(7) ?? 1500);
const N = 136_000;
const plain = new Uint8Array(1 << 20);
const shared = new Uint8Array(new SharedArrayBuffer(1 << 20));

const bench = new Bench({ time, warmupTime: 300 });
for (const [from, to] of [[3, 0], [0, 0]] as const) {
  const label = from === to ? 'congruent' : 'not congruent';
  bench
    .add(`copyBytes plain -> shared, ${label}`, () => copyBytes(shared, to, plain, from, from + N))
    .add(`baseline: set plain -> shared, ${label}`, () => shared.set(plain.subarray(from, from + N), to))
    .add(`copyBytes shared -> plain, ${label}`, () => copyBytes(plain, to, shared, from, from + N))
    .add(`baseline: set shared -> plain, ${label}`, () => plain.set(shared.subarray(from, from + N), to));
}
await bench.run();
console.log(`copy: ${N} bytes per op; Node ${process.version}`);
console.table(bench.tasks.map((t) => ({ task: t.name, 'GB/s': ((t.result!.hz * N) / 1e9).toFixed(2), 'µs/op': (t.result!.mean * 1e3).toFixed(1) })));
