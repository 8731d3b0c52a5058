/**
 * Which partition each record of a batch goes to. Pure: bytes and counts in, a route out.
 * Keyed records: Kafka's murmur2 partitioner. Unkeyed: one partition per batch (sticky).
 */
import { partitionForKey } from '../common/murmur2.js';
import type { RecordIndex } from '../protocol/record.js';

export interface Route {
  /** Partition of record i. */
  partitionOf: Uint16Array;
  /** Records and bytes per partition (indexes 0..partitions-1). */
  counts: Uint32Array;
  bytes: Float64Array;
  /** Partitions touched, ascending: the first `touchedCount` entries. */
  touched: Uint16Array;
  touchedCount: number;
  /** First record of each partition, and the next record of the same partition (-1 ends a chain). */
  head: Int32Array;
  nextSame: Int32Array;
}

export class Router {
  private route: Route = {
    partitionOf: new Uint16Array(1024),
    counts: new Uint32Array(16),
    bytes: new Float64Array(16),
    touched: new Uint16Array(16),
    touchedCount: 0,
    head: new Int32Array(16),
    nextSame: new Int32Array(1024),
  };
  private tail = new Int32Array(16);

  /** Route `index.count` records of `batch`; the result is reused by the next call. */
  routeBatch(batch: Uint8Array, index: RecordIndex, partitions: number, sticky: number, forced?: number): Route {
    const r = this.ensure(index.count, partitions);
    r.counts.fill(0, 0, partitions);
    r.bytes.fill(0, 0, partitions);
    const n = index.count;
    for (let i = 0; i < n; i++) {
      let p: number;
      if (forced !== undefined) p = forced;
      else {
        const kl = index.keyLength[i]!;
        p = kl >= 0 ? partitionForKey(batch, index.keyStart[i]!, index.keyStart[i]! + kl, partitions) : sticky;
      }
      r.partitionOf[i] = p;
      r.nextSame[i] = -1;
      if (r.counts[p]++ === 0) r.head[p] = i;
      else r.nextSame[this.tail[p]!] = i;
      this.tail[p] = i;
      r.bytes[p]! += index.size[i]!;
    }
    // The touched list is built after the loop, which then does nothing but route. (Whether that
    // is faster is not settled: bench/core/router.bench.ts gives 11-13 or 18-24 ns per keyed
    // record from one process to the next on the same build.)
    r.touchedCount = listTouched(r, n, partitions);
    return r;
  }

  private ensure(records: number, partitions: number): Route {
    const r = this.route;
    if (r.partitionOf.length < records) {
      const cap = Math.max(records, r.partitionOf.length * 2);
      r.partitionOf = new Uint16Array(cap);
      r.nextSame = new Int32Array(cap);
    }
    if (r.counts.length < partitions) {
      r.counts = new Uint32Array(partitions);
      r.bytes = new Float64Array(partitions);
      r.head = new Int32Array(partitions);
      r.touched = new Uint16Array(partitions);
      this.tail = new Int32Array(partitions);
    }
    return r;
  }
}

/**
 * Fill route.touched with the partitions that got records, ascending; returns how many. Few
 * partitions: read them off the counts, already in order; many: the partitions whose first record
 * is record i, then sorted.
 */
function listTouched(r: Route, n: number, partitions: number): number {
  let touched = 0;
  if (partitions <= n) {
    for (let p = 0; p < partitions; p++) if (r.counts[p] !== 0) r.touched[touched++] = p;
  } else {
    for (let i = 0; i < n; i++) {
      const p = r.partitionOf[i]!;
      if (r.head[p] === i) r.touched[touched++] = p;
    }
    sortAscending(r.touched, touched);
  }
  return touched;
}

/** Sort a[0..n) in place without allocating (a batch usually touches one partition, or a few). */
function sortAscending(a: Uint16Array, n: number): void {
  if (n > 32) {
    a.subarray(0, n).sort();
    return;
  }
  for (let i = 1; i < n; i++) {
    const v = a[i]!;
    let j = i - 1;
    while (j >= 0 && a[j]! > v) {
      a[j + 1] = a[j]!;
      j--;
    }
    a[j + 1] = v;
  }
}
