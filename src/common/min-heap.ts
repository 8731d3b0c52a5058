/**
 * A binary min-heap of number entries in parallel typed arrays, ordered by (key, tie): no object
 * per entry and no allocation per push (the arrays double when full). Each entry may carry a value
 * in a typed array of the owner's choosing (a partition number fits a Uint16Array), or none.
 *
 * Used where many timed entries wait for their time: the scheduler's pending delayed messages and a
 * queue window's retries.
 */

/** The typed arrays an entry's value may be kept in. */
export type HeapValues = Uint8Array | Uint16Array | Uint32Array | Float64Array;

export class MinHeap<V extends HeapValues = Float64Array> {
  private keys: Float64Array;
  private ties: Float64Array;
  private values: V | null;
  private n = 0;

  /**
   * @param makeValues allocates the value array of a given capacity (e.g. `(n) => new
   *   Uint16Array(n)`), or null when entries carry no value.
   */
  constructor(
    initialCapacity: number,
    private readonly makeValues: ((capacity: number) => V) | null = null,
  ) {
    const cap = Math.max(16, initialCapacity);
    this.keys = new Float64Array(cap);
    this.ties = new Float64Array(cap);
    this.values = makeValues === null ? null : makeValues(cap);
  }

  get size(): number {
    return this.n;
  }

  /** Bytes held by the arrays (capacity grows by doubling). */
  get memoryBytes(): number {
    return this.keys.byteLength + this.ties.byteLength + (this.values === null ? 0 : this.values.byteLength);
  }

  /** Key of the first entry, or Infinity when empty. */
  get topKey(): number {
    return this.n === 0 ? Infinity : this.keys[0]!;
  }
  /** Tie of the first entry (the heap must not be empty). */
  get topTie(): number {
    return this.ties[0]!;
  }
  /** Value of the first entry (the heap must not be empty and carry values). */
  get topValue(): number {
    return this.values![0]!;
  }

  push(key: number, tie: number, value = 0): void {
    if (this.n === this.keys.length) this.grow();
    const keys = this.keys;
    const ties = this.ties;
    const values = this.values;
    let i = this.n++;
    // Sift up: move parents down until the slot for the new entry is found.
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const pk = keys[parent]!;
      if (pk < key || (pk === key && ties[parent]! <= tie)) break;
      keys[i] = pk;
      ties[i] = ties[parent]!;
      if (values !== null) values[i] = values[parent]!;
      i = parent;
    }
    keys[i] = key;
    ties[i] = tie;
    if (values !== null) values[i] = value;
  }

  /** Remove the first entry (nothing when empty). */
  pop(): void {
    if (this.n === 0) return;
    const last = --this.n;
    if (last === 0) return;
    const keys = this.keys;
    const ties = this.ties;
    const values = this.values;
    const key = keys[last]!;
    const tie = ties[last]!;
    const value = values === null ? 0 : values[last]!;
    let i = 0;
    // Sift down the former last entry from the root.
    for (;;) {
      const l = 2 * i + 1;
      if (l >= last) break;
      const r = l + 1;
      const c = r < last && (keys[r]! < keys[l]! || (keys[r] === keys[l] && ties[r]! < ties[l]!)) ? r : l;
      const ck = keys[c]!;
      if (ck > key || (ck === key && ties[c]! >= tie)) break;
      keys[i] = ck;
      ties[i] = ties[c]!;
      if (values !== null) values[i] = values[c]!;
      i = c;
    }
    keys[i] = key;
    ties[i] = tie;
    if (values !== null) values[i] = value;
  }

  clear(): void {
    this.n = 0;
  }

  private grow(): void {
    const cap = this.keys.length * 2;
    const keys = new Float64Array(cap);
    keys.set(this.keys);
    const ties = new Float64Array(cap);
    ties.set(this.ties);
    this.keys = keys;
    this.ties = ties;
    if (this.values !== null) {
      const values = this.makeValues!(cap);
      values.set(this.values);
      this.values = values;
    }
  }
}
