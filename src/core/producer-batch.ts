/**
 * Exactly-once append, the gateway's part (pure): validate a produce request's idempotence fields
 * and rewrite its batch so the log itself records which producer batch it is. The first record
 * gets three headers put FIRST in its header list (so a producer's own headers of the same names
 * never shadow them): weir-producer-id, weir-sequence (the batch's first sequence) and
 * weir-batch-count. After the batch is scanned again, the gateway sets ATTR_IDEMPOTENT on that
 * record; partition recovery trusts only records with that bit (record.ts).
 */
import { WeirError, badRequest } from '../common/errors.js';
import type { ProducerSequence } from '../partition/ref.js';
import type { ProducerGuard, Session } from './feature-host.js';
import { ErrorCode } from '../protocol/codes.js';
import { Header, encodeHeaders, headersStart } from '../protocol/headers.js';
import { classifyProduced, TimeKind } from '../protocol/time-headers.js';
import { ATTR_IDEMPOTENT, F_ATTRIBUTES, F_HEADER_COUNT, F_LENGTH, readU16, readU32, writeU32, type RecordIndex } from '../protocol/record.js';

/** Sequences are u32 in the partition's ring; a producer's per-partition sequence stays below this. */
export const MAX_SEQUENCE = 0xffff_ffff;

/**
 * The idempotence fields of a produce frame, or undefined when it has none (a plain produce).
 * Both must be given together, with `partition` (sequences are per partition); `epoch` is
 * optional. `guard` refuses an id the connection does not hold (registry.ts): nothing of a refused
 * batch goes further.
 */
export function idempotentFields(
  f: { producerId?: unknown; sequence?: unknown; partition?: unknown; epoch?: unknown },
  conn: Session,
  guard: ProducerGuard,
): ProducerSequence | undefined {
  if (f.producerId === undefined && f.sequence === undefined) return undefined;
  const { producerId, sequence, epoch } = f;
  if (typeof producerId !== 'number' || !Number.isSafeInteger(producerId) || producerId < 0) {
    throw badRequest('producerId', '"producerId" must be a non-negative integer (from init_producer)');
  }
  if (epoch !== undefined && (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 0)) {
    throw badRequest('epoch', '"epoch" must be a non-negative integer (from init_producer)');
  }
  guard(conn, producerId, epoch);
  if (typeof sequence !== 'number' || !Number.isSafeInteger(sequence) || sequence < 0 || sequence > MAX_SEQUENCE) {
    throw badRequest('sequence', `"sequence" must be an integer in 0..${MAX_SEQUENCE} (the batch's first message sequence)`);
  }
  if (f.partition === undefined) throw badRequest('partition', 'an idempotent produce (with producerId) must name its "partition": sequences are per partition');
  return { producerId, sequence };
}

/**
 * A copy of `records` (`count` records, already validated by scanBatch) whose first record carries
 * the producer headers. Throws BAD_REQUEST when the sequence range would pass MAX_SEQUENCE or the
 * first record has no room for three more headers.
 */
export function withProducerHeaders(records: Uint8Array, count: number, fields: ProducerSequence): Uint8Array {
  if (fields.sequence + count - 1 > MAX_SEQUENCE) {
    throw badRequest('sequence', `sequence ${fields.sequence} + ${count} messages passes ${MAX_SEQUENCE}: start a new producer (init_producer)`);
  }
  const headerCount = readU16(records, F_HEADER_COUNT);
  if (headerCount + 3 > 0xffff) throw badRequest('records', 'the first record has too many headers to add the producer headers');
  const added = encodeHeaders([
    [Header.PRODUCER_ID, String(fields.producerId)],
    [Header.SEQUENCE, String(fields.sequence)],
    [Header.BATCH_COUNT, String(count)],
  ]);
  const insertAt = headersStart(records, 0);
  const out = new Uint8Array(records.length + added.length);
  out.set(records.subarray(0, insertAt), 0);
  out.set(added, insertAt);
  out.set(records.subarray(insertAt), insertAt + added.length);
  writeU32(out, F_LENGTH, readU32(records, F_LENGTH) + added.length);
  out[F_HEADER_COUNT] = (headerCount + 3) & 0xff;
  out[F_HEADER_COUNT + 1] = (headerCount + 3) >>> 8;
  return out;
}

/**
 * Refuse an idempotent batch holding a scheduled record (weir-delay / weir-deliver-at): such a
 * record would go to the schedule log, not to the producer's partition, where its sequence is
 * checked, so it cannot be deduplicated. weir-ttl / weir-expires-at are fine (read at delivery).
 * Called only when the scan found control records (index.controlCount > 0) on the producer's batch.
 */
export function refuseScheduled(records: Uint8Array, index: RecordIndex): void {
  for (let i = 0; i < index.count; i++) {
    if (classifyProduced(records, index.start[i]!, i) === TimeKind.SCHEDULED) {
      throw new WeirError(ErrorCode.BAD_REQUEST,
        `record ${i}: an idempotent producer cannot send delayed messages (${Header.DELAY} / ${Header.DELIVER_AT}); send them with a plain producer`,
        { details: { field: 'records', record: i } });
    }
  }
}

/** Mark the (re-scanned) first record as the start of an idempotent batch. */
export function markIdempotent(records: Uint8Array): void {
  records[F_ATTRIBUTES] = records[F_ATTRIBUTES]! | ATTR_IDEMPOTENT;
}

