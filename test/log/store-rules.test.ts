/**
 * The rules both partition stores share (src/log/store-rules.ts), on their own: how maxBytes and
 * maxRecords bound a read, when an interval sync falls due, and which segments retention deletes.
 * The contract suite (store-contract.test.ts) checks the stores that use them.
 */
import { describe, expect, it } from 'vitest';
import { BatchBuilder } from '../../src/protocol/batch-builder.js';
import { readU32 } from '../../src/protocol/record.js';
import { MODE_ALWAYS, MODE_INTERVAL } from '../../src/log/options.js';
import { SyncSchedule, expiredSegmentCount, readByteBudget, spanRecords, type RecordSpan } from '../../src/log/store-rules.js';

/** Records of the given value sizes, back to back, and where each ends. */
function records(valueSizes: number[]): { bytes: Uint8Array; ends: number[] } {
  const b = new BatchBuilder(1024);
  for (const n of valueSizes) b.add(null, 'x'.repeat(n));
  const bytes = b.take();
  const ends: number[] = [];
  for (let at = 0; at < bytes.length; at += 4 + readU32(bytes, at)) ends.push(at + 4 + readU32(bytes, at));
  return { bytes, ends };
}

function span(bytes: Uint8Array, firstEnd: number, limit: number, maxRecords: number): RecordSpan {
  const s: RecordSpan = { end: -1, count: -1 };
  spanRecords(bytes, firstEnd, limit, maxRecords, s);
  return s;
}

describe('read bounds', () => {
  const { bytes, ends } = records([10, 20, 30, 40]);

  it('serves whole records up to the byte limit, never a partial one', () => {
    expect(span(bytes, ends[0]!, ends[2]!, 100)).toEqual({ end: ends[2], count: 3 });
    expect(span(bytes, ends[0]!, ends[2]! - 1, 100)).toEqual({ end: ends[1], count: 2 });
    expect(span(bytes, ends[0]!, bytes.length, 100)).toEqual({ end: ends[3], count: 4 });
  });

  it('serves the first record whole however small the limit', () => {
    expect(span(bytes, ends[0]!, 1, 100)).toEqual({ end: ends[0], count: 1 });
    expect(readByteBudget(0)).toBeGreaterThan(0);
  });

  it('stops at maxRecords, and serves one record for maxRecords 0 or 1', () => {
    expect(span(bytes, ends[0]!, bytes.length, 2)).toEqual({ end: ends[1], count: 2 });
    expect(span(bytes, ends[0]!, bytes.length, 1)).toEqual({ end: ends[0], count: 1 });
    expect(span(bytes, ends[0]!, bytes.length, 0)).toEqual({ end: ends[0], count: 1 });
  });

  it('reads from a record in the middle of a buffer', () => {
    // From record 1 (it ends at ends[1]): records 1, 2 and 3.
    expect(span(bytes, ends[1]!, bytes.length, 100)).toEqual({ end: ends[3], count: 3 });
    expect(span(bytes, ends[1]!, ends[3]! - 1, 100)).toEqual({ end: ends[2], count: 2 });
  });
});

describe('SyncSchedule', () => {
  it("under 'interval' a sync falls due intervalMs after the last one, once something is unsynced", () => {
    const s = new SyncSchedule(MODE_INTERVAL, 100, 0, 1000);
    expect(s.dueAt(0)).toBe(Infinity);
    expect(s.dueNow(0, 5000, () => 5000)).toBeNull();
    expect(s.dueAt(10)).toBe(1100);
    expect(s.dueNow(10, 1099, () => 0)).toBeNull();
    expect(s.dueNow(10, 1100, () => 0)).toBe(1100);
    expect(s.dueNow(10, undefined, () => 1200)).toBe(1200);
    s.mark(10, 1200);
    expect(s.dueAt(10)).toBe(Infinity);
    expect(s.dueAt(11)).toBe(1300);
  });

  it('reads the clock only when something is due to be checked', () => {
    const s = new SyncSchedule(MODE_INTERVAL, 100, 5, 0);
    let reads = 0;
    const clock = (): number => {
      reads++;
      return 50;
    };
    expect(s.dueNow(5, undefined, clock)).toBeNull();
    expect(reads).toBe(0);
    expect(s.dueNow(6, undefined, clock)).toBeNull();
    expect(reads).toBe(1);
  });

  it("has nothing due under other policies", () => {
    const s = new SyncSchedule(MODE_ALWAYS, 0, 0, 0);
    expect(s.dueAt(100)).toBe(Infinity);
    expect(s.dueNow(100, 1e12, () => 1e12)).toBeNull();
  });
});

describe('expiredSegmentCount', () => {
  const segs = [
    { size: 100, lastTimestamp: 10 },
    { size: 100, lastTimestamp: 20 },
    { size: 100, lastTimestamp: 30 },
    { size: 50, lastTimestamp: 40 },
  ];
  const limits = (retentionBytes?: number, retentionMs?: number) => ({ retentionBytes, retentionMs, segmentMs: undefined });

  it('deletes the oldest while the total passes retentionBytes', () => {
    expect(expiredSegmentCount(segs, limits(350), 0)).toBe(0);
    expect(expiredSegmentCount(segs, limits(349), 0)).toBe(1);
    expect(expiredSegmentCount(segs, limits(150), 0)).toBe(2);
  });

  it('then those whose newest record is older than now - retentionMs', () => {
    expect(expiredSegmentCount(segs, limits(undefined, 100), 120)).toBe(1);
    expect(expiredSegmentCount(segs, limits(undefined, 100), 125)).toBe(2);
    expect(expiredSegmentCount(segs, limits(349, 100), 125)).toBe(2);
    expect(expiredSegmentCount(segs, limits(150, 100), 111)).toBe(2);
  });

  it('never deletes the last (active) segment', () => {
    expect(expiredSegmentCount(segs, limits(0), 0)).toBe(3);
    expect(expiredSegmentCount(segs, limits(undefined, 1), 1e9)).toBe(3);
    expect(expiredSegmentCount([{ size: 10, lastTimestamp: 0 }], limits(0, 0), 1e9)).toBe(0);
  });
});
