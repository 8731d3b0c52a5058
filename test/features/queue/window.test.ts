import { describe, expect, it } from 'vitest';
import { BatchBuilder } from '../../../src/protocol/batch-builder.js';
import { readU32, stampRecord } from '../../../src/protocol/record.js';
import { DONE, MAX_WINDOW, RETRY_WAIT, ShareWindow } from '../../../src/features/queue/window.js';
import { retryDelay } from '../../../src/features/queue/dead-letter.js';

/** Stored records for offsets [base, base+n) with keys `k(i)`, appended at `time`. */
function stored(base: number, n: number, k: (o: number) => string | null = () => null, time = 1000): Uint8Array {
  const b = new BatchBuilder();
  for (let o = base; o < base + n; o++) b.add(k(o), `v${o}`);
  const bytes = b.take();
  let o = base;
  for (let at = 0; at < bytes.length; at += 4 + readU32(bytes, at)) stampRecord(bytes, at, o++, time);
  return bytes;
}
const never = (): number => Infinity;
const mine = (): boolean => false;

describe('ShareWindow', () => {
  it('hands out available offsets once, acks out of order, and advances start past the acked prefix', () => {
    const w = new ShareWindow(10);
    w.load(stored(10, 5), 5, 15);
    expect(w.availableLoaded).toBe(5);
    const a = w.take(1, 3, 0, 1000, 5, false, never, mine);
    expect(a.offsets).toEqual([10, 11, 12]);
    const b = w.take(2, 10, 0, 1000, 5, false, never, mine);
    expect(b.offsets).toEqual([13, 14]);
    const applied: number[] = [];
    expect(w.ack(1, 11, 13, applied)).toBe(2);
    expect(applied).toEqual([11, 13]);
    expect(w.start).toBe(10);
    expect(w.ack(2, 10, 11, [])).toBe(0); // not consumer 2's
    expect(w.ack(1, 10, 11, [])).toBe(1);
    expect(w.start).toBe(13);
    expect(w.inFlight).toBe(2);
  });

  it('times out in-flight offsets and counts deliveries; nack retry waits; exhausted ones are dead-lettered', () => {
    const w = new ShareWindow(0);
    w.load(stored(0, 3), 3, 3);
    w.take(1, 3, 0, 100, 2, false, never, mine);
    const timedOut: number[] = [];
    const exhausted: number[] = [];
    expect(w.expire(99, 2, timedOut, exhausted)).toBe(0);
    const dead: number[] = [];
    const retried: number[] = [];
    expect(w.nack(1, 0, 1, false, 50, 2, (n) => 10 * n, dead, retried)).toBe(1);
    expect(retried).toEqual([0, 60]);
    expect(w.stateOf(0)).toBe(RETRY_WAIT);
    expect(w.expire(100, 2, timedOut, exhausted)).toBe(3); // 1 and 2 timed out; 0's retry is due
    expect(timedOut).toEqual([1, 1, 2, 1]);
    const again = w.take(3, 10, 200, 100, 2, false, never, mine);
    expect(again.offsets).toEqual([0, 1, 2]);
    expect([0, 1, 2].map((o) => w.deliveries(o))).toEqual([2, 2, 2]);
    expect(w.nack(3, 0, 3, false, 210, 2, () => 10, dead, retried)).toBe(3);
    expect(dead).toEqual([0, 1, 2]); // delivered maxDeliveries times
    for (const o of dead) w.finish(o);
    expect(w.start).toBe(3);
  });

  it('ordered keys: a key with an unfinished earlier offset is held back', () => {
    const w = new ShareWindow(0);
    w.load(stored(0, 6, (o) => (o % 2 === 0 ? 'a' : 'b')), 6, 6);
    expect(w.take(1, 10, 0, 1000, 5, true, never, mine).offsets).toEqual([0, 1]);
    expect(w.take(2, 10, 0, 1000, 5, true, never, mine).offsets).toEqual([]);
    w.ack(1, 0, 1, []);
    expect(w.take(2, 10, 0, 1000, 5, true, never, mine).offsets).toEqual([2]);
  });

  it('a read whose gaps reach past the window keeps what fits instead of throwing (the partition stalled for good)', () => {
    const w = new ShareWindow(0);
    const b = new BatchBuilder();
    b.add(null, 'first');
    b.add(null, 'far');
    const bytes = b.take();
    const second = 4 + readU32(bytes, 0);
    stampRecord(bytes, 0, 0, 1000);
    stampRecord(bytes, second, MAX_WINDOW + 5, 1000); // a gap of more offsets than the window holds
    expect(w.load(bytes, 2, MAX_WINDOW + 6)).toBe(1);
    expect(w.readNext).toBe(MAX_WINDOW); // the far record is read again once the window moves
    expect(w.take(1, 10, 0, 1000, 5, false, never, mine).offsets).toEqual([0]);
    w.ack(1, 0, 1, []);
    expect(w.start).toBe(MAX_WINDOW);
    expect(w.room()).toBe(MAX_WINDOW);
  });

  it('unload drops the read-ahead records of a group without consumers and keeps the offsets\' state', () => {
    const w = new ShareWindow(0);
    w.load(stored(0, 6), 6, 6);
    const t = w.take(1, 2, 0, 1000, 5, false, never, mine);
    w.ack(1, 0, 1, []);
    w.releaseOwner(1, 5, [], false); // offset 1: delivered once, back to available
    expect(t.offsets).toEqual([0, 1]);
    w.unload();
    expect(w.loadedBytes).toBe(0);
    expect(w.availableLoaded).toBe(0);
    expect(w.readNext).toBe(1);
    expect(w.take(2, 10, 0, 1000, 5, false, never, mine).offsets).toEqual([]);
    expect(w.load(stored(1, 5), 5, 6)).toBe(5);
    expect(w.take(2, 10, 0, 1000, 5, false, never, mine).offsets).toEqual([1, 2, 3, 4, 5]);
    expect(w.deliveries(1)).toBe(2);
  });

  it('a shortened visibility timeout applies at once, not after the longer deadlines queued before it', () => {
    const w = new ShareWindow(0);
    w.load(stored(0, 2), 2, 2);
    w.take(1, 1, 0, 30_000, 5, false, never, mine); // offset 0: deadline 30 000
    w.take(2, 1, 0, 100, 5, false, never, mine); // the topic's timeout became 100 ms: offset 1, deadline 100
    const timedOut: number[] = [];
    expect(w.expire(200, 5, timedOut, [])).toBe(1);
    expect(timedOut).toEqual([1, 2]);
    expect(w.expire(30_000, 5, timedOut, [])).toBe(1);
    expect(timedOut).toEqual([1, 2, 0, 1]);
  });

  it('expired records are not delivered', () => {
    const w = new ShareWindow(0);
    w.load(stored(0, 3), 3, 3);
    const r = w.take(1, 10, 5000, 1000, 5, false, (_b, at) => (at === 0 ? 4000 : Infinity), mine);
    expect(r.expired).toEqual([0]);
    expect(r.offsets).toEqual([1, 2]);
  });

  it('a snapshot restores done ranges, delivery counts and retries; records are re-read', () => {
    const w = new ShareWindow(0);
    w.load(stored(0, 6), 6, 6);
    w.take(1, 6, 0, 1000, 5, false, never, mine);
    w.ack(1, 0, 2, []);
    w.ack(1, 3, 4, []);
    w.nack(1, 4, 5, false, 0, 5, () => 500, [], []);
    const s = w.snapshot();
    expect(s.start).toBe(2);
    expect(s.done).toEqual([3, 4]);
    const r = new ShareWindow(s.start);
    for (let i = 0; i < s.done.length; i += 2) r.restoreDone(s.done[i]!, s.done[i + 1]!);
    for (let i = 0; i < s.counts.length; i += 2) r.restoreCount(s.counts[i]!, s.counts[i + 1]!);
    for (let i = 0; i < s.retries.length; i += 2) r.restoreRetry(s.retries[i]!, s.retries[i + 1]!);
    r.load(stored(2, 4), 4, 6);
    expect(r.stateOf(3)).toBe(DONE);
    const again = r.take(2, 10, 100, 1000, 5, false, never, mine);
    expect(again.offsets).toEqual([2, 5]); // 4 waits for its retry until 500
    expect(again.offsets.map((o) => r.deliveries(o))).toEqual([2, 2]);
    r.expire(500, 5, [], []);
    expect(r.take(2, 10, 500, 1000, 5, false, never, mine).offsets).toEqual([4]);
  });
});

describe('ShareWindow retention and replay jumps', () => {
  it('skips offsets retention removed before they were loaded, and replays a far jump', () => {
    const w = new ShareWindow(0);
    expect(w.skipTo(200_000)).toEqual([0, 200_000]);
    expect(w.start).toBe(200_000);
    expect(w.readNext).toBe(200_000);
    w.load(stored(200_000, 2), 2, 200_002);
    expect(w.take(1, 10, 0, 1000, 5, false, never, mine).offsets).toEqual([200_000, 200_001]);

    const r = new ShareWindow(0);
    r.restoreDelivered(0, 10);
    r.restoreDone(0, 200_000);
    expect(r.start).toBe(200_000);
    expect(r.deliveries(200_000)).toBe(0);
  });
});

describe('retryDelay', () => {
  it('grows exponentially up to the cap, scaled down by at most the jitter', () => {
    const b = { initialMs: 100, maxMs: 1000, multiplier: 2, jitter: 0.2 };
    expect([1, 2, 3, 4, 5, 10].map((n) => retryDelay(b, n, 0))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(retryDelay(b, 1, 1)).toBe(80);
  });
});
