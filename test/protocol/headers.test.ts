import { describe, expect, it } from 'vitest';
import { BatchBuilder } from '../../src/protocol/batch-builder.js';
import { ATTR_CONTROL, F_ATTRIBUTES, RecordIndex, scanBatch } from '../../src/protocol/record.js';
import { Header, encodeHeaders, findHeader, hasControlHeaders, headerEnd, headerInteger, headerText, headersStart, readHeaders } from '../../src/protocol/headers.js';

const limits = { maxRecordBytes: 1 << 20, maxRecords: 1000 };

describe('reserved headers', () => {
  it('scanBatch marks exactly the records with weir- headers and counts them', () => {
    const b = new BatchBuilder();
    b.add('k', 'plain');
    b.add('k', 'user header', { 'x-trace': 'abc', weird: '1' });
    b.add(null, 'delayed', { 'x-a': '1', [Header.DELIVER_AT]: '1700000000123' });
    b.add(null, 'short name', { weir: 'not a control header' });
    const batch = b.take();
    batch[F_ATTRIBUTES] = 0xff; // a producer's attribute bits are not trusted
    const index = new RecordIndex();
    expect(scanBatch(batch, index, limits)).toBe(4);
    expect(index.controlCount).toBe(1);
    const flags = [0, 1, 2, 3].map((i) => hasControlHeaders(batch, index.start[i]!));
    expect(flags).toEqual([false, false, true, false]);
    expect(batch[index.start[0]! + F_ATTRIBUTES]).toBe(0);
    expect(batch[index.start[2]! + F_ATTRIBUTES]).toBe(ATTR_CONTROL);
  });

  it('finds header values in place', () => {
    const b = new BatchBuilder();
    b.add('key', 'value', { a: 'x', [Header.DELIVER_AT]: '1700000000123', [Header.REPLY_TO]: 'inbox.7', bad: '12x' });
    const batch = b.take();
    expect(headerInteger(batch, 0, Header.DELIVER_AT)).toBe(1700000000123);
    expect(headerText(batch, 0, Header.REPLY_TO)).toBe('inbox.7');
    expect(headerInteger(batch, 0, 'bad')).toBeNaN();
    expect(findHeader(batch, 0, Header.TTL)).toBeNull();
    expect(headerText(batch, 0, 'a')).toBe('x');
  });
});

describe('the header section codec', () => {
  const headers: Array<[string, string]> = [['a', 'x'], ['naïve-ü', 'ünïcødé value'], [Header.REPLY_TO, '']];

  it('encodeHeaders writes the bytes BatchBuilder writes for the same headers', () => {
    const b = new BatchBuilder();
    b.add('key', 'value', Object.fromEntries(headers));
    const record = b.take();
    expect(record.subarray(headersStart(record, 0))).toEqual(encodeHeaders(headers));
  });

  it('readHeaders gives every header back in order; headerEnd walks them', () => {
    const b = new BatchBuilder();
    b.add(null, 'v', { first: '1' });
    b.add('k', 'value', Object.fromEntries(headers));
    const batch = b.take();
    const second = 4 + new DataView(batch.buffer, batch.byteOffset).getUint32(0, true);
    const read = readHeaders(batch, second).map(([n, v]) => [n, new TextDecoder().decode(v)]);
    expect(read).toEqual(headers);
    expect(readHeaders(batch, 0).map(([n]) => n)).toEqual(['first']);
    let p = headersStart(batch, second);
    for (let i = 0; i < headers.length; i++) p = headerEnd(batch, p);
    expect(p).toBe(batch.length);
  });
});

describe('recordExpiresAt', () => {
  it('takes the earliest of the record expiry, its ttl and the topic ttl', async () => {
    const { recordExpiresAt } = await import('../../src/protocol/headers.js');
    const { stampRecord } = await import('../../src/protocol/record.js');
    const b = new BatchBuilder();
    b.add(null, 'a');
    b.add(null, 'b', { [Header.TTL]: '500' });
    b.add(null, 'c', { [Header.EXPIRES_AT]: '1000200', [Header.TTL]: '5000' });
    const batch = b.take();
    const index = new RecordIndex();
    scanBatch(batch, index, limits);
    for (let i = 0; i < 3; i++) stampRecord(batch, index.start[i]!, i, 1_000_000);
    const at = (i: number): number => index.start[i]!;
    expect(recordExpiresAt(batch, at(0), null)).toBe(Infinity);
    expect(recordExpiresAt(batch, at(0), 1000)).toBe(1_001_000);
    expect(recordExpiresAt(batch, at(1), null)).toBe(1_000_500);
    expect(recordExpiresAt(batch, at(1), 100)).toBe(1_000_100);
    expect(recordExpiresAt(batch, at(2), null)).toBe(1_000_200);
  });
});
