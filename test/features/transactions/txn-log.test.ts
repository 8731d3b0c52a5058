import fs from 'node:fs';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { TxnLog } from '../../../src/features/transactions/txn-log.js';
import { TransactionBook, type TxnLogEntry } from '../../../src/features/transactions/book.js';
import { tmpDir } from '../../support/tmp-dir.js';

const tmp = tmpDir('weir-txnlog-');
afterEach(() => tmp.cleanup());

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

  const file = path.join(tmp.dir, 'txn.log');
  fs.appendFileSync(file, '0badc0de {"e":"commit","txn":1'); // a torn last write
  ({ log, book } = await open(tmp.dir));
  expect(book.get(1)).toMatchObject({ state: 'open', messages: 4 });
  expect(book.get(2)).toBeUndefined(); // finished: compacted away
  expect(book.get(3)).toMatchObject({ state: 'open', messages: 1, halves: [{ base: 4, count: 1, partition: 0 }] });
  expect(book.next).toBe(4);
  await log.close();
  // The reopen rewrote the file without the torn line and without transaction 2.
  const text = fs.readFileSync(file, 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  expect(text).not.toContain('"txn":2');
});

it('cuts a failed write back, so entries appended after it survive the next replay', async () => {
  let { log, book } = await open(tmp.dir);
  const write = async (e: TxnLogEntry): Promise<void> => {
    await log.append(e);
    book.apply(e);
  };
  await write({ e: 'begin', txn: 1, topic: 't', group: 'g', at: 1 });
  // The disk takes half of the next write, then fails (EIO).
  const fh = (log as unknown as { fh: fs.promises.FileHandle }).fh;
  const realWrite = fh.write.bind(fh) as (data: string) => Promise<unknown>;
  (fh as unknown as { write: (data: string) => Promise<unknown> }).write = async (data: string) => {
    (fh as unknown as { write: typeof realWrite }).write = realWrite;
    await realWrite(data.slice(0, Math.floor(data.length / 2)));
    throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });
  };
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

it('keeps a copy of a log damaged before its last line (the replay stops there, compaction would erase the rest)', async () => {
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
  const file = path.join(tmp.dir, 'txn.log');
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  lines[2] = lines[2]!.replace('"txn":2', '"txn":7'); // CRC no longer matches: entries after it are unreadable
  const damaged = lines.join('\n');
  fs.writeFileSync(file, damaged);
  let torn: boolean;
  ({ log, book, torn } = await open(tmp.dir));
  expect(torn).toBe(true);
  expect(book.get(1)).toBeDefined();
  await log.close();
  const copies = fs.readdirSync(tmp.dir).filter((f) => f.startsWith('txn.log.damaged-'));
  expect(copies).toHaveLength(1);
  expect(fs.readFileSync(path.join(tmp.dir, copies[0]!), 'utf8')).toBe(damaged);
});
