/**
 * Which offsets of one schedule partition were already fired (appended to their topic). Delayed
 * messages fire out of offset order, so this is a low-water mark (every offset below `low` fired)
 * plus a bitmap of fired offsets at or above it: one bit per offset between the low-water mark and
 * the highest fired offset, however many messages are pending.
 */
const COMPACT_BYTES = 4096;

export class FiredSet {
  /** Every offset below this fired; `low` itself did not. */
  private lowMark = 0;
  /** Offset of bit 0 of `bits` (a multiple of 8, ≤ lowMark). */
  private origin = 0;
  private bits = new Uint8Array(64);
  /** Bits set at or above `lowMark`. */
  private above = 0;

  get low(): number {
    return this.lowMark;
  }

  /** Fired offsets at or above the low-water mark (what a compacted log must list). */
  get firedAboveLow(): number {
    return this.above;
  }

  get memoryBytes(): number {
    return this.bits.byteLength;
  }

  has(offset: number): boolean {
    if (offset < this.lowMark) return true;
    const i = offset - this.origin;
    const byte = i >>> 3;
    return byte < this.bits.length && (this.bits[byte]! & (1 << (i & 7))) !== 0;
  }

  /** Mark one offset fired. Returns false if it already was. */
  mark(offset: number): boolean {
    if (this.has(offset)) return false;
    const i = offset - this.origin;
    const byte = i >>> 3;
    if (byte >= this.bits.length) {
      let cap = this.bits.length * 2;
      while (cap <= byte) cap *= 2;
      const b = new Uint8Array(cap);
      b.set(this.bits);
      this.bits = b;
    }
    this.bits[byte]! |= 1 << (i & 7);
    this.above++;
    if (offset === this.lowMark) this.advance();
    return true;
  }

  /** Everything below `low` fired (from a checkpoint). */
  setLow(low: number): void {
    if (low <= this.lowMark) return;
    while (this.lowMark < low) {
      if (this.bitAt(this.lowMark)) this.above--;
      this.lowMark++;
      if ((this.lowMark - this.origin) >>> 3 >= this.bits.length) {
        // Past every set bit: restart the bitmap at the new mark.
        this.above = 0;
        this.origin = low - (low % 8);
        this.bits.fill(0);
        this.lowMark = low;
        break;
      }
    }
    this.advance();
  }

  /** Fired offsets at or above the low-water mark, ascending. */
  firedAbove(): number[] {
    const out: number[] = [];
    const end = this.origin + this.bits.length * 8;
    for (let o = this.lowMark; o < end; o++) if (this.bitAt(o)) out.push(o);
    return out;
  }

  /** An upper bound of bitmapAboveLow().length, in O(1). */
  get bitmapBytesBound(): number {
    return Math.max(0, Math.ceil((this.origin + this.bits.length * 8 - this.lowMark) / 8));
  }

  /** Bit i set = offset low + i fired, up to the highest fired offset (empty if none above low). */
  bitmapAboveLow(): Uint8Array {
    const end = this.origin + this.bits.length * 8;
    let last = -1;
    for (let o = end - 1; o >= this.lowMark && this.above > 0; o--) {
      if (this.bitAt(o)) {
        last = o;
        break;
      }
    }
    if (last < 0) return new Uint8Array(0);
    const out = new Uint8Array(Math.floor((last - this.lowMark) / 8) + 1);
    for (let o = this.lowMark; o <= last; o++) if (this.bitAt(o)) out[(o - this.lowMark) >>> 3]! |= 1 << ((o - this.lowMark) & 7);
    return out;
  }

  /** Mark every offset `base + i` whose bit i is set in `bitmap` (see bitmapAboveLow). */
  markBitmap(base: number, bitmap: Uint8Array): void {
    for (let byte = 0; byte < bitmap.length; byte++) {
      const b = bitmap[byte]!;
      if (b === 0) continue;
      for (let bit = 0; bit < 8; bit++) if ((b & (1 << bit)) !== 0) this.mark(base + byte * 8 + bit);
    }
  }

  private bitAt(offset: number): boolean {
    const i = offset - this.origin;
    const byte = i >>> 3;
    return byte < this.bits.length && (this.bits[byte]! & (1 << (i & 7))) !== 0;
  }

  private advance(): void {
    while (this.bitAt(this.lowMark)) {
      this.above--;
      this.lowMark++;
    }
    const drop = (this.lowMark - this.origin) >>> 3;
    if (drop >= COMPACT_BYTES || (drop > 0 && this.above === 0)) {
      this.bits.copyWithin(0, drop);
      this.bits.fill(0, this.bits.length - drop);
      this.origin += drop * 8;
    }
  }
}
