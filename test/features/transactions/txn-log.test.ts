import fs from 'node:fs';
import path from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { TxnLog } from '../../../src/features/transactions/txn-log.js';
import { TransactionBook, encodeEntry, type TxnLogEntry } from '../../../src/features/transactions/book.js';
import { crc32c } from '../../../src/common/crc32c.js';
import { encodeFrames, jsonPayload, readJournalFile } from '../../../src/journal/index.js';
import { tmpDir } from '../../support/tmp-dir.js';

const tmp = tmpDir('weir-txnlog-');
afterEach(() => {
  vi.restoreAllMocks();
  tmp.cleanup();
});

/** Open the log like the coordinator does: replay into a book, compact to its snapshot. */
async function open(dir: string): Promise<{ log: TxnLog; book: TransactionBook; torn: boolean }> {
  const book = new TransactionBook();
  const { log, torn } = await TxnLog.open(dir, { mode: 'always' }, (entries) => {
    for (const e of entries) book.apply(e);
    return book.snapshot();
  });
  return { log, book, torn };
}

it('keeps what was appended across reopen, compacts finished transactions away, cuts a torn tail', async () => {
  let { log, book } = await open(tmp.dir);
  const write = async (e: TxnLogEntry): Promise<void> => {
    await log.append(e);
    book.apply(e);
  };
  // Entries of one turn share a write.
  await Promise.all([
    write({ e: 'begin', txn: 1, topic: 't', group: 'g', at: 1 }),
    write({ e: 'begin', txn: 2, topic: 't', group: 'g', at: 2 }),
  ]);
  await write({ e: 'half', txn: 1, base: 0, count: 4, bytes: 40, partition: null, at: 3 });
  await write({ e: 'rollback', txn: 2, at: 4, by: 'producer' });
  // A compaction while appends keep coming: nothing is lost.
  const compaction = log.rewrite(() => book.snapshot());
  const late = write({ e: 'begin', txn: 3, topic: 't', group: 'g', at: 5 });
  await Promise.all([compaction, late]);
  await write({ e: 'half', txn: 3, base: 4, count: 1, bytes: 10, partition: 0, at: 6 });
  await log.close();

  const file = path.join(tmp.dir, 'txn.journal');
  fs.appendFileSync(file, encodeFrames([jsonPayload({ e: 'commit', txn: 1, at: 7, by: 'producer' })]).subarray(0, 30)); // a torn last write
  ({ log, book } = await open(tmp.dir));
  expect(book.get(1)).toMatchObject({ state: 'open', messages: 4 });
  expect(book.get(2)).toBeUndefined(); // finished: compacted away
  expect(book.get(3)).toMatchObject({ state: 'open', messages: 1, halves: [{ base: 4, count: 1, partition: 0 }] });
  expect(book.next).toBe(4);
  await log.close();
  // The reopen rewrote the file without the torn entry and without transaction 2.
  const stored = readJournalFile(file);
  expect(stored).toMatchObject({ damaged: [], tornBytes: 0 });
  expect(stored.payloads.map((b) => Buffer.from(b).toString('utf8')).join('\n')).not.toContain('"txn":2');
});

it('cuts a failed write back, so entries appended after it survive the next replay', async () => {
  let { log, book } = await open(tmp.dir);
  const write = async (e: TxnLogEntry): Promise<void> => {
    await log.append(e);
    book.apply(e);
  };
  await write({ e: 'begin', txn: 1, topic: 't', group: 'g', at: 1 });
  // The disk takes half of the next write, then fails (EIO).
  vi.spyOn(fs, 'write').mockImplementationOnce(((...args: unknown[]) => {
    const [fd, data, from, length] = args as [number, Uint8Array, number, number];
    const cb = args[args.length - 1] as (err: Error | null, written: number) => void;
    fs.writeSync(fd, data, from, Math.floor(length / 2));
    setImmediate(() => cb(Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' }), 0));
  }) as unknown as typeof fs.write);
  await expect(write({ e: 'commit', txn: 1, at: 2, by: 'producer' })).rejects.toMatchObject({ code: 'STORAGE_ERROR' });
  expect(book.get(1)!.state).toBe('open'); // the caller did not apply it
  await write({ e: 'rollback', txn: 1, at: 3, by: 'producer' });
  await write({ e: 'begin', txn: 2, topic: 't', group: 'g', at: 4 });
  await log.close();

  let torn: boolean;
  ({ log, book, torn } = await open(tmp.dir));
  expect(torn).toBe(false);
  expect(book.get(1)).toMatchObject({ state: 'rolled_back' }); // not committed: the cut line is gone
  expect(book.get(2)).toMatchObject({ state: 'open' });
  expect(book.next).toBe(3);
  await log.close();
});

it('keeps a copy of a log damaged before its last entry (compaction would erase it), and replays the entries around the damage', async () => {
  let { log, book } = await open(tmp.dir);
  for (const e of [
    { e: 'begin', txn: 1, topic: 't', group: 'g', at: 1 },
    { e: 'begin', txn: 2, topic: 't', group: 'g', at: 2 },
    { e: 'begin', txn: 3, topic: 't', group: 'g', at: 3 },
  ] as TxnLogEntry[]) {
    await log.append(e);
    book.apply(e);
  }
  await log.close();
  const file = path.join(tmp.dir, 'txn.journal');
  const text = fs.readFileSync(file).toString('latin1');
  expect(text).toContain('"txn":2');
  const damaged = text.replace('"txn":2', '"txn":7'); // its CRC no longer matches: that entry is skipped, the ones after it replayed
  fs.writeFileSync(file, Buffer.from(damaged, 'latin1'));
  let torn: boolean;
  vi.spyOn(console, 'error').mockImplementation(() => undefined);
  ({ log, book, torn } = await open(tmp.dir));
  expect(torn).toBe(true);
  expect(book.get(1)).toBeDefined();
  expect(book.get(3)).toBeDefined(); // after the damaged entry
  await log.close();
  const copies = fs.readdirSync(tmp.dir).filter((f) => f.startsWith('txn.journal.damaged-'));
  expect(copies).toHaveLength(1);
  expect(fs.readFileSync(path.join(tmp.dir, copies[0]!)).toString('latin1')).toBe(damaged);
});

it('opens the line format (txn.log, as the log was written before the journal) once, and moves it to the journal', async () => {
  const entries: TxnLogEntry[] = [
    { e: 'next', next: 1 },
    { e: 'begin', txn: 1, topic: 't', group: 'g', at: 1 },
    { e: 'half', txn: 1, base: 0, count: 2, bytes: 20, partition: null, at: 2 },
    { e: 'begin', txn: 2, topic: 't', group: 'g', at: 3 },
    { e: 'commit', txn: 2, at: 4, by: 'producer' },
  ];
  const old = path.join(tmp.dir, 'txn.log');
  fs.mkdirSync(tmp.dir, { recursive: true });
  fs.writeFileSync(old, entries.map((e) => encodeEntry(e, (b) => crc32c(b))).join('') + '0badc0de {"e":"comm'); // and a torn tail
  let { log, book } = await open(tmp.dir);
  expect(book.get(1)).toMatchObject({ state: 'open', messages: 2 });
  expect(book.get(2)).toMatchObject({ state: 'committed' });
  expect(fs.existsSync(old)).toBe(false);
  await log.append({ e: 'rollback', txn: 1, at: 5, by: 'producer' });
  await log.close();
  ({ log, book } = await open(tmp.dir));
  expect(book.get(1)).toMatchObject({ state: 'rolled_back' });
  expect(book.next).toBe(3);
  await log.close();
});
