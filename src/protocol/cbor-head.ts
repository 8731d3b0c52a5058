/**
 * CBOR heads written by hand, for the frames the gateway encodes without cbor-x (deliver-frame.ts,
 * result-frame.ts): the same bytes cbor-x writes for the same values, which their tests check
 * byte for byte.
 */
const encoder = new TextEncoder();

/** A text string, head included. */
export function cborText(s: string): Uint8Array {
  const utf8 = encoder.encode(s);
  const out = new Uint8Array(headBytes(utf8.length) + utf8.length);
  out.set(utf8, writeHead(out, 0, 0x60, utf8.length));
  return out;
}

export function put(out: Uint8Array, at: number, bytes: Uint8Array): number {
  out.set(bytes, at);
  return at + bytes.length;
}

/** Size of a CBOR head for an argument `n` (< 2^32). */
export function headBytes(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
}

/** cbor-x writes integers of 2^32 and above as float64: so do we (the SDK decodes either). */
export function uintBytes(v: number): number {
  return v < 0x1_0000_0000 ? headBytes(v) : 9;
}

/** A non-negative integer (≤ 2^53 − 1) as cbor-x writes it. */
export function writeUint(out: Uint8Array, at: number, v: number): number {
  if (v < 0x1_0000_0000) return writeHead(out, at, 0x00, v);
  out[at] = 0xfb;
  new DataView(out.buffer, out.byteOffset + at + 1, 8).setFloat64(0, v);
  return at + 9;
}

/** The head of major type `major` (already shifted: 0x00, 0x40, 0x60, 0x80, 0xa0) with argument n < 2^32. */
export function writeHead(out: Uint8Array, at: number, major: number, n: number): number {
  if (n < 24) {
    out[at] = major | n;
    return at + 1;
  }
  if (n < 0x100) {
    out[at] = major | 24;
    out[at + 1] = n;
    return at + 2;
  }
  if (n < 0x10000) {
    out[at] = major | 25;
    out[at + 1] = n >>> 8;
    out[at + 2] = n & 0xff;
    return at + 3;
  }
  out[at] = major | 26;
  out[at + 1] = n >>> 24;
  out[at + 2] = (n >>> 16) & 0xff;
  out[at + 3] = (n >>> 8) & 0xff;
  out[at + 4] = n & 0xff;
  return at + 5;
}
