import { describe, expect, it } from 'vitest';
import { BatchBuilder } from '../../src/protocol/batch-builder.js';
import { readMessages } from '../../src/protocol/batch-reader.js';
import { RecordIndex, scanBatch, F_KEY_LENGTH, readU32 } from '../../src/protocol/record.js';

const text = new TextDecoder();
const limits = { maxRecordBytes: 1 << 20, maxRecords: 1 << 20 };

describe('record batch round trip', () => {
  it('keeps ASCII, non-ASCII, long and empty strings, bytes, null keys and headers exact', () => {
    const long = 'x'.repeat(70) + 'é';
    const cases: Array<{ key: string | Uint8Array | null; value: string | Uint8Array; headers: Record<string, string> | undefined }> = [
      { key: 'plain-key', value: 'ascii value', headers: { a: 'b' } },
      { key: 'clé-ü', value: 'naïve café ☕ 🚀', headers: { 'nämé': 'välue 🚀', trace: 'abc' } },
      { key: long, value: long + long, headers: { [long]: long } },
      { key: '', value: '', headers: {} },
      { key: null, value: new Uint8Array([0, 255, 128, 7]), headers: undefined },
      { key: new Uint8Array([1, 2, 3]), value: 'after bytes key', headers: { empty: '' } },
    ];
    const b = new BatchBuilder(16); // tiny: forces growth
    for (const c of cases) b.add(c.key, c.value, c.headers);
    const batch = b.take();
    const index = new RecordIndex();
    expect(scanBatch(batch, index, limits)).toBe(cases.length);
    const msgs = readMessages('t', 0, batch);
    msgs.forEach((m, i) => {
      const c = cases[i]!;
      if (c.key === null) expect(m.key).toBeNull();
      else if (typeof c.key === 'string') expect(m.key).toBe(c.key);
      else expect([...m.keyBytes!]).toEqual([...c.key]);
      if (typeof c.value === 'string') expect(text.decode(m.value)).toBe(c.value);
      else expect([...m.value]).toEqual([...c.value]);
      expect(m.headers).toEqual(c.headers ?? {});
    });
    // An empty key is a key (length 0), not a missing one (-1).
    expect(readU32(batch, index.start[3]! + F_KEY_LENGTH) | 0).toBe(0);
    expect(readU32(batch, index.start[4]! + F_KEY_LENGTH) | 0).toBe(-1);
  });

  it('reuses its buffer without leaking bytes between batches', () => {
    const b = new BatchBuilder();
    b.add('k', 'a long first value that leaves bytes behind');
    b.reset();
    b.add('k', 'v');
    const [m] = readMessages('t', 0, b.take());
    expect(text.decode(m!.value)).toBe('v');
  });
});

describe('readMessages', () => {
  it('reads a Node Buffer as plain Uint8Array views of the same memory (no copy)', () => {
    const b = new BatchBuilder();
    b.add('k1', 'first');
    b.add(null, 'second');
    const bytes = b.take();
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const msgs = readMessages('t', 0, buf);
    expect(msgs.map((m) => text.decode(m.value))).toEqual(['first', 'second']);
    expect(msgs.map((m) => m.key)).toEqual(['k1', null]);
    const v = msgs[0]!.value;
    expect(Object.getPrototypeOf(v)).toBe(Uint8Array.prototype);
    expect(v.buffer).toBe(bytes.buffer);
    bytes[v.byteOffset] = 'F'.charCodeAt(0);
    expect(text.decode(msgs[0]!.value)).toBe('First');
  });
});
