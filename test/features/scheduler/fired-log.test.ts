/** The scheduler's progress file: reopened state, torn tail, compaction, disk errors. */
import diagnostics_channel from 'node:diagnostics_channel';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { ENTRY_BYTES, EntryKind, FiredLog, applyEntries, encodeEntries, firedJournalPath, type FiredLogFailure } from '../../../src/features/scheduler/fired-log.js';
import { encodeFrames, readJournalFile } from '../../../src/journal/index.js';
import { FiredSet } from '../../../src/features/scheduler/fired-set.js';
import { firedLogPath } from '../../../src/features/scheduler/feature.js';
import { tmpDir } from '../../support/tmp-dir.js';

const tmp = tmpDir('weir-fired-');
afterEach(() => {
  vi.restoreAllMocks();
  tmp.cleanup();
});
const file = (): string => path.join(tmp.dir, 'scheduler', 'abc.fired');

it('reopens to the same fired offsets, and ignores (and cuts) a torn last entry', async () => {
  const log = new FiredLog(file(), 2, { mode: 'always' }, '__delay.t');
  for (const o of [0, 1, 2, 5, 9]) log.fired(0, o);
  log.fired(1, 3);
  await log.close();
  fs.appendFileSync(file(), encodeFrames([encodeEntries([[EntryKind.FIRED, 0, 3]])]).subarray(0, 21)); // a write cut short by a crash
  const again = new FiredLog(file(), 2, { mode: 'never' });
  expect(again.sets[0]!.low).toBe(3);
  expect([5, 9].map((o) => again.sets[0]!.has(o))).toEqual([true, true]);
  expect([3, 4, 6].map((o) => again.sets[0]!.has(o))).toEqual([false, false, false]);
  expect(again.sets[1]!.low).toBe(0);
  expect(again.sets[1]!.has(3)).toBe(true);
  expect(fs.statSync(file()).size % ENTRY_BYTES).toBe(0);
  await again.close();
  // The file names its topic (its own name is a hash).
  expect(applyEntries(readJournalFile(file()).payloads[0]!, [new FiredSet(), new FiredSet()]).topic).toBe('__delay.t');
});

it('stays bounded when one long delay pins the low-water mark (compacts to a bitmap)', async () => {
  const log = new FiredLog(file(), 1, { mode: 'never' }, '__delay.t');
  // Offset 0 is due in a year; 400 000 later ones fire.
  for (let o = 1; o <= 400_000; o++) {
    log.fired(0, o);
    if (o % 50_000 === 0) await log.flush();
  }
  log.fired(0, 400_005);
  await log.flush();
  // Append-only this would be 6.4 MB; the live state is ~50 KB of bitmap.
  expect(fs.statSync(file()).size).toBeLessThan(2 * 1024 * 1024);
  await log.close();
  const again = new FiredLog(file(), 1, { mode: 'never' });
  expect(again.sets[0]!.low).toBe(0);
  expect(again.sets[0]!.has(0)).toBe(false);
  expect(again.sets[0]!.has(1)).toBe(true);
  expect(again.sets[0]!.has(400_000)).toBe(true);
  expect(again.sets[0]!.has(400_001)).toBe(false);
  expect(again.sets[0]!.has(400_005)).toBe(true);
  again.fired(0, 0);
  await again.close();
  const third = new FiredLog(file(), 1, { mode: 'never' });
  expect(third.sets[0]!.low).toBe(400_001);
  await third.close();
});

it('a failing disk neither throws nor loses marks: they stay pending, are reported and retried', async () => {
  const failures: FiredLogFailure[] = [];
  const onFailure = (m: unknown): void => void failures.push(m as FiredLogFailure);
  diagnostics_channel.subscribe('weir:scheduler:fired-log-failed', onFailure);
  vi.spyOn(console, 'error').mockImplementation(() => undefined);
  try {
    const log = new FiredLog(file(), 1, { mode: 'always' }, '__delay.t');
    const realWrite = fs.write;
    let failing = 2;
    vi.spyOn(fs, 'write').mockImplementation(((...args: unknown[]) => {
      const cb = args[args.length - 1] as (err: NodeJS.ErrnoException | null, written: number) => void;
      if (failing > 0) {
        failing--;
        const err: NodeJS.ErrnoException = new Error('ENOSPC: no space left on device');
        err.code = 'ENOSPC';
        setImmediate(() => cb(err, 0));
        return;
      }
      return (realWrite as (...a: unknown[]) => void)(...args);
    }) as typeof fs.write);
    log.fired(0, 0);
    log.fired(0, 1);
    await log.flush();
    expect(log.pendingMarks).toBe(2);
    // Retried with backoff (100 ms, then 200 ms) until the disk takes them.
    const deadline = Date.now() + 5_000;
    while (log.pendingMarks > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(log.pendingMarks).toBe(0);
    expect(failures.length).toBe(2);
    expect(failures[0]!.operation).toBe('write');
    expect(failures[0]!.error.message).toMatch(/ENOSPC/);
    await log.close();
    const again = new FiredLog(file(), 1, { mode: 'never' });
    expect(again.sets[0]!.low).toBe(2);
    await again.close();
  } finally {
    diagnostics_channel.unsubscribe('weir:scheduler:fired-log-failed', onFailure);
  }
});

it('names the file by a hash of the topic (long names fit), moving a log from the old name', () => {
  const dir = path.join(tmp.dir, 'scheduler');
  fs.mkdirSync(dir, { recursive: true });
  const long = `__delay.${'x'.repeat(240)}`;
  expect(path.basename(firedLogPath(dir, long)).length).toBeLessThan(64);
  fs.writeFileSync(path.join(dir, '__delay.t.fired'), 'old');
  const moved = firedLogPath(dir, '__delay.t');
  expect(fs.readFileSync(moved, 'utf8')).toBe('old');
  expect(fs.existsSync(path.join(dir, '__delay.t.fired'))).toBe(false);
});

it('reads a file of the format before the journal larger than one 16 MiB read, and moves it to the journal compacted', async () => {
  const legacy = file(); // `<hash>.fired`: records back to back, as the fired log wrote them before the journal
  const journal = firedJournalPath(legacy);
  fs.mkdirSync(path.dirname(legacy), { recursive: true });
  const n = 1_200_000; // 19.2 MB of 16-byte entries: more than one 16 MiB read
  const entries: Array<[EntryKind, number, number]> = [];
  for (let o = 0; o < n; o++) if (o !== 5) entries.push([EntryKind.FIRED, 0, o]);
  fs.writeFileSync(legacy, encodeEntries(entries));
  fs.appendFileSync(legacy, Buffer.from([9, 9, 9])); // torn
  const log = new FiredLog(journal, 1, { mode: 'never' }, '__delay.t', legacy);
  expect(log.sets[0]!.low).toBe(5);
  expect([4, 5, 6, n - 1, n].map((o) => log.sets[0]!.has(o))).toEqual([true, false, true, true, false]);
  expect(fs.statSync(journal).size).toBeLessThan(200_000); // a low mark and a ~150 KB bitmap
  expect(fs.existsSync(legacy)).toBe(false);
  await log.close();
  const again = new FiredLog(journal, 1, { mode: 'never' }, '__delay.t', legacy);
  expect(again.sets[0]!.low).toBe(5);
  expect(again.sets[0]!.has(n - 1)).toBe(true);
  expect(again.sets[0]!.has(5)).toBe(false);
  await again.close();
});
