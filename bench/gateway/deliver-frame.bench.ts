/**
 * The deliver frame's encoder (src/gateway/deliver-frame.ts), into the gateway's frame arena or a
 * fresh buffer, against cbor-x encoding the same object, for records read from shared memory (a
 * partition's output ring) at each alignment: V8 copies shared memory word by word only between
 * addresses congruent modulo 8.
 *
 *   npm run build && node dist/bench/gateway/deliver-frame.bench.js
 */
import { Bench } from 'tinybench';
import { encodeDeliverFrame } from '../../src/gateway/deliver-frame.js';
import { FrameArena } from '../../src/gateway/frame-arena.js';
import { encodeFrame } from '../../src/protocol/cbor.js';

const time = Number(process.argv.find((a) => a.startsWith('--time='))?.slice(7) ?? 1500);
const BYTES = 136_000; // 1,000 stored records of 100-byte values
const ring = new Uint8Array(new SharedArrayBuffer(BYTES + 64));
for (let i = 0; i < ring.length; i++) ring[i] = i;
const fields = { sub: 3, topic: 'bench.topic', partition: 5, count: 1000, next: 123_456 };
let sink = 0;
const arena = new FrameArena(8 << 20);
const fromArena = (n: number): Uint8Array => {
  arena.reset(); // one frame per turn here
  return arena.take(n)!;
};

const bench = new Bench({ time, warmupTime: 300 });
for (const at of [0, 3, 4]) {
  const records = ring.subarray(at, at + BYTES);
  bench
    .add(`encodeDeliverFrame into the frame arena, records at ring offset ${at}`, () => {
      sink += encodeDeliverFrame(fields, records, fromArena).length;
    })
    .add(`encodeDeliverFrame into a fresh buffer, records at ring offset ${at}`, () => {
      sink += encodeDeliverFrame(fields, records).length;
    })
    .add(`cbor-x encodeFrame, records at ring offset ${at}`, () => {
      sink += encodeFrame({ op: 'deliver', ...fields, records }).length;
    });
}
await bench.run();
console.log(`deliver frame: ${BYTES} bytes of records from a SharedArrayBuffer per op; Node ${process.version}`);
console.table(bench.tasks.map((t) => ({ task: t.name, 'frames/s': Math.round(t.result!.hz), 'GB/s': ((t.result!.hz * BYTES) / 1e9).toFixed(2) })));
if (sink === -1) console.log(sink);
