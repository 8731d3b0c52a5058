/**
 * Message TTL on the delivery path: subscriptions (log mode) and `fetch` never hand out a record
 * whose expiry (recordExpiresAt: its weir-expires-at, its append time + weir-ttl, its append time +
 * the topic's ttlMs) is at or before now. Log mode only skips expired records: dead-lettering them
 * there would repeat once per consumer group.
 */
import { recordExpiresAt } from './headers.js';
import { ATTR_CONTROL, F_ATTRIBUTES, readU32 } from './record.js';

export interface Deliverable {
  records: Uint8Array;
  count: number;
}

/**
 * The unexpired records of a batch of `count` stored records, or null when none expired (no
 * allocation: deliver the input as it is). Costs one byte test per record when the topic has no
 * ttlMs and no record carries `weir-` headers. Callers skip it entirely for topics that have no
 * ttlMs and never stored a record with `weir-` headers (Topic.hasControlRecords).
 */
export function dropExpired(records: Uint8Array, count: number, topicTtlMs: number | null, now: number): Deliverable | null {
  if (count === 0) return null;
  if (topicTtlMs === null) {
    let control = false;
    for (let at = 0; at < records.length; at += 4 + readU32(records, at)) {
      if ((records[at + F_ATTRIBUTES]! & ATTR_CONTROL) !== 0) {
        control = true;
        break;
      }
    }
    if (!control) return null;
  }
  // Find the first expired record; most batches have none.
  let at = 0;
  for (; at < records.length; at += 4 + readU32(records, at)) {
    if (recordExpiresAt(records, at, topicTtlMs) <= now) break;
  }
  if (at >= records.length) return null;
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
