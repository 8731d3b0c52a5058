/**
 * The scheduler's pure core: the due-time index, the fired-offset set and its log encoding, the
 * time headers (validation, due time, rewrite) and the expiry filter. No broker, no IO.
 */
import { describe, expect, it } from 'vitest';
import { BatchBuilder } from '../../../src/protocol/batch-builder.js';
import { readMessages } from '../../../src/protocol/batch-reader.js';
import { Header } from '../../../src/protocol/headers.js';
import { F_ATTRIBUTES, RecordIndex, scanBatch, stampRecord, readU32 } from '../../../src/protocol/record.js';
import { DueIndex } from '../../../src/features/scheduler/due-index.js';
import { FiredSet } from '../../../src/features/scheduler/fired-set.js';
import { EntryKind, applyEntries, encodeEntries } from '../../../src/features/scheduler/fired-log.js';
import { TimeKind, classifyProduced, dueTimeOf, rewriteRecord } from '../../../src/protocol/time-headers.js';
import { dropExpired } from '../../../src/protocol/expiry-filter.js';
import { withAbsoluteDelays } from '../../../src/features/scheduler/feature.js';
import { WeirError } from '../../../src/common/errors.js';
import { mulberry32 } from '../../support/seeded-prng.js';

const seededRandom = (seed: number): (() => number) => {
  const prng = mulberry32(seed);
  return () => prng.float();
};

const limits = { maxRecordBytes: 1 << 20, maxRecords: 100_000 };

/** A batch of stored records: scanned (attributes set) and stamped with offsets and timestamps. */
function stored(messages: Array<{ value: string; headers?: Record<string, string>; key?: string }>, firstOffset: number, timestamp: number): Uint8Array {
  const b = new BatchBuilder();
  for (const m of messages) b.add(m.key ?? null, m.value, m.headers);
  const batch = b.take();
  const index = new RecordIndex();
  scanBatch(batch, index, limits);
  for (let i = 0; i < index.count; i++) stampRecord(batch, index.start[i]!, firstOffset + i, timestamp);
  return batch;
}
const values = (batch: Uint8Array): string[] => readMessages('t', 0, batch).map((m) => new TextDecoder().decode(m.value));

describe('DueIndex', () => {
  it('pops entries in (due, offset) order, only those due', () => {
    const rnd = seededRandom(7);
    const idx = new DueIndex(16);
    const entries: Array<[number, number, number]> = [];
    for (let i = 0; i < 20_000; i++) {
      const e: [number, number, number] = [Math.floor(rnd() * 5000), i % 7, i];
      entries.push(e);
      idx.push(...e);
    }
    const out: Array<[number, number, number]> = [];
    expect(idx.popDue(2500, (d, p, o) => out.push([d, p, o]))).toBe(entries.filter((e) => e[0] <= 2500).length);
    idx.popDue(Infinity, (d, p, o) => out.push([d, p, o]));
    const sorted = [...entries].sort((a, b) => a[0] - b[0] || a[2] - b[2]);
    expect(out).toEqual(sorted);
    expect(idx.size).toBe(0);
    expect(idx.peekDue()).toBe(Infinity);
  });

  it('holds a million pending entries in under 20 MB (18 bytes each, no object per entry)', () => {
    const idx = new DueIndex();
    const rnd = seededRandom(3);
    const base = 1_800_000_000_000;
    for (let i = 0; i < 1_000_000; i++) idx.push(base + Math.floor(rnd() * 86_400_000), i % 1024, 2 ** 40 + i);
    expect(idx.size).toBe(1_000_000);
    expect(idx.memoryBytes).toBeLessThanOrEqual(20 * 1024 * 1024);
    // Still a heap: the first entries out are the earliest.
    let last = -Infinity;
    let ordered = true;
    idx.popDue(base + 3_600_000, (d) => {
      if (d < last) ordered = false;
      last = d;
    }, 10_000);
    expect(ordered).toBe(true);
    expect(idx.size).toBe(990_000);
  });
});

describe('FiredSet', () => {
  it('tracks out-of-order fired offsets with a low-water mark and few bytes', () => {
    const s = new FiredSet();
    const rnd = seededRandom(11);
    const order = Array.from({ length: 100_000 }, (_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const half = order.slice(0, 50_000);
    for (const o of half) expect(s.mark(o)).toBe(true);
    expect(s.mark(half[0]!)).toBe(false);
    const firedSet = new Set(half);
    for (let o = 0; o < 100_000; o += 97) expect(s.has(o)).toBe(firedSet.has(o));
    let low = 0;
    while (firedSet.has(low)) low++;
    expect(s.low).toBe(low);
    expect(s.firedAboveLow).toBe(50_000 - low);
    expect(s.firedAbove()).toEqual(half.filter((o) => o >= low).sort((a, b) => a - b));
    for (const o of order.slice(50_000)) s.mark(o);
    expect(s.low).toBe(100_000);
    expect(s.firedAboveLow).toBe(0);
    expect(s.memoryBytes).toBeLessThanOrEqual(16 * 1024);
  });

  it('rebuilds from its log entries, ignoring a torn last entry', () => {
    const bytes = encodeEntries([
      [EntryKind.LOW_WATER, 0, 10],
      [EntryKind.FIRED, 0, 12],
      [EntryKind.FIRED, 1, 0],
      [EntryKind.FIRED, 0, 10],
      [EntryKind.FIRED, 1, 5],
    ]);
    const sets = [new FiredSet(), new FiredSet()];
    expect(applyEntries(bytes.subarray(0, bytes.length - 3), sets).validBytes).toBe(4 * 16);
    expect(sets[0]!.low).toBe(11);
    expect(sets[0]!.has(12)).toBe(true);
    expect(sets[0]!.has(11)).toBe(false);
    expect(sets[1]!.low).toBe(1);
    expect(sets[1]!.has(5)).toBe(false); // the torn entry
  });
});

describe('time headers', () => {
  const produced = (headers: Record<string, string>): { batch: Uint8Array; index: RecordIndex } => {
    const b = new BatchBuilder();
    b.add('k', 'v', headers);
    const batch = b.take();
    const index = new RecordIndex();
    scanBatch(batch, index, limits);
    return { batch, index };
  };
  const classify = (headers: Record<string, string>): TimeKind => classifyProduced(produced(headers).batch, 0, 0);
  const badField = (headers: Record<string, string>): unknown => {
    try {
      classify(headers);
      return null;
    } catch (err) {
      expect(WeirError.isWeirError(err)).toBe(true);
      return [(err as WeirError).code, (err as WeirError).details?.field];
    }
  };

  it('classifies scheduled and immediate records and refuses bad values with BAD_REQUEST', () => {
    expect(classify({})).toBe(TimeKind.IMMEDIATE);
    expect(classify({ [Header.TTL]: '1000' })).toBe(TimeKind.IMMEDIATE);
    expect(classify({ [Header.DELAY]: '0' })).toBe(TimeKind.SCHEDULED);
    expect(classify({ [Header.DELIVER_AT]: '1700000000000', [Header.EXPIRES_AT]: '1800000000000' })).toBe(TimeKind.SCHEDULED);
    expect(badField({ [Header.DELAY]: 'soon' })).toEqual(['BAD_REQUEST', 'headers.weir-delay']);
    expect(badField({ [Header.DELAY]: '-5' })).toEqual(['BAD_REQUEST', 'headers.weir-delay']);
    expect(badField({ [Header.DELIVER_AT]: '' })).toEqual(['BAD_REQUEST', 'headers.weir-deliver-at']);
    expect(badField({ [Header.TTL]: '1.5' })).toEqual(['BAD_REQUEST', 'headers.weir-ttl']);
    expect(badField({ [Header.EXPIRES_AT]: '99999999999999999' })).toEqual(['BAD_REQUEST', 'headers.weir-expires-at']);
    expect(badField({ [Header.DELAY]: '5', [Header.DELIVER_AT]: '1700000000000' })).toEqual(['BAD_REQUEST', 'headers.weir-delay']);
  });

  it('turns weir-delay into an absolute time at the gateway and strips both when the message fires', () => {
    const { batch, index } = produced({ a: '1', [Header.DELAY]: '250', [Header.TTL]: '9' });
    const scheduled = withAbsoluteDelays(batch, index, 1_000_000);
    const again = new RecordIndex();
    scanBatch(scheduled, again, limits);
    stampRecord(scheduled, 0, 3, 2_000_000); // the schedule log appends it later; due stays put
    expect(dueTimeOf(scheduled, 0)).toBe(1_000_250);
    const fired = rewriteRecord(scheduled, 0, new Set([Header.DELAY, Header.DELIVER_AT]));
    const m = readMessages('t', 0, fired)[0]!;
    expect(m.key).toBe('k');
    expect(new TextDecoder().decode(m.value)).toBe('v');
    expect(m.headers).toEqual({ a: '1', [Header.TTL]: '9' });
    expect(m.offset).toBe(0);
    expect(fired[F_ATTRIBUTES]).toBe(0);
    expect(readU32(fired, 0) + 4).toBe(fired.length);
  });

  it('a delay without deliver-at counts from the append time', () => {
    const batch = stored([{ value: 'x', headers: { [Header.DELAY]: '40' } }], 0, 5_000);
    expect(dueTimeOf(batch, 0)).toBe(5_040);
  });
});

describe('dropExpired', () => {
  it('returns null (deliver the batch as it is, nothing allocated) when nothing expired', () => {
    const batch = stored([{ value: 'a' }, { value: 'b' }], 0, 1000);
    expect(dropExpired(batch, 2, null, 10 ** 13)).toBeNull();
    const fresh = stored([{ value: 'a', headers: { [Header.TTL]: '60000' } }], 0, 1000);
    expect(dropExpired(fresh, 1, 60_000, 2000)).toBeNull();
  });

  it('drops records past their own expiry, their ttl or the topic ttl, and keeps the rest in order', () => {
    const now = 10_000;
    const batch = stored(
      [
        { value: 'old-by-topic-ttl' }, // appended at 1000, topic ttl 5000 → expired at 6000
        { value: 'expires-later', headers: { [Header.EXPIRES_AT]: '20000' } },
        { value: 'expired-at', headers: { [Header.EXPIRES_AT]: '10000' } },
        { value: 'ttl-short', headers: { [Header.TTL]: '100' } },
      ],
      0,
      1000,
    );
    expect(values(dropExpired(batch, 4, null, now)!.records)).toEqual(['old-by-topic-ttl', 'expires-later']);
    expect(dropExpired(batch, 4, null, now)!.count).toBe(2);
    // With a topic ttl of 5 s every record (appended at 1000) is gone at 10 000, but not at 5 000.
    expect(dropExpired(batch, 4, 5000, now)!.count).toBe(0);
    expect(values(dropExpired(batch, 4, 5000, 5000)!.records)).toEqual(['old-by-topic-ttl', 'expires-later', 'expired-at']);
  });
});
