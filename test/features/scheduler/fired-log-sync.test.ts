/** The scheduler's fired log keeps the broker's fsync policy: syncs observed on `weir:journal:sync`. */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { FiredLog } from '../../../src/features/scheduler/fired-log.js';
import { JournalSyncs } from '../../support/journal-syncs.js';
import { until } from '../../support/payload.js';
import { tmpDir } from '../../support/tmp-dir.js';

let tmp: ReturnType<typeof tmpDir>;
let syncs: JournalSyncs | null = null;
let log: FiredLog | null = null;
beforeEach(() => {
  tmp = tmpDir('weir-fired-sync-');
});
afterEach(async () => {
  await log?.close();
  log = null;
  syncs?.stop();
  syncs = null;
  tmp.cleanup();
});
const file = (): string => path.join(tmp.dir, 'scheduler', 'abc.fired');

it('always: a mark is fdatasynced before flush() resolves', async () => {
  log = new FiredLog(file(), 1, { mode: 'always' }, '__delay.t');
  syncs = new JournalSyncs();
  const before = fs.statSync(file()).size;
  log.fired(0, 5);
  await log.flush();
  syncs.mark('flushed');
  expect(log.pendingMarks).toBe(0);
  expect(syncs.before(file(), 'flushed')).toBe(1);
  expect(syncs.lastBefore(file(), 'flushed')!.size).toBe(fs.statSync(file()).size);
  expect(fs.statSync(file()).size).toBeGreaterThan(before);
});

it('interval:50: a written mark is fdatasynced soon after, not only at close', async () => {
  log = new FiredLog(file(), 1, { mode: 'interval', intervalMs: 50 }, '__delay.t');
  syncs = new JournalSyncs();
  log.fired(0, 5);
  log.fired(0, 6);
  await log.flush();
  const size = fs.statSync(file()).size;
  await until(() => syncs!.of(file()).some((s) => s.size >= size), 50 + 3_000, 'a sync covering the marks');
});

it('never: marks are written, never fdatasynced (not even at close)', async () => {
  log = new FiredLog(file(), 1, { mode: 'never' }, '__delay.t');
  syncs = new JournalSyncs();
  const before = fs.statSync(file()).size;
  log.fired(0, 5);
  await log.flush();
  await new Promise((r) => setTimeout(r, 200));
  await log.close();
  log = null;
  expect(fs.statSync(file()).size).toBeGreaterThan(before);
  expect(syncs.of(file())).toEqual([]);
});
