/**
 * The pending delayed messages of one schedule topic: a binary min-heap ordered by (due time,
 * offset) over three parallel typed arrays, so a pending message costs 18 bytes (f64 due, f64
 * offset, u16 partition) and no object or timer. The scheduler keeps one timer, for `peekDue()`.
 */
export class DueIndex {
  private due: Float64Array;
  private offset: Float64Array;
  private partition: Uint16Array;
  private n = 0;

  constructor(initialCapacity = 1024) {
    const cap = Math.max(16, initialCapacity);
    this.due = new Float64Array(cap);
    this.offset = new Float64Array(cap);
    this.partition = new Uint16Array(cap);
  }

  get size(): number {
    return this.n;
  }

  /** Bytes held by the index (its arrays; capacity grows by doubling). */
  get memoryBytes(): number {
    return this.due.byteLength + this.offset.byteLength + this.partition.byteLength;
  }

  /** Due time of the earliest entry, or Infinity when empty. */
  peekDue(): number {
    return this.n === 0 ? Infinity : this.due[0]!;
  }

  push(due: number, partition: number, offset: number): void {
    if (this.n === this.due.length) this.grow();
    let i = this.n++;
    // Sift up: move parents down until the slot for the new entry is found.
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(due, offset, this.due[parent]!, this.offset[parent]!)) break;
      this.move(parent, i);
      i = parent;
    }
    this.due[i] = due;
    this.offset[i] = offset;
    this.partition[i] = partition;
  }

  /**
   * Remove every entry due at or before `now` (earliest first), calling `take` for each; stops after
   * `limit` entries. Returns how many were taken.
   */
  popDue(now: number, take: (due: number, partition: number, offset: number) => void, limit = Infinity): number {
    let taken = 0;
    while (this.n > 0 && this.due[0]! <= now && taken < limit) {
      take(this.due[0]!, this.partition[0]!, this.offset[0]!);
      this.removeTop();
      taken++;
    }
    return taken;
  }

  clear(): void {
    this.n = 0;
  }

  private removeTop(): void {
    const last = --this.n;
    if (last === 0) return;
    const due = this.due[last]!;
    const offset = this.offset[last]!;
    const partition = this.partition[last]!;
    let i = 0;
    // Sift down the former last entry from the root.
    for (;;) {
      const l = 2 * i + 1;
      if (l >= last) break;
      const r = l + 1;
      const c = r < last && this.less(this.due[r]!, this.offset[r]!, this.due[l]!, this.offset[l]!) ? r : l;
      if (!this.less(this.due[c]!, this.offset[c]!, due, offset)) break;
      this.move(c, i);
      i = c;
    }
    this.due[i] = due;
    this.offset[i] = offset;
    this.partition[i] = partition;
  }

  private less(d1: number, o1: number, d2: number, o2: number): boolean {
    return d1 < d2 || (d1 === d2 && o1 < o2);
  }

  private move(from: number, to: number): void {
    this.due[to] = this.due[from]!;
    this.offset[to] = this.offset[from]!;
    this.partition[to] = this.partition[from]!;
  }

  private grow(): void {
    const cap = this.due.length * 2;
    const due = new Float64Array(cap);
    due.set(this.due);
    const offset = new Float64Array(cap);
    offset.set(this.offset);
    const partition = new Uint16Array(cap);
    partition.set(this.partition);
    this.due = due;
    this.offset = offset;
    this.partition = partition;
  }
}
