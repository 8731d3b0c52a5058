/** Something a TurnSet can hold: one bit per TurnSet it may be in. */
export interface TurnMember {
  turnMarks: number;
}

/**
 * An insertion-ordered set filled during an event-loop turn and drained at its end (the core marks
 * partition actors, a front door its connections), without allocating: a `Set`'s clear() and
 * delete() each allocate a new hash table, and the
 * gateway empties its sets on every turn of the hot path. Membership is one bit in the member
 * (`bit`), so sets that may hold the same object need distinct bits.
 */
export class TurnSet<T extends TurnMember> {
  private items: Array<T | null> = [];
  private count = 0;

  constructor(private readonly bit: number) {}

  get size(): number {
    return this.count;
  }

  add(item: T): void {
    if ((item.turnMarks & this.bit) !== 0) return;
    item.turnMarks |= this.bit;
    this.items[this.count++] = item;
  }

  /**
   * Call `visit` for each member present now, in the order they were added, taking it out first:
   * members added meanwhile (including one `visit` adds back) stay for the next drain.
   */
  drain(visit: (item: T) => void): void {
    const n = this.count;
    const items = this.items;
    for (let i = 0; i < n; i++) {
      const item = items[i]!;
      items[i] = null;
      item.turnMarks &= ~this.bit;
      visit(item);
    }
    // Added during the visits: move them to the front.
    const rest = this.count - n;
    for (let i = 0; i < rest; i++) {
      items[i] = items[n + i]!;
      items[n + i] = null;
    }
    this.count = rest;
  }
}
