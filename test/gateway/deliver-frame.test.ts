/**
 * The hand-encoded deliver frame is the same bytes cbor-x writes for the same object (keys in the
 * same order), for every size class of every field, and its records land where the copy is fast:
 * at the source's address modulo 8.
 */
import { expect, it } from 'vitest';
import { encodeDeliverFrame, type DeliverFields } from '../../src/gateway/deliver-frame.js';
import { decodeFrame, encodeFrame } from '../../src/protocol/cbor.js';
import { mulberry32 } from '../support/seeded-prng.js';

const INTS = [0, 1, 23, 24, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 3, 2 ** 53 - 1];
const TOPICS = ['t', 'orders.eu.paid', 'x'.repeat(23), 'y'.repeat(24), 'z'.repeat(300), 'ünïcödé.топик'];
const SIZES = [0, 1, 23, 24, 255, 256, 65_535, 65_536, 200_000];

function viaCborX(f: DeliverFields, records: Uint8Array): Uint8Array {
  return encodeFrame({ op: 'deliver', sub: f.sub, topic: f.topic, partition: f.partition, count: f.count, next: f.next, records });
}

it('writes the bytes cbor-x writes, for every size class of every field', () => {
  const rnd = mulberry32(7);
  const pick = <T>(xs: T[]): T => xs[rnd.int(0, xs.length - 1)]!;
  const shared = new Uint8Array(new SharedArrayBuffer(300_000));
  for (let i = 0; i < shared.length; i++) shared[i] = i * 31;
  for (let round = 0; round < 400; round++) {
    const f: DeliverFields = { sub: pick(INTS), topic: pick(TOPICS), partition: pick([0, 7, 24, 65_535]), count: pick(INTS), next: pick(INTS) };
    const n = pick(SIZES);
    const at = rnd.int(0, 63);
    const records = shared.subarray(at, at + n);
    const ours = encodeDeliverFrame(f, records);
    expect(Buffer.from(ours).equals(Buffer.from(viaCborX(f, records)))).toBe(true);
    const back = decodeFrame(ours) as Record<string, unknown>;
    expect(back).toMatchObject({ op: 'deliver', sub: f.sub, topic: f.topic, partition: f.partition, count: f.count, next: f.next });
    expect(Buffer.from(back.records as Uint8Array).equals(Buffer.from(records))).toBe(true);
    // The records sit at the source's address modulo 8 (both buffers' bases are 8-aligned).
    expect((ours.byteOffset + ours.length - n) % 8).toBe(records.byteOffset % 8);
  }
});

it('returns a buffer of its own: later changes to the source do not show', () => {
  const src = new Uint8Array(new SharedArrayBuffer(64)).fill(5);
  const frame = encodeDeliverFrame({ sub: 1, topic: 't', partition: 0, count: 1, next: 1 }, src.subarray(3, 40));
  src.fill(9);
  const back = decodeFrame(frame) as { records: Uint8Array };
  expect([...back.records].every((b) => b === 5)).toBe(true);
});
