import { describe, expect, it } from 'vitest';
import {
  HEADER_BYTES,
  RingClosedError,
  RingCorruptError,
  RingErrorCode,
  RingLayoutError,
  RingReader,
  RingRecordTooLargeError,
  RingStateError,
  RingWriter,
  closeRing,
  createRing,
  frameBytes,
  ringCapacity,
} from '../../src/ring/index.js';
import { Slot, presetPositions, readSlot } from '../../src/ring/internal.js';
import { WeirError } from '../../src/common/errors.js';

const CAP = 4096;

/** A clock that moves 1 s per reading: every rewind check sees a slow writer (see "rewind" below). */
function slowClock(): () => number {
  let t = 0;
  return () => (t += 1000);
}

function ring(capacity = CAP, startAt?: number, rewind = true, now = slowClock()) {
  const sab = createRing(capacity);
  if (startAt !== undefined) presetPositions(sab, startAt);
  return { sab, writer: new RingWriter(sab, { rewind, now }), reader: new RingReader(sab), data: new Uint8Array(sab, HEADER_BYTES) };
}

const bytes = (...values: number[]) => Uint8Array.from(values);
const seqBytes = (n: number, from = 1) => Uint8Array.from({ length: n }, (_, i) => (from + i) & 0xff);

/** Move both positions to `position` by writing and consuming filler records. */
function advance(writer: RingWriter, reader: RingReader, bytesToSkip: number): void {
  while (bytesToSkip > 0) {
    const frame = Math.min(bytesToSkip, 1024);
    expect(writer.tryWrite(new Uint8Array(frame - 4))).toBe(true);
    writer.publish();
    expect(reader.next()).not.toBeNull();
    reader.release();
    bytesToSkip -= frame;
  }
}

describe('createRing / ringCapacity', () => {
  it('accepts powers of two in [4 KiB, 1 GiB] and records the capacity', () => {
    const sab = createRing(64 * 1024);
    expect(sab.byteLength).toBe(HEADER_BYTES + 64 * 1024);
    expect(ringCapacity(sab)).toBe(64 * 1024);
    expect(new RingWriter(sab).capacity).toBe(64 * 1024);
  });

  it.each([0, 2048, 4095, 4097, 6144, 2 ** 31, Number.NaN, 4096.5])('rejects capacity %s', (capacity) => {
    expect(() => createRing(capacity)).toThrow(RangeError);
  });

  it('rejects buffers that are not rings', () => {
    expect(() => ringCapacity(new SharedArrayBuffer(HEADER_BYTES + CAP))).toThrow(RingLayoutError);
    expect(() => new RingReader(new SharedArrayBuffer(16))).toThrow(RingLayoutError);
    const sab = createRing(CAP);
    const grown = new SharedArrayBuffer(sab.byteLength + CAP);
    new Uint8Array(grown).set(new Uint8Array(sab));
    expect(() => ringCapacity(grown)).toThrow(/does not match/);
  });

  it('puts the write and read indexes on different 64-byte cache lines', () => {
    const line = (slot: number) => Math.floor((slot * 4) / 64);
    const lines = [Slot.MAGIC, Slot.WRITE_INDEX, Slot.READ_INDEX, Slot.CONSUMER_WAITING, Slot.PRODUCER_WAITING].map(line);
    expect(new Set(lines).size).toBe(lines.length);
    expect(HEADER_BYTES % 64).toBe(0);
  });
});

describe('frame layout', () => {
  it('writes a u32 LE length prefix, the payload and zero padding to 4 bytes', () => {
    const { writer, data } = ring();
    data.fill(0xee);
    expect(writer.tryWrite(bytes(1, 2, 3, 4, 5))).toBe(true);
    expect(writer.tryWrite(bytes(9, 8))).toBe(true);
    expect([...data.subarray(0, 24)]).toEqual([
      5, 0, 0, 0, 1, 2, 3, 4, 5, 0, 0, 0, // frame 1: 4 + 5 + 3 padding
      2, 0, 0, 0, 9, 8, 0, 0, //             frame 2: 4 + 2 + 2 padding
      0xee, 0xee, 0xee, 0xee, //            untouched
    ]);
    expect(writer.pending()).toBe(20);
  });

  it('encodes lengths above 255 little-endian', () => {
    const { writer, data } = ring();
    expect(writer.tryWrite(new Uint8Array(0x0203))).toBe(true);
    expect([...data.subarray(0, 4)]).toEqual([0x03, 0x02, 0, 0]);
  });

  it('frames an empty payload as a bare prefix and reads it back as empty', () => {
    const { writer, reader, data } = ring();
    data.fill(0xee);
    expect(writer.tryWrite(new Uint8Array(0))).toBe(true);
    expect([...data.subarray(0, 5)]).toEqual([0, 0, 0, 0, 0xee]);
    writer.publish();
    expect(reader.next()).toEqual(new Uint8Array(0));
    expect(reader.next()).toBeNull();
    expect(reader.release()).toBe(4);
  });

  it('computes frame sizes', () => {
    expect([0, 1, 3, 4, 5, 8].map(frameBytes)).toEqual([4, 8, 8, 8, 12, 12]);
  });

  it('assembles a record from pieces (append ranges and appendU32)', () => {
    const { writer, reader } = ring();
    const src = seqBytes(10);
    expect(writer.begin(4 + 3 + 4)).toBe(true);
    writer.appendU32(0xa1b2c3d4);
    writer.append(src, 2, 5);
    writer.appendU32(7);
    writer.commit();
    writer.publish();
    expect([...reader.next()!]).toEqual([0xd4, 0xc3, 0xb2, 0xa1, 3, 4, 5, 7, 0, 0, 0]);
  });
});

describe('publish / release', () => {
  it('makes committed records visible only on publish, with one store of WRITE_INDEX', () => {
    const { sab, writer, reader } = ring();
    expect(writer.publish()).toBe(false);
    writer.tryWrite(bytes(1));
    writer.tryWrite(bytes(2));
    expect(readSlot(sab, Slot.WRITE_INDEX)).toBe(0);
    expect(reader.available()).toBe(0);
    expect(reader.next()).toBeNull();
    expect(writer.publish()).toBe(true);
    expect(readSlot(sab, Slot.WRITE_INDEX)).toBe(16);
    expect(writer.pending()).toBe(0);
    expect(writer.publish()).toBe(false);
    expect(reader.available()).toBe(16);
    expect([...reader.next()!]).toEqual([1]);
    expect(reader.available()).toBe(8);
    expect([...reader.next()!]).toEqual([2]);
    expect(reader.next()).toBeNull();
  });

  it('does not publish a staged (uncommitted) record', () => {
    const { writer, reader } = ring();
    writer.tryWrite(bytes(1));
    writer.begin(3);
    writer.append(bytes(7, 7));
    writer.publish();
    expect([...reader.next()!]).toEqual([1]);
    expect(reader.next()).toBeNull();
  });

  it('frees space only on release, with one store of READ_INDEX', () => {
    const { sab, writer, reader } = ring();
    const payload = new Uint8Array(1020); // 1024-byte frames: 4 fill the ring
    for (let i = 0; i < 4; i++) expect(writer.tryWrite(payload)).toBe(true);
    expect(writer.freeBytes()).toBe(0);
    writer.publish();
    expect(reader.next()).not.toBeNull();
    expect(reader.next()).not.toBeNull();
    expect(writer.tryWrite(payload)).toBe(false);
    expect(readSlot(sab, Slot.READ_INDEX)).toBe(0);
    expect(reader.unreleased()).toBe(2048);
    expect(reader.release()).toBe(2048);
    expect(readSlot(sab, Slot.READ_INDEX)).toBe(2048);
    expect(reader.release()).toBe(0);
    expect(writer.freeBytes()).toBe(2048);
    expect(writer.tryWrite(payload)).toBe(true);
    expect(writer.tryWrite(payload)).toBe(true);
    expect(writer.tryWrite(new Uint8Array(0))).toBe(false);
  });

  it('begin() on a full ring returns false and writes nothing', () => {
    const { sab, writer } = ring();
    let n = 0;
    while (writer.tryWrite(seqBytes(37, n))) n++;
    expect(n).toBe(Math.floor(CAP / frameBytes(37))); // 93 frames of 44 bytes, 4 bytes left
    expect(writer.freeBytes()).toBe(CAP - n * frameBytes(37));
    const before = new Uint8Array(sab).slice();
    const pending = writer.pending();
    expect(writer.begin(37)).toBe(false);
    expect(writer.begin(1)).toBe(false);
    expect(writer.isStaging()).toBe(false);
    expect(writer.pending()).toBe(pending);
    expect(new Uint8Array(sab)).toEqual(before);
    expect(() => writer.commit()).toThrow(RingStateError);
    expect(writer.tryWrite(new Uint8Array(0))).toBe(true); // the 4 bytes left fit an empty record
    expect(writer.freeBytes()).toBe(0);
  });

  it('accepts one record that exactly fills the ring, at offset 0 and straddling', () => {
    const { writer, reader } = ring();
    const max = writer.maxRecordBytes();
    expect(max).toBe(CAP - 4);
    const big = seqBytes(max, 3);
    expect(writer.tryWrite(big)).toBe(true);
    expect(writer.freeBytes()).toBe(0);
    expect(writer.begin(0)).toBe(false);
    writer.publish();
    const first = reader.next()!;
    expect(first.buffer).toBe(reader.buffer); // contiguous: a view, not a copy
    expect(first).toEqual(big);
    reader.release();
    advance(writer, reader, 8);
    expect(writer.tryWrite(big)).toBe(true);
    writer.publish();
    const second = reader.next()!;
    expect(second.buffer).not.toBe(reader.buffer); // straddles: stitched into scratch
    expect(second).toEqual(big);
  });

  it('rejects payloads that can never fit', () => {
    const { writer } = ring();
    expect(() => writer.begin(CAP - 3)).toThrow(RingRecordTooLargeError);
    expect(() => writer.tryWrite(new Uint8Array(CAP))).toThrow(RingRecordTooLargeError);
    expect(() => writer.canWrite(CAP)).toThrow(RingRecordTooLargeError);
    for (const bad of [-1, 1.5, Number.NaN]) expect(() => writer.begin(bad)).toThrow(RangeError);
    try {
      writer.begin(CAP);
      expect.unreachable();
    } catch (error) {
      expect(WeirError.isWeirError(error)).toBe(true);
      expect(error).toBeInstanceOf(WeirError);
      expect((error as RingRecordTooLargeError).code).toBe(RingErrorCode.RECORD_TOO_LARGE);
      expect((error as RingRecordTooLargeError).name).toBe('RingRecordTooLargeError');
      expect((error as RingRecordTooLargeError).toPlain()).toMatchObject({
        code: 'RING_RECORD_TOO_LARGE',
        details: { payloadLength: CAP, maxRecordBytes: CAP - 4 },
      });
    }
    expect(writer.isStaging()).toBe(false);
    expect(writer.pending()).toBe(0);
  });
});

describe('staging misuse', () => {
  it('throws on begin twice, overflow, short commit and append without begin', () => {
    const { writer, reader } = ring();
    expect(() => writer.append(bytes(1))).toThrow(RingStateError);
    expect(() => writer.appendU32(1)).toThrow(RingStateError);
    writer.begin(5);
    expect(() => writer.begin(1)).toThrow(RingStateError);
    writer.append(bytes(1, 2));
    expect(() => writer.appendU32(0)).toThrow(/overflows/);
    expect(() => writer.append(bytes(1, 2, 3, 4))).toThrow(/overflows/);
    expect(() => writer.commit()).toThrow(/3 of the declared payload bytes still missing/);
    expect(() => writer.append(bytes(1), 0, 2)).toThrow(RangeError);
    writer.abort();
    expect(writer.pending()).toBe(0);
    expect(writer.tryWrite(bytes(4))).toBe(true);
    writer.publish();
    expect([...reader.next()!]).toEqual([4]);
  });
});

describe('wrap point (a writer that never rewinds: the plain byte pipe)', () => {
  it('puts a length prefix in the last 4 bytes and continues the payload at index 0', () => {
    const { writer, reader, data } = ring(CAP, undefined, false);
    advance(writer, reader, CAP - 4);
    expect(writer.tryWrite(seqBytes(6, 0x10))).toBe(true);
    expect([...data.subarray(CAP - 4)]).toEqual([6, 0, 0, 0]);
    expect([...data.subarray(0, 8)]).toEqual([0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0, 0]);
    writer.publish();
    const rec = reader.next()!;
    expect(rec.buffer).toBe(reader.buffer); // payload starts at 0: contiguous
    expect([...rec]).toEqual([0x10, 0x11, 0x12, 0x13, 0x14, 0x15]);
  });

  it('splits a payload and its padding across the end and stitches it back', () => {
    const { writer, reader, data } = ring(CAP, undefined, false);
    advance(writer, reader, CAP - 12);
    expect(writer.tryWrite(seqBytes(11, 0x40))).toBe(true); // prefix at CAP-12, 8 bytes before the end
    expect([...data.subarray(CAP - 12)]).toEqual([11, 0, 0, 0, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47]);
    expect([...data.subarray(0, 4)]).toEqual([0x48, 0x49, 0x4a, 0]);
    expect(writer.tryWrite(bytes(0x99))).toBe(true);
    expect([...data.subarray(4, 9)]).toEqual([1, 0, 0, 0, 0x99]);
    writer.publish();
    const rec = reader.next()!;
    expect(rec.buffer).not.toBe(reader.buffer);
    expect(rec).toEqual(seqBytes(11, 0x40));
    expect([...reader.next()!]).toEqual([0x99]);
  });

  it.each([1, 2, 3])('splits an appendU32 that starts %i byte(s) before the end', (before) => {
    const { writer, reader, data } = ring(CAP, undefined, false);
    advance(writer, reader, CAP - 8); // prefix at CAP-8, payload from CAP-4
    const lead = 4 - before;
    writer.begin(lead + 4);
    writer.append(bytes(0xaa, 0xbb, 0xcc).subarray(0, lead));
    writer.appendU32(0x04030201);
    writer.commit();
    const ring8 = [...data.subarray(CAP - 4), ...data.subarray(0, 4)];
    expect(ring8).toEqual([...[0xaa, 0xbb, 0xcc].slice(0, lead), 1, 2, 3, 4, ...new Array<number>(before).fill(0)]);
    writer.publish();
    expect([...reader.next()!]).toEqual([...[0xaa, 0xbb, 0xcc].slice(0, lead), 1, 2, 3, 4]);
  });

  it('counts positions across 2^32 with unsigned distances', () => {
    const start = 0xffffff00;
    const { sab, writer, reader } = ring(CAP, start);
    expect(writer.freeBytes()).toBe(CAP);
    let written = 0;
    let read = 0;
    // 60 fills of the 4 KiB ring: crosses 2^32 in the first and keeps going.
    for (let i = 0; i < 60; i++) {
      while (writer.tryWrite(seqBytes(97 + (written % 50), written))) written++;
      expect(writer.freeBytes()).toBeLessThan(frameBytes(147));
      writer.publish();
      for (let rec = reader.next(); rec !== null; rec = reader.next()) {
        const expected = seqBytes(97 + (read % 50), read);
        if (Buffer.compare(Buffer.from(rec), expected) !== 0) expect(rec).toEqual(expected); // detail on failure
        read++;
      }
      reader.release();
      expect(reader.available()).toBe(0);
      expect(writer.freeBytes()).toBe(CAP);
    }
    expect(read).toBe(written);
    const end = readSlot(sab, Slot.WRITE_INDEX);
    expect(end).toBeLessThan(start); // wrapped past 2^32
    expect(end).toBe(readSlot(sab, Slot.READ_INDEX));
  });

  it('tells a full ring from an empty one right at 2^32', () => {
    const { writer, reader } = ring(CAP, 2 ** 32 - CAP / 2);
    expect(writer.tryWrite(new Uint8Array(CAP - 4))).toBe(true); // write index lands exactly on 2^32 + CAP/2
    expect(writer.freeBytes()).toBe(0);
    writer.publish();
    expect(reader.available()).toBe(CAP);
    expect(reader.next()!.length).toBe(CAP - 4);
    reader.release();
    expect(writer.freeBytes()).toBe(CAP);
  });
});

describe('rewind: a writer that finds the ring empty half a small ring (or 64 KiB) into a lap goes back to index 0', () => {
  it('skips the rest of the lap with one marker; the reader passes it and gets every record intact', () => {
    const { sab, writer, reader, data } = ring(); // 4 KiB: rewinds past 2 KiB
    advance(writer, reader, 2048); // empty ring at position 2048, which is the check point
    expect(writer.tryWrite(seqBytes(10, 0x20))).toBe(true);
    expect([...data.subarray(2048, 2052)]).toEqual([0xff, 0xff, 0xff, 0xff]); // SKIP_TO_LAP
    expect([...data.subarray(0, 4)]).toEqual([10, 0, 0, 0]); // the record starts the next lap
    expect(writer.freeBytes()).toBe(CAP - 2048 - frameBytes(10)); // skipped bytes count until passed
    writer.publish();
    expect(readSlot(sab, Slot.WRITE_INDEX)).toBe(CAP + frameBytes(10));
    const rec = reader.next()!;
    expect([...rec]).toEqual([...seqBytes(10, 0x20)]);
    expect(rec.buffer).toBe(sab);
    expect(reader.next()).toBeNull();
    expect(reader.release()).toBe(2048 + frameBytes(10));
    expect(writer.freeBytes()).toBe(CAP);
  });

  it('does not rewind while the reader still holds records, nor for a record that would not fit before the skipped bytes', () => {
    const { writer, reader, data } = ring();
    advance(writer, reader, 2044);
    expect(writer.tryWrite(bytes(1))).toBe(true); // 2044..2052: the next begin is past the check point
    writer.publish();
    expect(writer.tryWrite(bytes(2))).toBe(true); // not empty (record 1 unread): no rewind
    expect([...data.subarray(2052, 2057)]).toEqual([1, 0, 0, 0, 2]);
    writer.publish();
    expect([...reader.next()!]).toEqual([1]);
    expect([...reader.next()!]).toEqual([2]);
    reader.release();

    const big = ring();
    advance(big.writer, big.reader, 2048);
    expect(big.writer.tryWrite(new Uint8Array(3000))).toBe(true); // 3004 > 2048 free after a rewind: wraps instead
    expect([...big.data.subarray(2048, 2052)]).toEqual([0xb8, 0x0b, 0, 0]); // its own length, 3000
    big.writer.publish();
    expect(big.reader.next()!.length).toBe(3000);
  });

  it('does not rewind a fast writer (another stride within 10 ms), whose next burst may need the whole ring', () => {
    const { writer, reader, data } = ring(CAP, undefined, true, () => 5); // a clock that does not move
    advance(writer, reader, 2048);
    expect(writer.tryWrite(seqBytes(10, 0x20))).toBe(true);
    expect([...data.subarray(2048, 2052)]).toEqual([10, 0, 0, 0]); // its own prefix, no skip marker
    expect(writer.freeBytes()).toBe(CAP - frameBytes(10));
  });

  it('keeps a ring of many laps at low fill in its first pages', () => {
    const { writer, reader } = ring(1 << 20); // 1 MiB: rewinds past 64 KiB
    const touched = new Set<number>();
    for (let i = 0; i < 20_000; i++) {
      expect(writer.begin(700)).toBe(true);
      writer.append(seqBytes(700, i));
      writer.commit();
      writer.publish();
      const rec = reader.next()!;
      touched.add(Math.floor((rec.byteOffset - HEADER_BYTES) / 4096));
      expect(rec[0]).toBe(i & 0xff);
      reader.release();
    }
    // 20,000 × 704 B = 13.4 MiB through the ring, all within its first 64 KiB + one record.
    expect(Math.max(...touched)).toBeLessThanOrEqual(16);
  });
});

describe('close and corruption', () => {
  it('rejects writes after close but still lets the reader drain', () => {
    const { sab, writer, reader } = ring();
    writer.tryWrite(bytes(1));
    writer.publish();
    closeRing(sab);
    expect(writer.isClosed()).toBe(true);
    expect(reader.isClosed()).toBe(true);
    expect(() => writer.begin(1)).toThrow(RingClosedError);
    expect([...reader.next()!]).toEqual([1]);
    expect(reader.next()).toBeNull();
  });

  it('detects an impossible length prefix instead of reading garbage', () => {
    const { writer, reader, data } = ring();
    writer.tryWrite(bytes(1, 2, 3));
    writer.publish();
    data[1] = 0x10; // length 4099 with 8 bytes published
    expect(() => reader.next()).toThrow(RingCorruptError);
  });
});
