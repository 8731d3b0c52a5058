/**
 * Values by id, for nonzero 32-bit ids handed out in sequence, most of them short-lived (a
 * partition's produce and fetch waiters): an open-addressed table with linear probing. A `Map`
 * allocates on this churn (its delete() rehashes into a smaller table once a quarter full, so a
 * map that goes from one entry to none allocates every time: once per produce request here).
 * Sequential ids spread over the slots by their low bits; deletion shifts the probe run back, so
 * no tombstones pile up.
 */
export class IdTable<V> {
  private ids: Uint32Array;
  private vals: Array<V | undefined>;
  private mask: number;
  private count = 0;

  constructor(capacity = 16) {
    let c = 8;
    while (c < capacity) c *= 2;
    this.ids = new Uint32Array(c);
    this.vals = new Array<V | undefined>(c).fill(undefined);
    this.mask = c - 1;
  }

  get size(): number {
    return this.count;
  }

  get(id: number): V | undefined {
    const ids = this.ids;
    for (let i = id & this.mask; ; i = (i + 1) & this.mask) {
      const k = ids[i]!;
      if (k === id) return this.vals[i];
      if (k === 0) return undefined;
    }
  }

  has(id: number): boolean {
    return this.slotOf(id) >= 0;
  }

  set(id: number, value: V): void {
    if (id <= 0 || id > 0xffff_ffff || !Number.isInteger(id)) throw new RangeError(`IdTable: id must be an integer in 1..2^32-1, got ${id}`);
    if ((this.count + 1) * 2 > this.ids.length) this.grow();
    const ids = this.ids;
    for (let i = id & this.mask; ; i = (i + 1) & this.mask) {
      const k = ids[i]!;
      if (k === id) {
        this.vals[i] = value;
        return;
      }
      if (k === 0) {
        ids[i] = id;
        this.vals[i] = value;
        this.count++;
        return;
      }
    }
  }

  /** Remove `id` and return its value (undefined if absent). */
  take(id: number): V | undefined {
    const i = this.slotOf(id);
    if (i < 0) return undefined;
    const v = this.vals[i];
    this.removeAt(i);
    return v;
  }

  delete(id: number): boolean {
    const i = this.slotOf(id);
    if (i < 0) return false;
    this.removeAt(i);
    return true;
  }

  /**
   * The values, oldest id first, for ids handed out in sequence (wrapping past 2^32) up to, not
   * including, `next`. A new array: for the rare paths that fail every waiter, in request order.
   */
  valuesInOrder(next: number): V[] {
    const slots: number[] = [];
    for (let i = 0; i < this.ids.length; i++) if (this.ids[i] !== 0) slots.push(i);
    const age = (slot: number): number => (next - this.ids[slot]!) >>> 0;
    slots.sort((a, b) => age(b) - age(a));
    return slots.map((i) => this.vals[i]!);
  }

  clear(): void {
    this.ids.fill(0);
    this.vals.fill(undefined);
    this.count = 0;
  }

  private slotOf(id: number): number {
    const ids = this.ids;
    for (let i = id & this.mask; ; i = (i + 1) & this.mask) {
      const k = ids[i]!;
      if (k === id) return k === 0 ? -1 : i;
      if (k === 0) return -1;
    }
  }

  /** Empty slot `i`, moving later members of its probe run back so that every lookup still finds them. */
  private removeAt(i: number): void {
    const ids = this.ids;
    const vals = this.vals;
    const mask = this.mask;
    let hole = i;
    for (let j = (hole + 1) & mask; ids[j] !== 0; j = (j + 1) & mask) {
      const home = ids[j]! & mask;
      // The member at j may fill the hole unless its home lies cyclically in (hole, j].
      const stays = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (stays) continue;
      ids[hole] = ids[j]!;
      vals[hole] = vals[j];
      hole = j;
    }
    ids[hole] = 0;
    vals[hole] = undefined;
    this.count--;
  }

  private grow(): void {
    const oldIds = this.ids;
    const oldVals = this.vals;
    const c = oldIds.length * 2;
    this.ids = new Uint32Array(c);
    this.vals = new Array<V | undefined>(c).fill(undefined);
    this.mask = c - 1;
    this.count = 0;
    for (let i = 0; i < oldIds.length; i++) if (oldIds[i] !== 0) this.set(oldIds[i]!, oldVals[i] as V);
  }
}
