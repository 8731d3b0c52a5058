/**
 * Message TTL on the delivery path: subscriptions (log mode) and `fetch` never hand out a record
 * whose expiry (recordExpiresAt: its weir-expires-at, its append time + weir-ttl, its append time +
 * the topic's ttlMs) is at or before now. Log mode only skips expired records: dead-lettering them
 * there would repeat once per consumer group.
 */
import { recordExpiresAt } from '../../protocol/headers.js';
import { ATTR_CONTROL, F_ATTRIBUTES, readU32 } from '../../protocol/record.js';

export interface Deliverable {
  records: Uint8Array;
  count: number;
}

/**
 * The unexpired records of a batch of `count` stored records: the input itself when none expired
 * (no copy), else a copy of the unexpired ones. Costs one byte test per record when the topic has
 * no ttlMs and no record carries `weir-` headers.
 */
export function dropExpired(records: Uint8Array, count: number, topicTtlMs: number | null, now: number): Deliverable {
  if (count === 0) return { records, count };
  if (topicTtlMs === null) {
    let control = false;
    for (let at = 0; at < records.length; at += 4 + readU32(records, at)) {
      if ((records[at + F_ATTRIBUTES]! & ATTR_CONTROL) !== 0) {
        control = true;
        break;
      }
    }
    if (!control) return { records, count };
  }
  // Find the first expired record; most batches have none.
  let at = 0;
  for (; at < records.length; at += 4 + readU32(records, at)) {
    if (recordExpiresAt(records, at, topicTtlMs) <= now) break;
  }
  if (at >= records.length) return { records, count };
  const out = new Uint8Array(records.length);
  out.set(records.subarray(0, at), 0);
  let w = at;
  let kept = 0;
  for (let r = 0; r < at; r += 4 + readU32(records, r)) kept++;
  while (at < records.length) {
    const size = 4 + readU32(records, at);
    if (recordExpiresAt(records, at, topicTtlMs) > now) {
      out.set(records.subarray(at, at + size), w);
      w += size;
      kept++;
    }
    at += size;
  }
  return { records: out.subarray(0, w), count: kept };
}
