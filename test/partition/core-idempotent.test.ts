/**
 * The partition core's exactly-once append, driven directly (no thread, no gateway): real rings and
 * a real log in a temp dir, entries written the way the gateway writes them.
 */
import { expect, it } from 'vitest';
import { markIdempotent, withProducerHeaders } from '../../src/core/producer-batch.js';
import { BatchBuilder } from '../../src/protocol/batch-builder.js';
import { ErrorCode } from '../../src/protocol/codes.js';
import { RecordIndex, readU32, scanBatch } from '../../src/protocol/record.js';
import { In, Out, errorCodeAt } from '../../src/partition/protocol.js';
import type { RingReader, RingWriter } from '../../src/ring/index.js';
import { partitionCore, type CoreHarness } from '../support/partition-core.js';

const setup = (): CoreHarness => partitionCore('weir-core-eos-'); // removed when the test ends

function records(count: number, producerId: number, sequence: number): Uint8Array {
  const b = new BatchBuilder();
  for (let i = 0; i < count; i++) b.add(null, `s${sequence + i}`);
  const index = new RecordIndex();
  const limits = { maxRecordBytes: 1 << 20, maxRecords: 1000 };
  scanBatch(b.view(), index, limits);
  const out = withProducerHeaders(b.take(), count, { producerId, sequence });
  scanBatch(out, index, limits);
  markIdempotent(out);
  return out;
}

function produce(w: RingWriter, chunkId: number, producerId: number, sequence: number, count: number): void {
  const r = records(count, producerId, sequence);
  expect(w.begin(24 + r.length)).toBe(true);
  w.appendU32(In.PRODUCE_IDEMPOTENT);
  w.appendU32(chunkId);
  w.appendU32(count);
  w.appendU32(producerId >>> 0);
  w.appendU32(Math.floor(producerId / 2 ** 32));
  w.appendU32(sequence);
  w.append(r);
  w.commit();
}

type Answer = { id: number; ack?: [number, number]; fail?: string };
function answers(r: RingReader): Answer[] {
  const out: Answer[] = [];
  let e: Uint8Array | null;
  while ((e = r.next()) !== null) {
    const type = readU32(e, 0);
    if (type === Out.ACK) out.push({ id: readU32(e, 4), ack: [readU32(e, 8), readU32(e, 16)] });
    else if (type === Out.FAIL) out.push({ id: readU32(e, 4), fail: errorCodeAt(readU32(e, 12)) });
  }
  r.release();
  return out.sort((a, b) => a.id - b.id);
}

it('in one group commit: appends in order, acknowledges a duplicate of a batch of the same group with its offsets, refuses a gap', () => {
  const { core, input, output, log } = setup();
  produce(input, 1, 2 ** 33 + 5, 0, 3); // a producer id above 2^32 crosses the ring intact
  produce(input, 2, 2 ** 33 + 5, 3, 2);
  produce(input, 3, 2 ** 33 + 5, 0, 3); // duplicate of chunk 1, not yet flushed when seen
  produce(input, 4, 2 ** 33 + 5, 9, 1); // gap: 5 expected
  produce(input, 5, 7, 0, 1); // another producer
  input.publish();
  core.step(Date.now());
  expect(answers(output)).toEqual([
    { id: 1, ack: [0, 3] },
    { id: 2, ack: [3, 2] },
    { id: 3, ack: [0, 3] },
    { id: 4, fail: ErrorCode.OUT_OF_ORDER_SEQUENCE },
    { id: 5, ack: [5, 1] },
  ]);
  expect(log.durableOffset).toBe(6);
  expect(core.producers.check(2 ** 33 + 5, 5, 1)).toEqual({ kind: 'append' });
});

it('plain PRODUCE entries are untouched by the producer state', () => {
  const { core, input, output, log } = setup();
  const b = new BatchBuilder();
  b.add(null, 'plain');
  const r = b.take();
  input.begin(12 + r.length);
  input.appendU32(In.PRODUCE);
  input.appendU32(1);
  input.appendU32(1);
  input.append(r);
  input.commit();
  input.publish();
  core.step(Date.now());
  expect(answers(output)).toEqual([{ id: 1, ack: [0, 1] }]);
  expect(log.durableOffset).toBe(1);
  expect(core.producers.size).toBe(0);
});
