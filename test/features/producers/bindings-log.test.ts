/** The producer bindings file: replay, a torn last line cut, compaction, and the broker's fsync policy. */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { BINDINGS_FILE, BindingLog, encodeLine } from '../../../src/features/producers/bindings-log.js';
import { encodeFrames, jsonPayload, readJournalFile } from '../../../src/journal/index.js';
import type { BindingEntry } from '../../../src/features/producers/registry.js';
import type { FsyncPolicy } from '../../../src/broker.js';
import { tmpDir } from '../../support/tmp-dir.js';
import { until } from '../../support/payload.js';

const tmp = tmpDir('weir-bindings-');
const logs: BindingLog[] = [];
afterEach(async () => {
  for (const l of logs.splice(0)) await l.close();
});
afterAll(() => tmp.cleanup());

const entry = (p: number, e = 0): BindingEntry => ({ p, e, h: 'ab'.repeat(32), t: 1000 + p });
/** The entries in the file, and that it holds nothing else. */
const stored = (file: string): BindingEntry[] => {
  const c = readJournalFile(file);
  expect(c).toMatchObject({ damaged: [], tornBytes: 0 });
  return c.payloads.map((b) => JSON.parse(Buffer.from(b).toString('utf8')) as BindingEntry);
};

async function open(dir: string, fsync: FsyncPolicy, seen: BindingEntry[][] = []): Promise<BindingLog> {
  const log = await BindingLog.open(dir, fsync, (entries) => {
    seen.push(entries);
    return entries;
  });
  logs.push(log);
  return log;
}

describe('BindingLog', () => {
  it('replays what was appended, in order, and cuts a torn last entry', async () => {
    const dir = path.join(tmp.dir, 'replay');
    const log = await open(dir, { mode: 'never' });
    await Promise.all([log.append(entry(1)), log.append(entry(2))]);
    await log.append(entry(1, 1));
    await log.close();
    const file = path.join(dir, BINDINGS_FILE);
    fs.appendFileSync(file, encodeFrames([jsonPayload(entry(3))]).subarray(0, 20)); // a write cut short by a crash
    const seen: BindingEntry[][] = [];
    await open(dir, { mode: 'never' }, seen);
    expect(seen[0]).toEqual([entry(1), entry(2), entry(1, 1)]);
    // Rewritten at open without the torn entry: the next start reads the same.
    expect(stored(file)).toEqual([entry(1), entry(2), entry(1, 1)]);
  });

  it('rewrite replaces the file with the snapshot; later appends follow it', async () => {
    const dir = path.join(tmp.dir, 'rewrite');
    const log = await open(dir, { mode: 'never' });
    for (let i = 0; i < 10; i++) await log.append(entry(i));
    expect(log.linesSinceRewrite).toBe(10);
    await log.rewrite(() => [entry(9)]);
    expect(log.linesSinceRewrite).toBe(0);
    await log.append(entry(10));
    await log.close();
    const seen: BindingEntry[][] = [];
    await open(dir, { mode: 'never' }, seen);
    expect(seen[0]).toEqual([entry(9), entry(10)]);
  });

  it('follows the fsync policy: always syncs before an append resolves, interval within the interval, never not at all', async () => {
    const always = await open(path.join(tmp.dir, 'always'), { mode: 'always' });
    await always.append(entry(1));
    expect(always.syncs).toBe(1);
    await Promise.all([always.append(entry(2)), always.append(entry(3))]); // one group commit
    expect(always.syncs).toBe(2);

    const interval = await open(path.join(tmp.dir, 'interval'), { mode: 'interval', intervalMs: 50 });
    await interval.append(entry(1));
    expect(interval.syncs).toBe(0); // resolved once written; the sync follows
    await until(() => interval.syncs === 1, 5_000, 'the interval fdatasync');

    const never = await open(path.join(tmp.dir, 'never'), { mode: 'never' });
    await never.append(entry(1));
    expect(never.syncs).toBe(0);
    expect(stored(never.file)).toEqual([entry(1)]); // in the file (the OS) once resolved
  });

  it('opens the line format (bindings.log, as the bindings were written before the journal) once, and moves it to the journal', async () => {
    const dir = path.join(tmp.dir, 'legacy');
    fs.mkdirSync(dir, { recursive: true });
    const old = path.join(dir, 'bindings.log');
    fs.writeFileSync(old, [entry(1), entry(2), entry(1, 1)].map(encodeLine).join('') + encodeLine(entry(3)).slice(0, 20)); // and a torn tail
    const seen: BindingEntry[][] = [];
    const log = await open(dir, { mode: 'always' }, seen);
    expect(seen[0]).toEqual([entry(1), entry(2), entry(1, 1)]);
    expect(fs.existsSync(old)).toBe(false);
    await log.append(entry(4));
    await log.close();
    expect(stored(path.join(dir, BINDINGS_FILE))).toEqual([entry(1), entry(2), entry(1, 1), entry(4)]);
  });
});
