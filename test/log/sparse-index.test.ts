import { describe, expect, it } from 'vitest';
import { INDEX_ENTRY_BYTES, SparseIndex, findSegment, needsIndexEntry, parseSegmentName, segmentName } from '../../src/log/internal.js';

describe('SparseIndex (pure)', () => {
  it('pushes, grows and encodes little-endian 16-byte entries', () => {
    const idx = new SparseIndex(1);
    const big = 2 ** 41 + 12345; // timestamp above 2^32
    for (let i = 0; i < 100; i++) idx.push(i * 3, i * 1000, big + i);
    expect(idx.count).toBe(100);
    const bytes = idx.entryBytes();
    expect(bytes.length).toBe(100 * INDEX_ENTRY_BYTES);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    expect(dv.getUint32(16 * 7, true)).toBe(21);
    expect(dv.getUint32(16 * 7 + 4, true)).toBe(7000);
    expect(dv.getUint32(16 * 7 + 8, true) + dv.getUint32(16 * 7 + 12, true) * 2 ** 32).toBe(big + 7);
    const again = SparseIndex.fromBytes(bytes);
    expect(again.count).toBe(100);
    expect(again.timestamp(99)).toBe(big + 99);
    expect(again.position(42)).toBe(42000);
  });

  it('fromBytes ignores a trailing partial entry', () => {
    const idx = new SparseIndex();
    idx.push(0, 0, 5);
    idx.push(4, 400, 6);
    const raw = new Uint8Array(40);
    raw.set(idx.entryBytes());
    raw.fill(0xee, 32);
    expect(SparseIndex.fromBytes(raw).count).toBe(2);
  });

  it('floorByOffset and lastBeforeTimestamp are binary searches with the right edges', () => {
    const idx = new SparseIndex();
    // rel 0,10,20,...; ts 100,100,110,110,120,...
    for (let i = 0; i < 50; i++) idx.push(i * 10, i * 500, 100 + Math.floor(i / 2) * 10);
    for (let rel = 0; rel < 520; rel++) {
      let want = -1;
      for (let i = 0; i < 50; i++) if (idx.relOffset(i) <= rel) want = i;
      expect(idx.floorByOffset(rel)).toBe(want);
    }
    for (let ts = 90; ts < 380; ts++) {
      let want = -1;
      for (let i = 0; i < 50; i++) if (idx.timestamp(i) < ts) want = i;
      expect(idx.lastBeforeTimestamp(ts)).toBe(want);
    }
    expect(new SparseIndex().floorByOffset(5)).toBe(-1);
  });

  it('validPrefixLength stops at the first malformed entry', () => {
    const mk = (entries: Array<[number, number, number]>) => {
      const idx = new SparseIndex();
      for (const [r, p, t] of entries) idx.push(r, p, t);
      return idx;
    };
    expect(mk([[0, 0, 1], [5, 500, 2], [9, 900, 2]]).validPrefixLength(1000)).toBe(3);
    expect(mk([[0, 0, 1], [5, 500, 2], [9, 900, 2]]).validPrefixLength(900)).toBe(2); // beyond EOF
    expect(mk([[0, 0, 1], [5, 500, 2], [5, 900, 2]]).validPrefixLength(1000)).toBe(2); // offset not ascending
    expect(mk([[0, 0, 1], [5, 500, 2], [6, 400, 2]]).validPrefixLength(1000)).toBe(2); // position not ascending
    expect(mk([[0, 0, 3], [5, 500, 2]]).validPrefixLength(1000)).toBe(1); // time goes back
    expect(mk([[1, 0, 3]]).validPrefixLength(1000)).toBe(0); // first entry must be (0, 0)
    expect(mk([[0, 0, 3]]).validPrefixLength(0)).toBe(0); // empty file: nothing is valid
  });

  it('truncate keeps a prefix', () => {
    const idx = new SparseIndex();
    for (let i = 0; i < 10; i++) idx.push(i, i * 10, i);
    idx.truncate(4);
    expect(idx.count).toBe(4);
    idx.push(99, 999, 99);
    expect(idx.relOffset(4)).toBe(99);
  });
});

describe('layout (pure)', () => {
  it('names segments with 20 zero-padded digits and parses them back', () => {
    expect(segmentName(0, '.log')).toBe('00000000000000000000.log');
    expect(segmentName(2 ** 53 - 1, '.index')).toBe('00009007199254740991.index');
    expect(parseSegmentName('00000000000000001234.log')).toEqual({ base: 1234, kind: 'log' });
    expect(parseSegmentName('00000000000000001234.index')).toEqual({ base: 1234, kind: 'index' });
    expect(parseSegmentName('1234.log')).toBeNull();
    expect(parseSegmentName('00000000000000001234.log.tmp')).toBeNull();
    expect(parseSegmentName('99999999999999999999.log')).toBeNull(); // not a safe integer
  });

  it('findSegment returns the last base <= offset', () => {
    const segs = [{ base: 0 }, { base: 10 }, { base: 25 }];
    expect(findSegment(segs, 0)).toBe(0);
    expect(findSegment(segs, 9)).toBe(0);
    expect(findSegment(segs, 10)).toBe(1);
    expect(findSegment(segs, 24)).toBe(1);
    expect(findSegment(segs, 1000)).toBe(2);
    expect(findSegment([{ base: 5 }], 4)).toBe(-1);
  });

  it('needsIndexEntry: first record always, then every interval bytes', () => {
    expect(needsIndexEntry(0, -1, 4096)).toBe(true);
    expect(needsIndexEntry(700, -1, 4096)).toBe(true);
    expect(needsIndexEntry(4095, 0, 4096)).toBe(false);
    expect(needsIndexEntry(4096, 0, 4096)).toBe(true);
  });
});
