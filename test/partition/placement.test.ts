/** The placement policy's decisions (pure: samples in, moves out). */
import { expect, it } from 'vitest';
import { DEFAULT_PLACEMENT, PlacementPolicy, type TopicLoad } from '../../src/partition/placement.js';

const opts = { ...DEFAULT_PLACEMENT, busySamples: 3, coldSamples: 4 };
const load = (topic: string, host: TopicLoad['host'], recordsPerSec: number, gatewayMsPerSec = 0): TopicLoad => ({ topic, host, recordsPerSec, gatewayMsPerSec });

it('moves the busiest hot gateway-hosted topic to threads only after busySamples busy samples in a row', () => {
  const p = new PlacementPolicy(opts);
  const topics = [load('a', 'gateway', 50_000), load('b', 'gateway', 300_000), load('c', 'threads', 900_000), load('d', 'gateway', 5_000)];
  expect(p.decide(0.9, topics)).toBeNull();
  expect(p.decide(0.9, topics)).toBeNull();
  expect(p.decide(0.5, topics)).toBeNull(); // a quieter sample starts the count again
  expect(p.decide(0.9, topics)).toBeNull();
  expect(p.decide(0.9, topics)).toBeNull();
  expect(p.decide(0.9, topics)).toEqual({ topic: 'b', to: 'threads' });
  // The next move needs a fresh busy stretch.
  const after = [load('a', 'gateway', 50_000), load('b', 'threads', 300_000), load('c', 'threads', 900_000)];
  expect(p.decide(0.9, after)).toBeNull();
  expect(p.decide(0.9, after)).toBeNull();
  expect(p.decide(0.9, after)).toEqual({ topic: 'a', to: 'threads' });
});

it('keeps a busy gateway as it is when no topic there is hot (the load is not a topic to move)', () => {
  const p = new PlacementPolicy(opts);
  const topics = [load('a', 'gateway', 19_999), load('b', 'threads', 500_000)];
  for (let i = 0; i < 10; i++) expect(p.decide(1, topics)).toBeNull();
});

it('moves a threaded topic back after coldSamples quiet samples, only while the gateway is idle, the longest-quiet first', () => {
  const p = new PlacementPolicy(opts);
  const quiet = (x: number) => [load('a', 'threads', x), load('b', 'threads', 0), load('c', 'gateway', 0)];
  expect(p.decide(0.1, [load('a', 'threads', 50_000), load('b', 'threads', 0)])).toBeNull(); // b: 1
  expect(p.decide(0.1, quiet(10_000))).toBeNull(); // a: 1, b: 2 (at the threshold counts as quiet)
  expect(p.decide(0.1, quiet(0))).toBeNull(); // a: 2, b: 3
  expect(p.decide(0.5, quiet(0))).toBeNull(); // b: 4, but the gateway is not idle
  expect(p.decide(0.2, quiet(0))).toEqual({ topic: 'b', to: 'gateway' }); // a: 4, b: 5: b is the longest quiet
  expect(p.decide(0.2, [load('a', 'threads', 0)])).toEqual({ topic: 'a', to: 'gateway' });
  // A busy sample of a topic resets its count.
  expect(p.decide(0.1, [load('x', 'threads', 0)])).toBeNull();
  expect(p.decide(0.1, [load('x', 'threads', 0)])).toBeNull();
  expect(p.decide(0.1, [load('x', 'threads', 0)])).toBeNull();
  expect(p.decide(0.1, [load('x', 'threads', 10_001)])).toBeNull();
  for (let i = 0; i < 3; i++) expect(p.decide(0.1, [load('x', 'threads', 0)])).toBeNull();
  expect(p.decide(0.1, [load('x', 'threads', 0)])).toEqual({ topic: 'x', to: 'gateway' });
});

it('moves a quiet topic that takes much of the gateway thread (slow fdatasyncs) too, and brings it back only after coldSamplesAfterSlow', () => {
  const p = new PlacementPolicy({ ...opts, hotGatewayMsPerSec: 250, coldSamplesAfterSlow: 8 });
  // 'slow': 2,000 records/s but 400 ms/s of the thread (1.6× its threshold); 'fast': 30,000 records/s (1.5×); 'x': 200 ms/s (below).
  const busy = [load('slow', 'gateway', 2_000, 400), load('fast', 'gateway', 30_000, 100), load('x', 'gateway', 0, 200)];
  expect(p.decide(0.9, busy)).toBeNull();
  expect(p.decide(0.9, busy)).toBeNull();
  expect(p.decide(0.9, busy)).toEqual({ topic: 'slow', to: 'threads' });
  const next = [load('slow', 'threads', 2_000), load('fast', 'gateway', 30_000, 100), load('x', 'gateway', 0, 200)];
  expect(p.decide(0.9, next)).toBeNull();
  expect(p.decide(0.9, next)).toBeNull();
  expect(p.decide(0.9, next)).toEqual({ topic: 'fast', to: 'threads' });
  // Both quiet on threads ('slow' since it moved: 3 samples at 2,000 records/s): 'fast' comes back
  // after coldSamples (4) although 'slow' has been quiet longer (7), which needs 8.
  const quiet = [load('slow', 'threads', 0), load('fast', 'threads', 0), load('x', 'gateway', 0, 1)];
  for (let i = 0; i < 3; i++) expect(p.decide(0.1, quiet)).toBeNull();
  expect(p.decide(0.1, quiet)).toEqual({ topic: 'fast', to: 'gateway' });
  expect(p.decide(0.1, [load('slow', 'threads', 0), load('fast', 'gateway', 0, 1)])).toEqual({ topic: 'slow', to: 'gateway' });
  // A gateway busy with a topic below both thresholds keeps it.
  for (let i = 0; i < 5; i++) expect(p.decide(1, [load('x', 'gateway', 19_999, 249)])).toBeNull();
});

it('refuses thresholds that would let a topic move back and forth', () => {
  expect(() => new PlacementPolicy({ ...opts, coldRecordsPerSec: opts.hotRecordsPerSec })).toThrow(RangeError);
  expect(() => new PlacementPolicy({ ...opts, idleUtilization: opts.busyUtilization })).toThrow(RangeError);
  expect(() => new PlacementPolicy({ ...opts, busySamples: 0 })).toThrow(RangeError);
  expect(() => new PlacementPolicy({ ...opts, coldSamplesAfterSlow: 0 })).toThrow(RangeError);
  expect(() => new PlacementPolicy({ ...opts, hotGatewayMsPerSec: 0 })).toThrow(RangeError);
});
