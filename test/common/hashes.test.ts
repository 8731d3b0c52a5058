import { describe, expect, it } from 'vitest';
import { crc32c } from '../../src/common/crc32c.js';
import { murmur2, partitionForKey } from '../../src/common/murmur2.js';

const utf8 = (s: string) => new TextEncoder().encode(s);

describe('crc32c', () => {
  it('matches the standard check value and RFC 3720 vectors', () => {
    expect(crc32c(utf8('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    const inc = Uint8Array.from({ length: 32 }, (_, i) => i);
    expect(crc32c(inc)).toBe(0x46dd794e);
  });
  it('chains and respects ranges', () => {
    const b = utf8('hello, weir: a longer buffer that crosses several 8-byte steps');
    const whole = crc32c(b);
    for (const cut of [0, 1, 7, 8, 9, 31, b.length]) {
      expect(crc32c(b, cut, b.length, crc32c(b, 0, cut))).toBe(whole);
    }
    const padded = new Uint8Array(b.length + 10);
    padded.set(b, 5);
    expect(crc32c(padded, 5, 5 + b.length)).toBe(whole);
  });
});

describe('murmur2 (Kafka)', () => {
  it('matches Kafka UtilsTest vectors', () => {
    const cases: Array<[string, number]> = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
      ['abc', 479470107],
    ];
    for (const [s, h] of cases) expect(murmur2(utf8(s)), s).toBe(h);
  });
  it('maps a key to the same partition inside a larger buffer', () => {
    const k = utf8('order-42');
    const buf = new Uint8Array(20);
    buf.set(k, 7);
    const p = partitionForKey(k, 0, k.length, 8);
    expect(partitionForKey(buf, 7, 7 + k.length, 8)).toBe(p);
    expect(p).toBeGreaterThanOrEqual(0);
    expect(p).toBeLessThan(8);
  });
});
