/**
 * IdTable (a partition handle's produce and fetch waiters by id) against the Map it replaced, on
 * the handle's pattern: one long-lived entry (a standing fetch) while each produce request adds
 * its waiter and the ack takes it out again. A Map reallocates its table on that churn.
 *
 *   npm run build && node dist/bench/common/id-table.bench.js
 */
import { Bench } from 'tinybench';
import { IdTable } from '../../src/common/id-table.js';

const time = Number(process.argv.find((a) => a.startsWith('--time='))?.slice(7) ?? 1500);
const OPS = 1000;
const waiter = { acked: (): void => undefined };
const table = new IdTable<typeof waiter>();
const map = new Map<number, typeof waiter>();
table.set(1, waiter);
map.set(1, waiter);
let next = 2;
let sink = 0;

const bench = new Bench({ time, warmupTime: 300 });
bench
  .add('IdTable: set, then take (one standing entry)', () => {
    for (let i = 0; i < OPS; i++) {
      const id = next++;
      table.set(id, waiter);
      if (table.take(id) === waiter) sink++;
    }
  })
  .add('baseline: Map set, get + delete', () => {
    for (let i = 0; i < OPS; i++) {
      const id = next++;
      map.set(id, waiter);
      const w = map.get(id);
      map.delete(id);
      if (w === waiter) sink++;
    }
  });
await bench.run();
console.log(`id-table: ${OPS} set + take per op; Node ${process.version}`);
console.table(bench.tasks.map((t) => ({ task: t.name, 'ns per set + take': ((t.result!.mean * 1e6) / OPS).toFixed(1) })));
if (sink === -1) console.log(sink);
