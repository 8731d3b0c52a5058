/**
 * A small HDR-style log-linear histogram of non-negative integer values (no dependency).
 *
 * The unit is the caller's: benchmarks record microseconds (1 µs … 100 s = 1 … 1e8) or nanoseconds.
 * Non-integer values are rounded to the nearest integer; negative values count as 0; values above
 * `highest` are counted in the last bucket (and `max` keeps the true value).
 *
 * Layout (HdrHistogram's, https://github.com/HdrHistogram/HdrHistogram, public domain / BSD-2):
 * with S = 2^subBucketBits sub-buckets and H = S/2,
 *
 *   bucket e = 0 : values [0, S)             width 1      (exact)
 *   bucket e ≥ 1 : values [H·2^e, S·2^e)     width 2^e    (H sub-buckets)
 *
 *   index(v) = e·H + floor(v / 2^e),  with e = max(0, floor(log2 v) − (subBucketBits − 1))
 *
 * so a bucket's width is at most 1/H of the values it holds: every value this histogram reports
 * (percentiles) is within a relative 1/H of a recorded value (H = 1024 → 0.098 %, the default;
 * H = 128 → 0.78 %). Percentiles report the bucket's highest equivalent value (as HdrHistogram
 * does): never below the true percentile, at most one bucket width above it, clamped to [min, max].
 *
 * `count`, `min`, `max` and `mean` are exact (a running sum, not bucket midpoints).
 */

export interface HistogramOptions {
  /** Largest value tracked with full precision; larger values land in the last bucket. Default 1e8 (100 s in µs). */
  highest?: number;
  /** log2 of the sub-bucket count, 2 … 16: relative precision 2^-(bits−1). Default 11 (≈ 0.1 %). */
  subBucketBits?: number;
}

/** toJSON() form: sparse counts as [index, count, index, count, …]. Plain data, safe for postMessage. */
export interface HistogramJSON {
  v: 1;
  highest: number;
  subBucketBits: number;
  count: number;
  min: number;
  max: number;
  sum: number;
  counts: number[];
}

const POW2 = Array.from({ length: 64 }, (_, i) => 2 ** i);

/** floor(log2(v)) for an integer 1 ≤ v < 2^53, exact (Math.log2 can round up just below a power of two). */
function log2Floor(v: number): number {
  if (v < 0x1_0000_0000) return 31 - Math.clz32(v);
  return 63 - Math.clz32(Math.floor(v / 0x1_0000_0000));
}

export class Histogram {
  readonly highest: number;
  readonly subBucketBits: number;
  private readonly halfCount: number;
  private readonly counts: Float64Array;
  private readonly maxIndex: number;
  private total = 0;
  private minValue = Infinity;
  private maxValue = -Infinity;
  private sumValue = 0;

  constructor(options: HistogramOptions = {}) {
    const highest = options.highest ?? 1e8;
    const bits = options.subBucketBits ?? 11;
    if (!Number.isInteger(bits) || bits < 2 || bits > 16) throw new RangeError(`subBucketBits must be an integer in 2…16, got ${bits}`);
    if (!Number.isSafeInteger(highest) || highest < 2 ** bits) throw new RangeError(`highest must be a safe integer ≥ ${2 ** bits}, got ${highest}`);
    this.highest = highest;
    this.subBucketBits = bits;
    this.halfCount = 2 ** (bits - 1);
    this.maxIndex = this.indexOf(highest);
    this.counts = new Float64Array(this.maxIndex + 1);
  }

  /** Relative precision bound of reported values (1/H). */
  get relativePrecision(): number {
    return 1 / this.halfCount;
  }

  get count(): number {
    return this.total;
  }
  /** Smallest recorded value (exact, after rounding to an integer); NaN when empty. */
  get min(): number {
    return this.total === 0 ? NaN : this.minValue;
  }
  /** Largest recorded value (exact, also above `highest`); NaN when empty. */
  get max(): number {
    return this.total === 0 ? NaN : this.maxValue;
  }
  /** Exact mean of recorded values; NaN when empty. */
  get mean(): number {
    return this.total === 0 ? NaN : this.sumValue / this.total;
  }

  /** Record `value` `count` times. */
  record(value: number, count = 1): void {
    if (!(count > 0)) return;
    const v = normalize(value);
    const i = v >= this.highest ? this.maxIndex : this.indexOf(v);
    this.counts[i]! += count;
    this.total += count;
    this.sumValue += v * count;
    if (v < this.minValue) this.minValue = v;
    if (v > this.maxValue) this.maxValue = v;
  }

  /**
   * Record `value`, plus the samples a stalled measurement loop missed (HdrHistogram's
   * recordValueWithExpectedInterval): when a value exceeds the expected interval between samples,
   * the samples that would have been taken meanwhile are back-filled with value − k·interval for
   * k = 1, 2, … while that stays ≥ interval. Use it when latency is measured from the ACTUAL send
   * time of a loop that sends every `expectedInterval`; a loop that measures from its intended send
   * time (as the e2e producer does) is already corrected and must use record().
   */
  recordCorrected(value: number, expectedInterval: number, count = 1): void {
    this.record(value, count);
    const interval = normalize(expectedInterval);
    if (interval <= 0) return;
    const v = normalize(value);
    // Bounded by value/interval samples; a caller passing a tiny interval asked for that.
    for (let missing = v - interval; missing >= interval; missing -= interval) this.record(missing, count);
  }

  /**
   * The value at percentile `p` (0 … 100): the smallest bucket value such that at least p % of the
   * samples are ≤ it, reported as that bucket's highest equivalent value, clamped to [min, max].
   * p = 0 gives min, p = 100 gives max. NaN when empty.
   */
  percentile(p: number): number {
    if (this.total === 0) return NaN;
    if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be in 0…100, got ${p}`);
    if (p === 0) return this.minValue;
    if (p === 100) return this.maxValue;
    const target = Math.max(1, Math.ceil((p / 100) * this.total - 1e-9));
    let seen = 0;
    for (let i = 0; i <= this.maxIndex; i++) {
      seen += this.counts[i]!;
      if (seen >= target) return Math.min(this.maxValue, Math.max(this.minValue, this.highestEquivalent(i)));
    }
    return this.maxValue;
  }

  /** Add every sample of `other` (which must have the same layout) to this histogram. */
  merge(other: Histogram): this {
    if (other.subBucketBits !== this.subBucketBits || other.highest !== this.highest) {
      throw new RangeError(`cannot merge histograms of different layouts (${other.subBucketBits}/${other.highest} into ${this.subBucketBits}/${this.highest})`);
    }
    if (other.total === 0) return this;
    for (let i = 0; i <= this.maxIndex; i++) {
      const c = other.counts[i]!;
      if (c !== 0) this.counts[i]! += c;
    }
    this.total += other.total;
    this.sumValue += other.sumValue;
    if (other.minValue < this.minValue) this.minValue = other.minValue;
    if (other.maxValue > this.maxValue) this.maxValue = other.maxValue;
    return this;
  }

  reset(): void {
    this.counts.fill(0);
    this.total = 0;
    this.sumValue = 0;
    this.minValue = Infinity;
    this.maxValue = -Infinity;
  }

  /** An empty histogram with the same layout. */
  emptyCopy(): Histogram {
    return new Histogram({ highest: this.highest, subBucketBits: this.subBucketBits });
  }

  toJSON(): HistogramJSON {
    const counts: number[] = [];
    for (let i = 0; i <= this.maxIndex; i++) {
      const c = this.counts[i]!;
      if (c !== 0) counts.push(i, c);
    }
    return {
      v: 1,
      highest: this.highest,
      subBucketBits: this.subBucketBits,
      count: this.total,
      min: this.total === 0 ? 0 : this.minValue,
      max: this.total === 0 ? 0 : this.maxValue,
      sum: this.sumValue,
      counts,
    };
  }

  static fromJSON(json: HistogramJSON): Histogram {
    if (json === null || typeof json !== 'object' || json.v !== 1 || !Array.isArray(json.counts) || json.counts.length % 2 !== 0) {
      throw new TypeError('not a HistogramJSON (v: 1)');
    }
    const h = new Histogram({ highest: json.highest, subBucketBits: json.subBucketBits });
    let total = 0;
    for (let k = 0; k < json.counts.length; k += 2) {
      const i = json.counts[k]!;
      const c = json.counts[k + 1]!;
      if (!Number.isInteger(i) || i < 0 || i > h.maxIndex || !(c > 0)) throw new TypeError(`bad histogram entry [${i}, ${c}]`);
      h.counts[i]! += c;
      total += c;
    }
    if (total !== json.count) throw new TypeError(`histogram counts add up to ${total}, count says ${json.count}`);
    h.total = total;
    h.sumValue = json.sum;
    if (total > 0) {
      h.minValue = json.min;
      h.maxValue = json.max;
    }
    return h;
  }

  // ------------------------------------------------------------------------------ layout

  private indexOf(v: number): number {
    if (v < 2 * this.halfCount) return v;
    const e = log2Floor(v) - (this.subBucketBits - 1);
    return e * this.halfCount + Math.floor(v / POW2[e]!);
  }

  /** Largest value that maps to index i. */
  private highestEquivalent(i: number): number {
    if (i < 2 * this.halfCount) return i;
    const e = Math.floor(i / this.halfCount) - 1;
    const sub = i - e * this.halfCount; // in [H, S)
    return (sub + 1) * POW2[e]! - 1;
  }
}

function normalize(value: number): number {
  if (!(value > 0)) return 0; // negatives, NaN
  return value >= Number.MAX_SAFE_INTEGER ? Number.MAX_SAFE_INTEGER : Math.round(value);
}
