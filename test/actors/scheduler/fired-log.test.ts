/** The scheduler's progress file: reopened state, torn tail, compaction. */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { ENTRY_BYTES, FiredLog } from '../../../src/actors/scheduler/fired-log.js';
import { tmpDir } from '../../support/tmp-dir.js';

const tmp = tmpDir('weir-fired-');
afterEach(() => tmp.cleanup());
const file = (): string => path.join(tmp.dir, 'scheduler', '__delay.t.fired');

it('reopens to the same fired offsets, and ignores (and cuts) a torn last entry', () => {
  const log = new FiredLog(file(), 2, { mode: 'always' });
  for (const o of [0, 1, 2, 5, 9]) log.fired(0, o);
  log.fired(1, 3);
  log.close();
  fs.appendFileSync(file(), Buffer.from([1, 2, 3, 4, 5])); // a write cut short by a crash
  const again = new FiredLog(file(), 2, { mode: 'never' });
  expect(again.sets[0]!.low).toBe(3);
  expect([5, 9].map((o) => again.sets[0]!.has(o))).toEqual([true, true]);
  expect([3, 4, 6].map((o) => again.sets[0]!.has(o))).toEqual([false, false, false]);
  expect(again.sets[1]!.low).toBe(0);
  expect(again.sets[1]!.has(3)).toBe(true);
  expect(fs.statSync(file()).size % ENTRY_BYTES).toBe(0);
  again.close();
});

it('compacts to the live state once it is mostly history', () => {
  const log = new FiredLog(file(), 1, { mode: 'never' });
  for (let o = 0; o < 100_000; o++) log.fired(0, o);
  log.fired(0, 100_005);
  log.flush();
  // 100 001 entries written; the live state is a low-water mark and one offset above it.
  expect(fs.statSync(file()).size).toBe(2 * ENTRY_BYTES);
  log.fired(0, 100_007);
  log.close();
  const again = new FiredLog(file(), 1, { mode: 'never' });
  expect(again.sets[0]!.low).toBe(100_000);
  expect(again.sets[0]!.firedAbove()).toEqual([100_005, 100_007]);
  again.close();
});
