/**
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), slicing-by-8.
 * Records in the log carry it; iSCSI/ext4/Kafka use the same polynomial, so any crc32c library agrees.
 */
const POLY = 0x82f63b78;
const TABLE = new Int32Array(8 * 256);

for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
  TABLE[n] = c;
}
for (let n = 0; n < 256; n++) {
  let c = TABLE[n]!;
  for (let t = 1; t < 8; t++) {
    c = TABLE[c & 0xff]! ^ (c >>> 8);
    TABLE[t * 256 + n] = c;
  }
}

/** CRC32C of `buf[start, end)`, continuing from `crc` (pass the previous result to chain). Unsigned. */
export function crc32c(buf: Uint8Array, start = 0, end = buf.length, crc = 0): number {
  let c = ~crc;
  let i = start;
  const t = TABLE;
  // 8 bytes per step: two little-endian words folded through eight tables.
  for (const stop = end - 8; i <= stop; i += 8) {
    const a = (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24)) ^ c;
    const b = buf[i + 4]! | (buf[i + 5]! << 8) | (buf[i + 6]! << 16) | (buf[i + 7]! << 24);
    c =
      t[1792 + (a & 0xff)]! ^
      t[1536 + ((a >>> 8) & 0xff)]! ^
      t[1280 + ((a >>> 16) & 0xff)]! ^
      t[1024 + (a >>> 24)]! ^
      t[768 + (b & 0xff)]! ^
      t[512 + ((b >>> 8) & 0xff)]! ^
      t[256 + ((b >>> 16) & 0xff)]! ^
      t[b >>> 24]!;
  }
  for (; i < end; i++) c = t[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
