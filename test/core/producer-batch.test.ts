/** The gateway's rewrite of idempotent batches (pure). */
import { describe, expect, it } from 'vitest';
import { idempotentFields, markIdempotent, MAX_SEQUENCE, withProducerHeaders } from '../../src/core/producer-batch.js';
import { testSession } from '../support/session.js';
import { BatchBuilder } from '../../src/protocol/batch-builder.js';
import { readMessages } from '../../src/protocol/batch-reader.js';
import { Header, findHeader } from '../../src/protocol/headers.js';
import { ATTR_CONTROL, ATTR_IDEMPOTENT, F_ATTRIBUTES, RecordIndex, scanBatch } from '../../src/protocol/record.js';

const limits = { maxRecordBytes: 1 << 20, maxRecords: 1000 };

describe('withProducerHeaders', () => {
  it('puts producer id, sequence and count first on the first record and leaves the rest as it was', () => {
    const b = new BatchBuilder();
    b.add('k', 'first', { [Header.PRODUCER_ID]: 'forged', app: '1' });
    b.add(null, 'second', { app: '2' });
    const records = b.take();
    const index = new RecordIndex();
    scanBatch(records, index, limits);
    const out = withProducerHeaders(records, index.count, { producerId: 2 ** 40, sequence: 17 });
    expect(scanBatch(out, index, limits)).toBe(2);
    markIdempotent(out);
    expect(out[F_ATTRIBUTES]! & ATTR_IDEMPOTENT).toBe(ATTR_IDEMPOTENT);
    expect(out[F_ATTRIBUTES]! & ATTR_CONTROL).toBe(ATTR_CONTROL);
    const text = (r: [number, number] | null): string => new TextDecoder().decode(out.subarray(r![0], r![1]));
    expect(text(findHeader(out, 0, Header.PRODUCER_ID))).toBe(String(2 ** 40)); // ours shadows the forged one
    expect(text(findHeader(out, 0, Header.SEQUENCE))).toBe('17');
    expect(text(findHeader(out, 0, Header.BATCH_COUNT))).toBe('2');
    const msgs = readMessages('t', 0, out);
    expect(msgs.map((m) => new TextDecoder().decode(m.value))).toEqual(['first', 'second']);
    expect(msgs[0]!.key).toBe('k');
    expect(msgs[0]!.headers.app).toBe('1');
    expect(msgs[1]!.headers).toEqual({ app: '2' });
    // A later scan (a plain produce of the same bytes) clears the bit again.
    scanBatch(out, index, limits);
    expect(out[F_ATTRIBUTES]! & ATTR_IDEMPOTENT).toBe(0);
  });

  it('refuses a sequence range past MAX_SEQUENCE', () => {
    const b = new BatchBuilder();
    b.add(null, 'a');
    b.add(null, 'b');
    expect(() => withProducerHeaders(b.take(), 2, { producerId: 1, sequence: MAX_SEQUENCE })).toThrow(expect.objectContaining({ code: 'BAD_REQUEST' }));
  });
});

describe('idempotentFields', () => {
  // The guard the producers feature installs: here, ids below 10 are this connection's, at epoch 2.
  const conn = testSession();
  const guard = (_c: unknown, producerId: number, epoch: number | undefined): void => {
    if (producerId >= 10) throw Object.assign(new Error('not handed out'), { details: { field: 'producerId' } });
    if (epoch !== undefined && epoch !== 2) throw Object.assign(new Error('fenced'), { code: 'PRODUCER_FENCED' });
  };
  it('is undefined for a plain produce and validates each field', () => {
    expect(idempotentFields({ partition: 0 }, conn, guard)).toBeUndefined();
    expect(idempotentFields({ producerId: 3, sequence: 0, partition: 1 }, conn, guard)).toEqual({ producerId: 3, sequence: 0 });
    expect(idempotentFields({ producerId: 3, sequence: 0, partition: 1, epoch: 2 }, conn, guard)).toEqual({ producerId: 3, sequence: 0 });
    const field = (f: object): unknown => {
      try {
        idempotentFields(f, conn, guard);
      } catch (err) {
        return (err as { details?: { field?: string } }).details?.field ?? (err as { code?: string }).code;
      }
      return 'none';
    };
    expect(field({ producerId: 3, partition: 0 })).toBe('sequence');
    expect(field({ sequence: 3, partition: 0 })).toBe('producerId');
    expect(field({ producerId: 1.5, sequence: 0, partition: 0 })).toBe('producerId');
    expect(field({ producerId: 10, sequence: 0, partition: 0 })).toBe('producerId'); // the guard's answer
    expect(field({ producerId: 1, sequence: -1, partition: 0 })).toBe('sequence');
    expect(field({ producerId: 1, sequence: 0 })).toBe('partition');
    expect(field({ producerId: 1, sequence: 0, partition: 0, epoch: -1 })).toBe('epoch');
    expect(field({ producerId: 1, sequence: 0, partition: 0, epoch: '2' })).toBe('epoch');
    expect(field({ producerId: 1, sequence: 0, partition: 0, epoch: 1 })).toBe('PRODUCER_FENCED');
  });
});
