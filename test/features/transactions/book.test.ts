import { describe, expect, it } from 'vitest';
import { crc32c } from '../../../src/common/crc32c.js';
import { TransactionBook, decodeLog, encodeEntry, type TxnLogEntry } from '../../../src/features/transactions/book.js';

const crc = (b: Uint8Array): number => crc32c(b);

describe('TransactionBook', () => {
  it('follows begin → half → commit → apply → applied and counts ids durably', () => {
    const book = new TransactionBook();
    book.apply({ e: 'begin', txn: 7, topic: 't', group: 'g', at: 1000 });
    expect(book.next).toBe(8);
    book.apply({ e: 'half', txn: 7, base: 0, count: 3, bytes: 300, partition: null, at: 1500 });
    book.apply({ e: 'half', txn: 7, base: 10, count: 2, bytes: 200, partition: 1, at: 1600 });
    const t = book.get(7)!;
    expect(t).toMatchObject({ state: 'open', messages: 5, bytes: 500, lastActivityAt: 1600 });
    expect(t.halves).toEqual([{ base: 0, count: 3, partition: null }, { base: 10, count: 2, partition: 1 }]);
    book.apply({ e: 'commit', txn: 7, at: 2000, by: 'producer' });
    expect(t.state).toBe('committing');
    // A half entry after the decision is ignored: it can never be applied.
    book.apply({ e: 'half', txn: 7, base: 20, count: 1, bytes: 1, partition: null, at: 2100 });
    expect(t.messages).toBe(5);
    book.apply({ e: 'apply', txn: 7, ends: [[0, 5], [1, 9]] });
    expect(t.ends).toEqual([[0, 5], [1, 9]]);
    book.apply({ e: 'applied', txn: 7, at: 2200 });
    expect(t.state).toBe('committed');
    expect(book.unfinished()).toEqual([]);
  });

  it('lets the first decision win', () => {
    const book = new TransactionBook();
    book.apply({ e: 'begin', txn: 1, topic: 't', group: 'g', at: 0 });
    book.apply({ e: 'half', txn: 1, base: 0, count: 1, bytes: 10, partition: null, at: 0 });
    book.apply({ e: 'rollback', txn: 1, at: 5, by: 'timeout' });
    book.apply({ e: 'commit', txn: 1, at: 6, by: 'checker' });
    expect(book.get(1)).toMatchObject({ state: 'rolled_back', decidedBy: 'timeout', decidedAt: 5 });
  });

  it('commits an empty transaction without an apply step', () => {
    const book = new TransactionBook();
    book.apply({ e: 'begin', txn: 1, topic: 't', group: 'g', at: 0 });
    book.apply({ e: 'commit', txn: 1, at: 1, by: 'producer' });
    expect(book.get(1)!.state).toBe('committed');
  });

  it('schedules a check after idle time and a rollback at the timeout from begin', () => {
    const book = new TransactionBook();
    book.apply({ e: 'begin', txn: 1, topic: 't', group: 'g', at: 1000 });
    const t = book.get(1)!;
    const timing = { checkMs: 100, timeoutMs: 1000 };
    expect(book.due(t, timing)).toEqual({ kind: 'check', at: 1100 });
    book.apply({ e: 'half', txn: 1, base: 0, count: 1, bytes: 1, partition: null, at: 1050 });
    expect(book.due(t, timing)).toEqual({ kind: 'check', at: 1150 });
    t.lastCheckAt = 1950;
    expect(book.due(t, timing)).toEqual({ kind: 'rollback', at: 2000 });
    book.apply({ e: 'commit', txn: 1, at: 1960, by: 'checker' });
    expect(book.due(t, timing)).toBeNull();
  });

  it('snapshots only unfinished transactions, and a replay of the snapshot gives the same state', () => {
    const book = new TransactionBook();
    const entries: TxnLogEntry[] = [
      { e: 'begin', txn: 1, topic: 'a', group: 'g', at: 10 },
      { e: 'half', txn: 1, base: 0, count: 2, bytes: 20, partition: null, at: 11 },
      { e: 'begin', txn: 2, topic: 'a', group: 'g', at: 12 },
      { e: 'half', txn: 2, base: 2, count: 1, bytes: 10, partition: 0, at: 13 },
      { e: 'commit', txn: 2, at: 14, by: 'producer' },
      { e: 'apply', txn: 2, ends: [[0, 100]] },
      { e: 'begin', txn: 3, topic: 'a', group: 'g', at: 15 },
      { e: 'rollback', txn: 3, at: 16, by: 'producer' },
    ];
    for (const e of entries) book.apply(e);
    const copy = new TransactionBook();
    for (const e of book.snapshot()) copy.apply(e);
    expect(copy.next).toBe(4);
    expect(copy.get(3)).toBeUndefined();
    expect(copy.get(1)).toMatchObject({ state: 'open', messages: 2, bytes: 20, halves: [{ base: 0, count: 2, partition: null }] });
    expect(copy.get(2)).toMatchObject({ state: 'committing', messages: 1, ends: [[0, 100]], halves: [{ base: 2, count: 1, partition: 0 }] });
  });
});

describe('transaction log lines', () => {
  const entries: TxnLogEntry[] = [
    { e: 'begin', txn: 1, topic: 'ü', group: 'g', at: 1 },
    { e: 'commit', txn: 1, at: 2, by: 'producer' },
  ];
  const text = entries.map((e) => encodeEntry(e, crc)).join('');

  it('round-trips', () => {
    expect(decodeLog(text, crc)).toEqual({ entries, validBytes: new TextEncoder().encode(text).length, torn: false });
  });

  it('stops at a torn last line', () => {
    const cut = text.slice(0, text.length - 5);
    const r = decodeLog(cut, crc);
    expect(r.entries).toEqual(entries.slice(0, 1));
    expect(r.torn).toBe(true);
  });

  it('stops at a line whose CRC does not match', () => {
    const flipped = text.replace('"by":"producer"', '"by":"producex"');
    const r = decodeLog(flipped, crc);
    expect(r.entries).toEqual(entries.slice(0, 1));
    expect(r.torn).toBe(true);
  });
});

describe('unfinished count', () => {
  it('counts open and committing transactions, not finished ones', () => {
    const b = new TransactionBook();
    b.apply({ e: 'begin', txn: 1, topic: 't', group: 'g', at: 1 });
    b.apply({ e: 'begin', txn: 2, topic: 't', group: 'g', at: 1 });
    b.apply({ e: 'begin', txn: 3, topic: 't', group: 'g', at: 1 });
    b.apply({ e: 'begin', txn: 3, topic: 't', group: 'g', at: 1 }); // a repeated line counts once
    expect(b.unfinishedCount).toBe(3);
    b.apply({ e: 'half', txn: 1, base: 0, count: 2, bytes: 20, partition: null, at: 2 });
    b.apply({ e: 'commit', txn: 1, at: 3, by: 'producer' });
    expect(b.unfinishedCount).toBe(3); // committing: its apply still holds it
    b.apply({ e: 'commit', txn: 2, at: 3, by: 'producer' }); // empty: committed at once
    b.apply({ e: 'rollback', txn: 3, at: 3, by: 'producer' });
    b.apply({ e: 'rollback', txn: 3, at: 4, by: 'producer' }); // second decision ignored
    expect(b.unfinishedCount).toBe(1);
    b.apply({ e: 'applied', txn: 1, at: 5 });
    expect(b.unfinishedCount).toBe(0);
  });
});
