import fs from 'node:fs';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { TxnLog } from '../../../src/actors/transactions/txn-log.js';
import { TransactionBook, type TxnLogEntry } from '../../../src/actors/transactions/book.js';
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
