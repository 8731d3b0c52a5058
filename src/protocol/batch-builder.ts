/**
 * Builds a producer record batch (see record.ts) into one growing buffer, with no object per
 * message. Browser-safe: Uint8Array and TextEncoder only.
 */
import { F_HEADER_COUNT, F_KEY_LENGTH, F_MAGIC, F_VALUE_LENGTH, RECORD_HEADER_BYTES, RECORD_MAGIC, writeU32 } from './record.js';

export type Bytes = string | Uint8Array;
export type Headers = Record<string, string | Uint8Array>;

const encoder = new TextEncoder();
/** Strings up to this many UTF-16 units try the ASCII copy loop first. */
const ASCII_FAST_PATH = 64;

export class BatchBuilder {
  private buf: Uint8Array;
  private at = 0;
  private n = 0;

  constructor(initialBytes = 64 * 1024) {
    this.buf = new Uint8Array(initialBytes);
  }

  get count(): number {
    return this.n;
  }
  get byteLength(): number {
    return this.at;
  }

  /** Append one record; returns its size in bytes. */
  add(key: Bytes | null | undefined, value: Bytes, headers?: Headers | null): number {
    const start = this.at;
    // Upper bound for UTF-8 is 3 bytes per UTF-16 unit.
    const keyMax = key == null ? 0 : typeof key === 'string' ? key.length * 3 : key.length;
    const valueMax = typeof value === 'string' ? value.length * 3 : value.length;
    let headerMax = 0;
    let headerCount = 0;
    if (headers) {
      for (const name in headers) {
        const v = headers[name]!;
        headerMax += 6 + name.length * 3 + (typeof v === 'string' ? v.length * 3 : v.length);
        headerCount++;
      }
      if (headerCount > 0xffff) throw new RangeError('at most 65535 headers per message');
    }
    this.reserve(RECORD_HEADER_BYTES + keyMax + valueMax + headerMax);
    const b = this.buf;
    let p = start + RECORD_HEADER_BYTES;
    let keyLength = -1;
    if (key != null) {
      keyLength = this.put(key, p);
      p += keyLength;
    }
    const valueLength = this.put(value, p);
    p += valueLength;
    if (headers) {
      for (const name in headers) {
        const nameLength = this.putString(name, p + 2);
        if (nameLength > 0xffff) throw new RangeError(`header name too long: ${name.slice(0, 40)}…`);
        b[p] = nameLength;
        b[p + 1] = nameLength >>> 8;
        p += 2 + nameLength;
        const vl = this.put(headers[name]!, p + 4);
        writeU32(b, p, vl);
        p += 4 + vl;
      }
    }
    // Zero the fields the partition stamps (crc, offset, timestamp): the buffer is reused.
    b.fill(0, start + 4, start + F_KEY_LENGTH);
    writeU32(b, start, p - start - 4);
    writeU32(b, start + F_KEY_LENGTH, keyLength);
    writeU32(b, start + F_VALUE_LENGTH, valueLength);
    b[start + F_HEADER_COUNT] = headerCount;
    b[start + F_HEADER_COUNT + 1] = headerCount >>> 8;
    b[start + F_MAGIC] = RECORD_MAGIC;
    b[start + F_MAGIC + 1] = 0;
    this.at = p;
    this.n++;
    return p - start;
  }

  /** The batch so far as a copy the caller owns; the builder is reset for reuse. */
  take(): Uint8Array {
    const out = this.buf.slice(0, this.at);
    this.reset();
    return out;
  }

  /** A view of the batch so far; valid until the next add/reset. */
  view(): Uint8Array {
    return this.buf.subarray(0, this.at);
  }

  reset(): void {
    this.at = 0;
    this.n = 0;
  }

  private put(v: Bytes, at: number): number {
    if (typeof v === 'string') return this.putString(v, at);
    this.buf.set(v, at);
    return v.length;
  }

  /**
   * UTF-8 encode at `at`. Short ASCII strings (keys, header names, most header values) are copied
   * char by char: cheaper than the view and the native call of encodeInto.
   */
  private putString(v: string, at: number): number {
    const n = v.length;
    if (n <= ASCII_FAST_PATH) {
      const b = this.buf;
      let i = 0;
      for (; i < n; i++) {
        const c = v.charCodeAt(i);
        if (c >= 0x80) break;
        b[at + i] = c;
      }
      if (i === n) return n;
    }
    return encoder.encodeInto(v, this.buf.subarray(at)).written;
  }

  private reserve(extra: number): void {
    const need = this.at + extra;
    if (need <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < need) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.at));
    this.buf = next;
  }
}
