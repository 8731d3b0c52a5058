/**
 * CRC32C slicing-by-8 against the byte-at-a-time table loop it replaced, on record-sized inputs
 * (92 bytes: a 100-byte message's checksummed part) and on 64 KiB.
 *
 *   npm run build && node dist/bench/common/crc32c.bench.js
 */
import { Bench } from 'tinybench';
import { crc32c } from '../../src/common/crc32c.js';

const time = Number(process.argv.find((a) => a.startsWith('--time='))?.slice(7) ?? 1500);
const T = new Int32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  T[n] = c;
}
function bytewise(b: Uint8Array): number {
  let c = -1;
  for (let i = 0; i < b.length; i++) c = T[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
const small = new Uint8Array(92).map((_, i) => i * 7);
const big = new Uint8Array(64 * 1024).map((_, i) => i * 13);
if (crc32c(small) !== bytewise(small) || crc32c(big) !== bytewise(big)) throw new Error('implementations disagree');
let sink = 0;
const bench = new Bench({ time, warmupTime: 300 });
bench
  .add('crc32c slicing-by-8, 92 B', () => void (sink ^= crc32c(small)))
  .add('baseline bytewise, 92 B', () => void (sink ^= bytewise(small)))
  .add('crc32c slicing-by-8, 64 KiB', () => void (sink ^= crc32c(big)))
  .add('baseline bytewise, 64 KiB', () => void (sink ^= bytewise(big)));
await bench.run();
console.log(`crc32c; Node ${process.version}`);
console.table(bench.tasks.map((t) => {
  const bytes = t.name.includes('KiB') ? big.length : small.length;
  return { task: t.name, 'ns/op': (t.result!.mean * 1e6).toFixed(0), 'MB/s': ((t.result!.hz * bytes) / 1e6).toFixed(0) };
}));
if (sink === 0.5) console.log(sink);
