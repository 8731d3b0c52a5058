import { describe, expect, it } from 'vitest';
import { SparseIndex, newCursor, scanChunk } from '../../src/log/internal.js';
import { makeBatch, stampBatch } from './helpers.js';

/** 12 stored records of mixed sizes, offsets 100..111. */
function stored(): { bytes: Uint8Array; bounds: number[] } {
  const parts = [makeBatch(0, 4, 10), makeBatch(4, 4, 200), makeBatch(8, 4, 0)];
  const total = parts.reduce((n, p) => n + p.bytes.length, 0);
  const bytes = new Uint8Array(total);
  let at = 0;
  let off = 100;
  for (const p of parts) {
    bytes.set(stampBatch(p.bytes, off, 1_700_000_000_000 + off), at);
    at += p.bytes.length;
    off += p.count;
  }
  const bounds = [0];
  for (let p = 0; p < bytes.length; ) {
    p += 4 + (bytes[p]! | (bytes[p + 1]! << 8) | (bytes[p + 2]! << 16) | (bytes[p + 3]! << 24));
    bounds.push(p);
  }
  return { bytes, bounds };
}

describe('scanChunk (pure, byte by byte)', () => {
  const { bytes, bounds } = stored();

  it('accepts exactly the whole records of every prefix', () => {
    for (let len = 0; len <= bytes.length; len++) {
      const c = newCursor(0, 100, -1, -1);
      scanChunk(bytes, 0, len, true, c, 100, null, 1);
      const whole = bounds.filter((b) => b <= len);
      const end = whole[whole.length - 1]!;
      expect(c.position).toBe(end);
      expect(c.offset).toBe(100 + whole.length - 1);
      expect(c.stop).toBe(end === len ? 'END' : 'TORN');
    }
  });

  it('asks for more when a chunk that is not the end of file cuts a record', () => {
    const c = newCursor(0, 100, -1, -1);
    scanChunk(bytes, 0, bounds[5]! + 10, false, c, 100, null, 1);
    expect(c.stop).toBe('NEED_MORE');
    expect(c.position).toBe(bounds[5]);
    expect(c.need).toBe(bounds[6]! - bounds[5]!);
  });

  it('feeding arbitrary chunks gives the same result and index as one pass', () => {
    const one = new SparseIndex();
    const c1 = newCursor(0, 100, -1, -1);
    scanChunk(bytes, 0, bytes.length, true, c1, 100, one, 300);
    expect(c1.stop).toBe('END');
    for (const chunk of [1, 7, 36, 50, 333]) {
      const idx = new SparseIndex();
      const c = newCursor(0, 100, -1, -1);
      let guard = 0;
      for (;;) {
        const to = Math.min(bytes.length, c.position + Math.max(chunk, c.need));
        // the chunk starts at the cursor, as scanFile does
        scanChunk(bytes.subarray(c.position), 0, to - c.position, to === bytes.length, c, 100, idx, 300);
        if (c.stop !== 'NEED_MORE') break;
        expect(++guard).toBeLessThan(10_000);
      }
      expect(c.stop).toBe('END');
      expect(c.offset).toBe(112);
      expect(idx.entryBytes()).toEqual(one.entryBytes());
    }
    expect(one.relOffset(0)).toBe(0);
    expect(one.count).toBeGreaterThan(2);
  });

  it('stops at a flipped byte (CRC), a bad length, a bad magic and an out-of-sequence offset', () => {
    for (let rec = 0; rec < bounds.length - 1; rec++) {
      for (const field of [0, 4, 8, 16, 34, 40]) {
        const at = bounds[rec]! + field;
        if (at >= bounds[rec + 1]!) continue;
        const b = bytes.slice();
        b[at] ^= field === 0 ? 0x40 : 0x01;
        const c = newCursor(0, 100, -1, -1);
        scanChunk(b, 0, b.length, true, c, 100, null, 1);
        expect(c.position).toBe(bounds[rec]);
        expect(c.offset).toBe(100 + rec);
        expect(['CORRUPT', 'TORN', 'OUT_OF_SEQUENCE']).toContain(c.stop);
      }
    }
    const c = newCursor(0, 101, -1, -1); // expects offset 101 at the first record, finds 100
    scanChunk(bytes, 0, bytes.length, true, c, 100, null, 1);
    expect(c.stop).toBe('OUT_OF_SEQUENCE');
    expect(c.position).toBe(0);
  });
});
