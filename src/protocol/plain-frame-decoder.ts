/**
 * A decoder for the frames weir's clients and broker send nearly always: a CBOR map of short ASCII
 * text keys to integers, float64, ASCII text, byte strings, booleans, null and undefined, and arrays
 * and maps of those. For such a frame it returns what cbor-x returns with cbor.ts's options (the
 * test holds the two to the same result); for anything else (tags, float16/32, 64-bit integers,
 * indefinite lengths, non-ASCII text, non-text keys, `__proto__`, a truncated or overlong frame) it
 * returns undefined and cbor-x decodes the frame, or says why it cannot.
 *
 * Why, when cbor-x is fast in a loop: at 5,000 msg/s a produce frame arrives about once a
 * millisecond, between other threads' work, and cbor-x's general decoder then costs a measurable
 * share of the broker's CPU (docs/performance.md). This one is a small loop over what frames hold, and
 * returns the same string for the same short key or text (a topic, an op), which V8 compares and
 * stores as properties without looking it up again.
 */

const MAX_DEPTH = 16;
/** Text longer than this goes to cbor-x (error messages, not the frames that come once a message). */
const MAX_TEXT_BYTES = 64;
const CACHE_SLOTS = 512;

const EMPTY = new Uint8Array(0);
let src: Uint8Array = EMPTY;
let view: DataView | null = null;
let pos = 0;
let end = 0;
let ok = true;
/** Short texts seen before, by a hash of their bytes: a hit returns the same string again. */
const textCache: Array<string | undefined> = new Array<string | undefined>(CACHE_SLOTS).fill(undefined);

/** The frame, or undefined when it is not in the plain subset (then use cbor-x). */
export function decodePlainFrame(bytes: Uint8Array): Record<string, unknown> | undefined {
  const first = bytes.length > 0 ? bytes[0]! : 0;
  // A map of up to 255 entries, the only top level frames have.
  if (first < 0xa0 || first > 0xb8) return undefined;
  src = bytes;
  view = null;
  pos = 0;
  end = bytes.length;
  ok = true;
  const frame = readMap(0);
  const done = ok && pos === end;
  src = EMPTY; // hold no reference to the caller's buffer
  view = null;
  return done ? frame : undefined;
}

function fail(): undefined {
  ok = false;
  pos = end;
  return undefined;
}

function failArgument(): number {
  fail();
  return 0;
}

/** The argument of a head whose low five bits are `info`: up to 32 bits, else fail. */
function readArgument(info: number): number {
  if (info < 24) return info;
  if (info === 24) {
    if (pos >= end) return failArgument();
    return src[pos++]!;
  }
  if (info === 25) {
    if (pos + 2 > end) return failArgument();
    const v = (src[pos]! << 8) | src[pos + 1]!;
    pos += 2;
    return v;
  }
  if (info === 26) {
    if (pos + 4 > end) return failArgument();
    const v = src[pos]! * 0x1000000 + ((src[pos + 1]! << 16) | (src[pos + 2]! << 8) | src[pos + 3]!);
    pos += 4;
    return v;
  }
  return failArgument(); // 64-bit (cbor-x: BigInt), reserved, indefinite
}

function readItem(depth: number): unknown {
  if (pos >= end) return fail();
  const head = src[pos++]!;
  const info = head & 0x1f;
  switch (head >> 5) {
    case 0:
      return readArgument(info);
    case 1: {
      const n = readArgument(info);
      return -1 - n;
    }
    case 2: {
      const n = readArgument(info);
      if (n > end - pos) return fail();
      const bytes = src.subarray(pos, pos + n);
      pos += n;
      return bytes;
    }
    case 3: {
      const n = readArgument(info);
      return n > MAX_TEXT_BYTES || n > end - pos ? fail() : readAscii(n);
    }
    case 4: {
      if (depth >= MAX_DEPTH) return fail();
      const n = readArgument(info);
      if (n > end - pos) return fail();
      const array = new Array<unknown>(n);
      for (let i = 0; i < n && ok; i++) array[i] = readItem(depth + 1);
      return array;
    }
    case 5:
      return depth >= MAX_DEPTH ? fail() : readMapAfterHead(depth, info);
    case 7:
      return readSimple(info);
    default:
      return fail(); // tags
  }
}

function readMap(depth: number): Record<string, unknown> | undefined {
  const head = src[pos++]!;
  return readMapAfterHead(depth, head & 0x1f);
}

function readMapAfterHead(depth: number, info: number): Record<string, unknown> | undefined {
  const n = readArgument(info);
  if (n > (end - pos) / 2) return fail();
  const map: Record<string, unknown> = {};
  for (let i = 0; i < n && ok; i++) {
    if (pos >= end) return fail();
    const head = src[pos++]!;
    // Keys: text of at most 23 bytes in a one-byte head, as every frame's are.
    if (head < 0x60 || head > 0x77) return fail();
    const key = readAscii(head & 0x1f);
    if (key === undefined || key === '__proto__') return fail(); // cbor-x renames that one
    map[key] = readItem(depth + 1);
  }
  return map;
}

function readSimple(info: number): unknown {
  switch (info) {
    case 20:
      return false;
    case 21:
      return true;
    case 22:
      return null;
    case 23:
      return undefined;
    case 27: {
      // float64, as cbor-x writes integers of 2^32 and above
      if (pos + 8 > end) return fail();
      view ??= new DataView(src.buffer, src.byteOffset, src.byteLength);
      const v = view.getFloat64(pos);
      pos += 8;
      return v;
    }
    default:
      return fail(); // float16/32 (cbor-x rounds float32), other simple values
  }
}

/** `n` bytes of ASCII text at pos, or fail for any other byte. */
function readAscii(n: number): string | undefined {
  if (n > end - pos) return fail();
  const at = pos;
  let hash = 0x811c9dc5 ^ n; // FNV-1a
  for (let i = at; i < at + n; i++) {
    const c = src[i]!;
    if (c > 0x7f) return fail();
    hash = Math.imul(hash ^ c, 0x01000193);
  }
  pos += n;
  const slot = (hash ^ (hash >>> 15)) & (CACHE_SLOTS - 1);
  const cached = textCache[slot];
  if (cached !== undefined && cached.length === n && sameText(cached, at)) return cached;
  const text = n === 0 ? '' : String.fromCharCode.apply(null, src.subarray(at, at + n) as unknown as number[]);
  textCache[slot] = text;
  return text;
}

function sameText(text: string, at: number): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) !== src[at + i]) return false;
  return true;
}
