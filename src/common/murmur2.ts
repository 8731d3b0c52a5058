/**
 * Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), so that a key maps to the same
 * partition number here as it would in Kafka's default partitioner for the same partition count.
 */
export function murmur2(data: Uint8Array, start = 0, end = data.length): number {
  const length = end - start;
  const m = 0x5bd1e995;
  let h = 0x9747b28c ^ length;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = start + i * 4;
    let k = data[i4]! | (data[i4 + 1]! << 8) | (data[i4 + 2]! << 16) | (data[i4 + 3]! << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  const tail = start + (length & ~3);
  const rest = length & 3;
  // Kafka's switch falls through 3 → 2 → 1.
  if (rest === 3) h ^= data[tail + 2]! << 16;
  if (rest >= 2) h ^= data[tail + 1]! << 8;
  if (rest >= 1) {
    h ^= data[tail]!;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/** Kafka's `toPositive(murmur2(key)) % numPartitions`. */
export function partitionForKey(data: Uint8Array, start: number, end: number, partitions: number): number {
  return (murmur2(data, start, end) & 0x7fffffff) % partitions;
}
