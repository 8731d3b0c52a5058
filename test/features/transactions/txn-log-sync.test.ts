/**
 * The transaction log keeps the broker's fsync policy (syncs observed on `weir:journal:sync`), and
 * on a real full disk an entry is stored whole or rejected, never acknowledged half-written.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TxnLogEntry } from '../../../src/features/transactions/book.js';
import { TxnLog } from '../../../src/features/transactions/txn-log.js';
import type { FsyncPolicy } from '../../../src/broker.js';
import { readJournalFile } from '../../../src/journal/index.js';
import { JournalSyncs } from '../../support/journal-syncs.js';
import { until } from '../../support/payload.js';
import { canMountTmpfs, fillDisk, smallFs } from '../../support/small-fs.js';
import { tmpDir } from '../../support/tmp-dir.js';

let tmp: ReturnType<typeof tmpDir>;
let syncs: JournalSyncs | null = null;
let log: TxnLog | null = null;
beforeEach(() => {
  tmp = tmpDir('weir-txnlog-sync-');
});
afterEach(async () => {
  await log?.close();
  log = null;
  syncs?.stop();
  syncs = null;
  tmp.cleanup();
});

async function open(dir: string, fsync: FsyncPolicy): Promise<{ log: TxnLog; entries: TxnLogEntry[] }> {
  const r = await TxnLog.open(dir, fsync, (entries) => entries);
  return { log: r.log, entries: r.entries };
}
const begin = (txn: number, group = 'g'): TxnLogEntry => ({ e: 'begin', txn, topic: 't', group, at: txn });

it('always: an entry is fdatasynced before append() resolves', async () => {
  ({ log } = await open(tmp.dir, { mode: 'always' }));
  const file = path.join(tmp.dir, 'txn.journal');
  syncs = new JournalSyncs();
  await log.append(begin(1));
  syncs.mark('appended');
  expect(syncs.before(file, 'appended')).toBe(1);
  expect(syncs.lastBefore(file, 'appended')!.size).toBe(fs.statSync(file).size);
});

it('interval:50: an appended entry is fdatasynced soon after, not only at close', async () => {
  ({ log } = await open(tmp.dir, { mode: 'interval', intervalMs: 50 }));
  const file = path.join(tmp.dir, 'txn.journal');
  syncs = new JournalSyncs();
  await log.append(begin(1));
  const size = fs.statSync(file).size;
  await until(() => syncs!.of(file).some((s) => s.size >= size), 50 + 3_000, 'a sync covering the entry');
});

it('never: entries are written, never fdatasynced (not even at close)', async () => {
  ({ log } = await open(tmp.dir, { mode: 'never' }));
  const file = path.join(tmp.dir, 'txn.journal');
  syncs = new JournalSyncs();
  await log.append(begin(1));
  await new Promise((r) => setTimeout(r, 200));
  await log.close();
  log = null;
  expect(fs.statSync(file).size).toBeGreaterThan(0);
  expect(syncs.of(file)).toEqual([]);
});

describe.skipIf(!canMountTmpfs)('a full disk (tiny tmpfs; skipped when mount(8) is not permitted)', () => {
  it('an entry that does not fit is rejected with STORAGE_FULL and leaves nothing partial; appends go on once space is freed', async () => {
    const disk = smallFs('1m');
    try {
      const dir = path.join(disk.dir, 'transactions');
      ({ log } = await open(dir, { mode: 'always' }));
      const file = path.join(dir, 'txn.journal');
      const group = 'g'.repeat(300); // ~350 bytes an entry: one soon needs a page the disk lacks
      const stored: TxnLogEntry[] = [];
      for (let txn = 1; txn <= 3; txn++) {
        await log.append(begin(txn, group));
        stored.push(begin(txn, group));
      }
      const filler = fillDisk(disk.dir);
      let failure: unknown = null;
      for (let txn = 4; txn < 1000 && failure === null; txn++) {
        try {
          await log.append(begin(txn, group));
          stored.push(begin(txn, group));
        } catch (err) {
          failure = err;
        }
      }
      expect(failure).toMatchObject({ code: 'STORAGE_FULL', retryable: true });
      // The file holds exactly the acknowledged entries, whole.
      const decoded = readJournalFile(file);
      expect(decoded).toMatchObject({ damaged: [], tornBytes: 0 });
      expect(decoded.payloads.map((b) => JSON.parse(Buffer.from(b).toString('utf8')) as TxnLogEntry)).toEqual(stored);
      fs.unlinkSync(filler);
      await log.append(begin(5000, group));
      stored.push(begin(5000, group));
      await log.close();
      let entries: TxnLogEntry[];
      ({ log, entries } = await open(dir, { mode: 'always' }));
      expect(entries).toEqual(stored);
      await log.close();
      log = null;
    } finally {
      await log?.close();
      log = null;
      disk.cleanup();
    }
  });
});
