/**
 * Pure helpers of the queue feature: the retry delay, and the records written to (and redriven
 * from) a dead-letter topic. No IO.
 */
import type { RetryBackoff } from '../../core/topics/config.js';
import { BatchBuilder } from '../../protocol/batch-builder.js';
import { Header, readHeaders } from '../../protocol/headers.js';
import { F_KEY_LENGTH, F_VALUE_LENGTH, RECORD_HEADER_BYTES, readU32 } from '../../protocol/record.js';

/** Why a message was dead-lettered (the `weir-dlq-reason` header). */
export type DeadLetterReason = 'rejected' | 'max-deliveries' | 'expired';

/**
 * Delay before the next delivery after the `deliveries`-th one was nacked with retry:
 * min(maxMs, initialMs × multiplier^(deliveries-1)), scaled by a factor in [1 − jitter, 1].
 */
export function retryDelay(b: RetryBackoff, deliveries: number, random: number): number {
  const exp = b.initialMs * Math.pow(b.multiplier, Math.max(0, deliveries - 1));
  const capped = Math.min(b.maxMs, exp);
  return Math.max(0, Math.round(capped * (1 - b.jitter * random)));
}

export interface DeadLetterOrigin {
  topic: string;
  partition: number;
  offset: number;
  group: string;
  deliveries: number;
  reason: DeadLetterReason;
  reasonText?: string | undefined;
  time: number;
}

interface StoredParts {
  key: Uint8Array | null;
  value: Uint8Array;
  headers: Array<[string, Uint8Array]>;
}

function partsOf(b: Uint8Array, at: number): StoredParts {
  const kl = readU32(b, at + F_KEY_LENGTH) | 0;
  const ks = at + RECORD_HEADER_BYTES;
  const key = kl < 0 ? null : b.subarray(ks, ks + kl);
  const vs = ks + (kl > 0 ? kl : 0);
  const vl = readU32(b, at + F_VALUE_LENGTH);
  return { key, value: b.subarray(vs, vs + vl), headers: readHeaders(b, at) };
}

const DLQ_HEADERS: ReadonlySet<string> = new Set([
  Header.DLQ_REASON, Header.DLQ_TOPIC, Header.DLQ_PARTITION, Header.DLQ_OFFSET, Header.DLQ_GROUP, Header.DLQ_DELIVERIES, Header.DLQ_TIME,
]);
/**
 * Dropped from dead letters: a dead letter must stay readable (an expired message's own expiry
 * would hide it in the dead-letter topic too) and must not be delayed again when redriven.
 */
const TIME_HEADERS: ReadonlySet<string> = new Set([Header.TTL, Header.EXPIRES_AT, Header.DELAY, Header.DELIVER_AT]);

/**
 * Append to `batch` the dead letter of the stored record at `at`: same key, value and headers
 * (earlier `weir-dlq-*` headers replaced, time headers dropped), plus the `weir-dlq-*` headers saying why, from where and
 * how often it was delivered. `weir-dlq-reason` is the reason, with the consumer's text after ": ".
 */
export function addDeadLetter(batch: BatchBuilder, b: Uint8Array, at: number, origin: DeadLetterOrigin): void {
  const { key, value, headers } = partsOf(b, at);
  const out: Record<string, Uint8Array | string> = {};
  for (const [name, v] of headers) if (!DLQ_HEADERS.has(name) && !TIME_HEADERS.has(name) && !(name in out)) out[name] = v;
  out[Header.DLQ_REASON] = origin.reasonText ? `${origin.reason}: ${origin.reasonText.slice(0, 1000)}` : origin.reason;
  out[Header.DLQ_TOPIC] = origin.topic;
  out[Header.DLQ_PARTITION] = String(origin.partition);
  out[Header.DLQ_OFFSET] = String(origin.offset);
  out[Header.DLQ_GROUP] = origin.group;
  out[Header.DLQ_DELIVERIES] = String(origin.deliveries);
  out[Header.DLQ_TIME] = String(origin.time);
  batch.add(key, value, out);
}

/**
 * Append to `batch` the redriven form of the dead letter at `at`: its original key, value and
 * headers, keeping only `weir-dlq-group` (so that only the group that rejected it gets it again).
 */
export function addRedriven(batch: BatchBuilder, b: Uint8Array, at: number): void {
  const { key, value, headers } = partsOf(b, at);
  const out: Record<string, Uint8Array | string> = {};
  for (const [name, v] of headers) {
    if (name in out) continue;
    if (DLQ_HEADERS.has(name) && name !== Header.DLQ_GROUP) continue;
    out[name] = v;
  }
  batch.add(key, value, out);
}
