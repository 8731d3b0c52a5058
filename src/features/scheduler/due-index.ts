/**
 * The pending delayed messages of one schedule topic: a min-heap ordered by (due time, offset)
 * over parallel typed arrays (src/common/min-heap.ts), so a pending message costs 18 bytes (f64
 * due, f64 offset, u16 partition) and no object or timer. The scheduler keeps one timer, for
 * `peekDue()`.
 */
import { MinHeap } from '../../common/min-heap.js';

export class DueIndex {
  /** key: due time, tie: offset, value: partition. */
  private readonly heap: MinHeap<Uint16Array>;

  constructor(initialCapacity = 1024) {
    this.heap = new MinHeap(initialCapacity, (n) => new Uint16Array(n));
  }

  get size(): number {
    return this.heap.size;
  }

  /** Bytes held by the index (its arrays; capacity grows by doubling). */
  get memoryBytes(): number {
    return this.heap.memoryBytes;
  }

  /** Due time of the earliest entry, or Infinity when empty. */
  peekDue(): number {
    return this.heap.topKey;
  }

  push(due: number, partition: number, offset: number): void {
    this.heap.push(due, offset, partition);
  }

  /**
   * Remove every entry due at or before `now` (earliest first), calling `take` for each; stops after
   * `limit` entries. Returns how many were taken.
   */
  popDue(now: number, take: (due: number, partition: number, offset: number) => void, limit = Infinity): number {
    const heap = this.heap;
    let taken = 0;
    while (heap.size > 0 && heap.topKey <= now && taken < limit) {
      take(heap.topKey, heap.topValue, heap.topTie);
      heap.pop();
      taken++;
    }
    return taken;
  }

  clear(): void {
    this.heap.clear();
  }
}
