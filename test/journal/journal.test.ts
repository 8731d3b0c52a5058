/**
 * The journal primitive: group commit, each fsync policy (syncs counted on `weir:journal:sync`),
 * torn tail and damaged middle entry at open, failed writes cut back, a real full disk, compaction,
 * and the one-time migration of an old-format file. Real files; failures injected into node:fs.
 */
import diagnostics_channel from 'node:diagnostics_channel';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Journal, readJournalFile, type FsyncPolicy, type JournalOptions, type JournalSkipped } from '../../src/journal/index.js';
import { FRAME_HEADER_BYTES } from '../../src/journal/frame.js';
import { JournalSyncs } from '../support/journal-syncs.js';
import { until } from '../support/payload.js';
import { canMountTmpfs, fillDisk, smallFs } from '../support/small-fs.js';
import { tmpDir } from '../support/tmp-dir.js';

let tmp: ReturnType<typeof tmpDir>;
let syncs: JournalSyncs | null = null;
const open: Journal[] = [];
beforeEach(() => {
  tmp = tmpDir('weir-journal-');
});
afterEach(async () => {
  vi.restoreAllMocks();
  for (const j of open.splice(0)) await j.close().catch(() => undefined); // a test of failures may leave it failing
  syncs?.stop();
  syncs = null;
  tmp.cleanup();
});

const enc = new TextEncoder();
const dec = new TextDecoder();
const p = (s: string): Uint8Array => enc.encode(s);
const text = (b: Uint8Array): string => dec.decode(b);
const fileIn = (dir = tmp.dir): string => path.join(dir, 'j', 'test.journal');

function openJournal(options: Partial<JournalOptions> & { fsync: FsyncPolicy; io: 'sync' | 'async' }, file = fileIn()) {
  const r = Journal.open({ file, ...options }, (payload) => text(payload));
  open.push(r.journal);
  return r;
}
const contents = (file = fileIn()): string[] => readJournalFile(file).payloads.map(text);

describe('appends and the fsync policy', () => {
  it('always (sync flavour): each append is fdatasynced before it returns, one sync per batch', () => {
    const { journal } = openJournal({ fsync: { mode: 'always' }, io: 'sync' });
    syncs = new JournalSyncs();
    journal.appendSync([p('a')]);
    syncs.mark('1');
    journal.appendSync([p('b'), p('c'), p('d')]);
    syncs.mark('2');
    expect(syncs.before(journal.file, '1')).toBe(1);
    expect(syncs.before(journal.file, '2')).toBe(2);
    expect(syncs.of(journal.file).at(-1)!.size).toBe(fs.statSync(journal.file).size);
    expect(journal.syncs).toBe(2);
    expect(contents()).toEqual(['a', 'b', 'c', 'd']);
  });

  it('always (async flavour): entries appended in one turn share one write and one fdatasync, before they resolve', async () => {
    const { journal } = openJournal({ fsync: { mode: 'always' }, io: 'async' });
    syncs = new JournalSyncs();
    const writes = vi.spyOn(fs, 'write');
    await Promise.all(['a', 'b', 'c'].map((s) => journal.append(p(s))));
    syncs.mark('group');
    expect(writes).toHaveBeenCalledTimes(1);
    expect(syncs.before(journal.file, 'group')).toBe(1);
    await journal.append(p('d'));
    syncs.mark('single');
    expect(syncs.before(journal.file, 'single')).toBe(2);
    expect(syncs.of(journal.file).at(-1)!.size).toBe(fs.statSync(journal.file).size);
    expect(contents()).toEqual(['a', 'b', 'c', 'd']);
  });

  for (const io of ['sync', 'async'] as const) {
    it(`interval:50 (${io}): not synced when the append returns, synced within the interval, and at close`, async () => {
      const { journal } = openJournal({ fsync: { mode: 'interval', intervalMs: 50 }, io });
      syncs = new JournalSyncs();
      if (io === 'sync') journal.appendSync([p('a')]);
      else await journal.append(p('a'));
      expect(syncs.of(journal.file)).toEqual([]);
      const size = fs.statSync(journal.file).size;
      await until(() => syncs!.of(journal.file).some((s) => s.size >= size), 50 + 3_000, 'the interval sync');
      const n = syncs.of(journal.file).length;
      await new Promise((r) => setTimeout(r, 150));
      expect(syncs.of(journal.file).length).toBe(n); // nothing unsynced: no more syncs
      if (io === 'sync') {
        journal.appendSync([p('b')]);
        journal.closeSync();
      } else {
        await journal.append(p('b'));
        await journal.close();
      }
      expect(syncs.of(journal.file).length).toBe(n + 1); // the close synced b
      expect(syncs.of(journal.file).at(-1)!.size).toBe(fs.statSync(journal.file).size);
    });

    it(`never (${io}): written, never fdatasynced, not at close nor for a compaction`, async () => {
      const { journal } = openJournal({ fsync: { mode: 'never' }, io });
      syncs = new JournalSyncs();
      if (io === 'sync') {
        journal.appendSync([p('a')]);
        journal.replaceSync([p('snap')]);
        journal.appendSync([p('b')]);
        journal.closeSync();
      } else {
        await journal.append(p('a'));
        await journal.replace(() => [p('snap')]);
        await journal.append(p('b'));
        await journal.close();
      }
      expect(contents()).toEqual(['snap', 'b']);
      expect(syncs.of(journal.file)).toEqual([]);
    });
  }
});

describe('open', () => {
  it('cuts a torn tail, reports it, and the next append is not glued to it', () => {
    const file = fileIn();
    let { journal } = openJournal({ fsync: { mode: 'never' }, io: 'sync' });
    journal.appendSync([p('one'), p('two')]);
    journal.closeSync();
    const whole = fs.statSync(file).size;
    // A crash mid-write: the first 10 bytes of the next entry's frame.
    const next = fs.readFileSync(file).subarray(0, FRAME_HEADER_BYTES + 3);
    fs.appendFileSync(file, next.subarray(0, 10));
    const published: JournalSkipped[] = [];
    const listener = (m: unknown): void => void published.push(m as JournalSkipped);
    diagnostics_channel.subscribe('weir:journal:skipped', listener);
    let r;
    try {
      r = openJournal({ fsync: { mode: 'never' }, io: 'sync' });
    } finally {
      diagnostics_channel.unsubscribe('weir:journal:skipped', listener);
    }
    expect(r.entries).toEqual(['one', 'two']);
    expect(r.recovery).toMatchObject({ entries: 2, skipped: 0, positions: [whole], truncatedBytes: 10 });
    expect(published).toEqual([{ file, skippedLines: 0, positions: [whole], truncatedBytes: 10 }]);
    expect(fs.statSync(file).size).toBe(whole);
    journal = r.journal;
    journal.appendSync([p('three')]);
    journal.closeSync();
    expect(readJournalFile(file)).toMatchObject({ damaged: [], tornBytes: 0 });
    expect(contents()).toEqual(['one', 'two', 'three']);
  });

  it('skips a damaged entry in the middle, replays every other one, reports count and position', () => {
    const file = fileIn();
    const { journal } = openJournal({ fsync: { mode: 'never' }, io: 'sync' });
    journal.appendSync([p('["a",1]'), p('["b",2]'), p('["c",3]'), p('["d",4]')]);
    journal.closeSync();
    const bytes = fs.readFileSync(file);
    const second = bytes.indexOf('["b",2]') - FRAME_HEADER_BYTES;
    bytes[bytes.indexOf('["b",2]') + 2] = 'x'.charCodeAt(0); // bit rot inside the second entry
    fs.writeFileSync(file, bytes);
    const published: JournalSkipped[] = [];
    const listener = (m: unknown): void => void published.push(m as JournalSkipped);
    diagnostics_channel.subscribe('weir:journal:skipped', listener);
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    let r;
    try {
      r = openJournal({ fsync: { mode: 'never' }, io: 'sync', keepDamaged: true });
    } finally {
      diagnostics_channel.unsubscribe('weir:journal:skipped', listener);
    }
    expect(r.entries).toEqual(['["a",1]', '["c",3]', '["d",4]']);
    expect(r.recovery).toMatchObject({ entries: 3, skipped: 1, positions: [second], truncatedBytes: 0 });
    expect(published).toEqual([{ file, skippedLines: 1, positions: [second], truncatedBytes: 0 }]);
    // The damaged file is kept for an operator (keepDamaged), byte for byte.
    expect(fs.readFileSync(r.recovery.damagedCopy!)).toEqual(bytes);
  });

  it('an entry that checks out but does not decode is skipped and reported like a damaged one', () => {
    const file = fileIn();
    const { journal } = openJournal({ fsync: { mode: 'never' }, io: 'sync' });
    journal.appendSync([p('1'), p('oops'), p('3')]);
    journal.closeSync();
    const r = Journal.open({ file, fsync: { mode: 'never' }, io: 'sync' }, (b) => (/^\d+$/.test(text(b)) ? Number(text(b)) : undefined));
    open.push(r.journal);
    expect(r.entries).toEqual([1, 3]);
    expect(r.recovery).toMatchObject({ skipped: 1, positions: [FRAME_HEADER_BYTES + 1] });
  });

  it('migrates a file of the old format once: read, written framed, removed', () => {
    const file = fileIn();
    const old = path.join(path.dirname(file), 'test.jsonl');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(old, '["a"]\n["b"]\n');
    const legacy = { file: old, read: (f: string) => fs.readFileSync(f, 'utf8').split('\n').filter(Boolean).map(p) };
    syncs = new JournalSyncs();
    const r = openJournal({ fsync: { mode: 'always' }, io: 'sync', legacy });
    expect(r.entries).toEqual(['["a"]', '["b"]']);
    expect(r.recovery.migratedFrom).toBe(old);
    expect(fs.existsSync(old)).toBe(false);
    expect(syncs.of(file).length).toBe(1); // written durably under always
    r.journal.appendSync([p('["c"]')]);
    r.journal.closeSync();
    open.splice(0);
    // An interrupted migration (the old file still there beside the new one): the new one counts.
    fs.writeFileSync(old, '["stale"]\n');
    const again = openJournal({ fsync: { mode: 'never' }, io: 'sync', legacy });
    expect(again.entries).toEqual(['["a"]', '["b"]', '["c"]']);
    expect(again.recovery.migratedFrom).toBeNull();
    expect(fs.existsSync(old)).toBe(false);
  });
});

describe('failed writes', () => {
  for (const io of ['sync', 'async'] as const) {
    it(`a write that stores part of an entry and then fails is cut back and thrown (${io}); later appends follow the last whole entry`, async () => {
      const { journal } = openJournal({ fsync: { mode: 'never' }, io });
      const append = (s: string): Promise<void> | void => (io === 'sync' ? journal.appendSync([p(s)]) : journal.append(p(s)));
      await append('first');
      const eio = Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });
      if (io === 'sync') {
        const real = fs.writeSync;
        vi.spyOn(fs, 'writeSync').mockImplementationOnce(((fd: number, b: Uint8Array, off: number, len: number) => {
          real(fd, b, off, Math.floor(len / 2)); // half of it reaches the file
          throw eio;
        }) as unknown as typeof fs.writeSync);
        expect(() => journal.appendSync([p('second')])).toThrow(expect.objectContaining({ code: 'STORAGE_ERROR', details: expect.objectContaining({ op: 'write', errno: 'EIO' }) }));
      } else {
        const real = fs.write;
        vi.spyOn(fs, 'write').mockImplementationOnce(((...args: unknown[]) => {
          const [fd, b, off, len] = args as [number, Uint8Array, number, number];
          const cb = args[args.length - 1] as (err: Error | null, n: number) => void;
          fs.writeSync(fd, b, off, Math.floor(len / 2));
          setImmediate(() => cb(eio, 0));
        }) as unknown as typeof real);
        await expect(journal.append(p('second'))).rejects.toMatchObject({ code: 'STORAGE_ERROR' });
      }
      expect(readJournalFile(journal.file)).toMatchObject({ damaged: [], tornBytes: 0 });
      await append('third');
      expect(contents()).toEqual(['first', 'third']);
    });
  }

  it('always: a failed fdatasync takes the written entry back out (not acknowledged)', () => {
    const { journal } = openJournal({ fsync: { mode: 'always' }, io: 'sync' });
    journal.appendSync([p('first')]);
    vi.spyOn(fs, 'fdatasyncSync').mockImplementationOnce(() => {
      throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
    });
    expect(() => journal.appendSync([p('second')])).toThrow(expect.objectContaining({ code: 'STORAGE_ERROR', details: expect.objectContaining({ op: 'fdatasync' }) }));
    expect(contents()).toEqual(['first']);
    journal.appendSync([p('third')]);
    expect(contents()).toEqual(['first', 'third']);
  });

  it('when a failed write cannot be cut back, every later append is refused rather than follow a partial entry', () => {
    const { journal } = openJournal({ fsync: { mode: 'never' }, io: 'sync' });
    journal.appendSync([p('first')]);
    const real = fs.writeSync;
    vi.spyOn(fs, 'writeSync').mockImplementationOnce(((fd: number, b: Uint8Array, off: number) => {
      real(fd, b, off, 5);
      throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });
    }) as unknown as typeof fs.writeSync);
    vi.spyOn(fs, 'ftruncateSync').mockImplementationOnce(() => {
      throw Object.assign(new Error('EIO: i/o error, ftruncate'), { code: 'EIO' });
    });
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    expect(() => journal.appendSync([p('second')])).toThrow(expect.objectContaining({ code: 'STORAGE_ERROR' }));
    expect(() => journal.appendSync([p('third')])).toThrow(/could not be cut back/);
    expect(contents()).toEqual(['first']); // the partial bytes are a torn tail, cut at the next open
  });
});

describe('compaction', () => {
  it('replaceSync: the snapshot replaces the file durably (one published sync), appends follow it', () => {
    const { journal } = openJournal({ fsync: { mode: 'always' }, io: 'sync' });
    for (let i = 0; i < 10; i++) journal.appendSync([p(`e${i}`)]);
    syncs = new JournalSyncs();
    journal.replaceSync([p('snap')]);
    expect(syncs.of(journal.file).length).toBe(1);
    expect(journal.entries).toBe(1);
    expect(journal.size).toBe(FRAME_HEADER_BYTES + 4);
    journal.appendSync([p('after')]);
    expect(contents()).toEqual(['snap', 'after']);
    expect(fs.existsSync(`${journal.file}.tmp`)).toBe(false);
  });

  it('replace (async) while appends keep coming: the snapshot first, then what was appended after it', async () => {
    const { journal } = openJournal({ fsync: { mode: 'interval', intervalMs: 20 }, io: 'async' });
    const state: string[] = [];
    const add = async (s: string): Promise<void> => {
      await journal.append(p(s));
      state.push(s); // applied once durable, like the callers do
    };
    await Promise.all([add('a'), add('b')]);
    const compaction = journal.replace(() => [p(`snap:${state.join(',')}`)]);
    const late = add('c');
    await Promise.all([compaction, late]);
    await add('d');
    expect(contents()).toEqual(['snap:a,b', 'c', 'd']);
  });
});

describe.skipIf(!canMountTmpfs)('a full disk (tiny tmpfs; skipped when mount(8) is not permitted)', () => {
  for (const io of ['sync', 'async'] as const) {
    it(`an append that does not fit answers STORAGE_FULL and leaves only whole entries (${io}); appends go on once space is freed`, async () => {
      const disk = smallFs('1m');
      try {
        const file = fileIn(disk.dir);
        const { journal } = openJournal({ fsync: { mode: 'always' }, io }, file);
        const entry = (k: number): Uint8Array => p(JSON.stringify({ k, pad: 'x'.repeat(300) }));
        const append = async (k: number): Promise<void> => (io === 'sync' ? journal.appendSync([entry(k)]) : journal.append(entry(k)));
        let k = 0;
        for (; k < 3; k++) await append(k);
        const filler = fillDisk(disk.dir);
        let failure: unknown = null;
        for (; k < 1000 && failure === null; k++) {
          try {
            await append(k);
          } catch (err) {
            failure = err;
          }
        }
        expect(failure).toMatchObject({ code: 'STORAGE_FULL', retryable: true });
        const stored = readJournalFile(file);
        expect(stored).toMatchObject({ damaged: [], tornBytes: 0 });
        expect(stored.payloads.map((b) => (JSON.parse(text(b)) as { k: number }).k)).toEqual(Array.from({ length: k - 1 }, (_, i) => i));
        // Still full: refused the same way.
        await expect(Promise.resolve().then(() => append(5000))).rejects.toMatchObject({ code: 'STORAGE_FULL' });
        fs.unlinkSync(filler);
        await append(k);
        expect(readJournalFile(file).payloads.length).toBe(k);
        if (io === 'sync') journal.closeSync();
        else await journal.close();
        open.splice(0);
      } finally {
        disk.cleanup();
      }
    });
  }
});
