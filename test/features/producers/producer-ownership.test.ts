/**
 * A producer id belongs to the connection that obtained it (init_producer), and only a holder of its
 * secret can move it to another connection (a reclaim, which bumps the epoch and fences the old
 * holder). Raw frames, no SDK: the attacker sends exactly what it likes.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BatchBuilder } from '../../../src/protocol/batch-builder.js';
import { readMessages } from '../../../src/protocol/batch-reader.js';
import { startTestBroker, type TestBroker } from '../../support/broker.js';
import { RawClient, type Frame } from '../../support/raw-client.js';
import { BINDINGS_FILE } from '../../../src/features/producers/bindings-log.js';
import { PRODUCERS_DIR } from '../../../src/features/producers/feature.js';

let tb: TestBroker | undefined;
const raws: RawClient[] = [];
afterEach(async () => {
  for (const r of raws.splice(0)) r.close();
  await tb?.stop();
  tb = undefined;
});

async function rawClient(url: string): Promise<RawClient> {
  const r = await RawClient.connect(url);
  raws.push(r);
  return r;
}

function batch(tag: string, count = 1): Uint8Array {
  const b = new BatchBuilder();
  for (let i = 0; i < count; i++) b.add(null, `${tag}-${i}`, null);
  return b.take();
}

async function values(raw: RawClient, topic: string, partition = 0): Promise<string[]> {
  const r = await raw.request({ op: 'fetch', topic, partition, offset: 0, maxRecords: 10_000 });
  expect(r.op).toBe('result');
  return readMessages(topic, partition, r.records as Uint8Array).map((m) => new TextDecoder().decode(m.value));
}

async function initProducer(raw: RawClient): Promise<{ pid: number; secret: Uint8Array }> {
  const r = await raw.request({ op: 'init_producer' });
  expect(r).toMatchObject({ op: 'result', epoch: 0 });
  expect(r.secret).toBeInstanceOf(Uint8Array);
  expect((r.secret as Uint8Array).length).toBe(32);
  return { pid: r.producerId as number, secret: (r.secret as Uint8Array).slice() };
}

function reclaim(raw: RawClient, producerId: number, secret: Uint8Array): Promise<Frame> {
  return raw.request({ op: 'init_producer', producerId, secret });
}

function produce(raw: RawClient, topic: string, producerId: number, sequence: number, records: Uint8Array, epoch?: number): Promise<Frame> {
  const f: Frame = { op: 'produce', topic, partition: 0, producerId, sequence, records };
  if (epoch !== undefined) f.epoch = epoch;
  return raw.request(f);
}

describe('producer id ownership', () => {
  it('refuses another connection that sends a batch under a producer id it never obtained; the owner\'s batch is stored and acknowledged with its own offset', async () => {
    tb = await startTestBroker();
    const victim = await rawClient(tb.url);
    const attacker = await rawClient(tb.url);
    await victim.request({ op: 'create_topic', topic: 'owned', partitions: 1 });
    const init = await victim.request({ op: 'init_producer' });
    expect(init.op).toBe('result');
    const pid = init.producerId as number;
    expect(await produce(victim, 'owned', pid, 0, batch('victim0'))).toMatchObject({ op: 'result', parts: [[0, 0, 1]] });

    // Producer ids are sequential: the attacker guesses the victim's id and its next sequence.
    const forged = await produce(attacker, 'owned', pid, 1, batch('forged'));
    // The owner's real batch with that sequence must be stored, at its own offset (before the fix
    // it was taken for a resend of the forged batch: acknowledged with its offset, and dropped).
    const real = await produce(victim, 'owned', pid, 1, batch('victim1'));
    expect(await values(victim, 'owned')).toEqual(['victim0-0', 'victim1-0']);
    expect(real).toMatchObject({ op: 'result', parts: [[0, 1, 1]] });
    expect(forged).toMatchObject({ op: 'error', code: 'PRODUCER_ID_NOT_OWNED', retryable: false });

    // Whatever epoch the attacker claims, nothing it sends is written.
    for (const epoch of [undefined, 0, 1, 7]) {
      const again = await produce(attacker, 'owned', pid, 2, batch('forged'), epoch);
      expect(again, `epoch ${String(epoch)}`).toMatchObject({ op: 'error', code: 'PRODUCER_ID_NOT_OWNED', retryable: false });
    }
    expect(await produce(victim, 'owned', pid, 2, batch('victim2'), 0)).toMatchObject({ op: 'result', parts: [[0, 2, 1]] });
    expect(await values(victim, 'owned')).toEqual(['victim0-0', 'victim1-0', 'victim2-0']);
  });
  it('refuses a reclaim with a wrong secret, and the holder keeps its id and epoch', async () => {
    tb = await startTestBroker();
    const owner = await rawClient(tb.url);
    const thief = await rawClient(tb.url);
    await owner.request({ op: 'create_topic', topic: 'guarded', partitions: 1 });
    const { pid, secret } = await initProducer(owner);
    const other = await initProducer(thief); // a real secret, of another id
    const wrong = Uint8Array.from(secret);
    wrong[31] = wrong[31]! ^ 1;
    for (const guess of [wrong, new Uint8Array(32), other.secret]) {
      expect(await reclaim(thief, pid, guess)).toMatchObject({ op: 'error', code: 'PRODUCER_ID_NOT_OWNED', retryable: false, details: { producerId: pid, reason: 'secret' } });
    }
    // Malformed reclaims are BAD_REQUEST naming the field.
    expect(await reclaim(thief, pid, secret.subarray(0, 16))).toMatchObject({ op: 'error', code: 'BAD_REQUEST', details: { field: 'secret' } });
    expect(await thief.request({ op: 'init_producer', producerId: pid })).toMatchObject({ op: 'error', code: 'BAD_REQUEST', details: { field: 'secret' } });
    expect(await thief.request({ op: 'init_producer', secret })).toMatchObject({ op: 'error', code: 'BAD_REQUEST', details: { field: 'producerId' } });
    expect(await reclaim(thief, other.pid + 1000, secret)).toMatchObject({ op: 'error', code: 'BAD_REQUEST', details: { field: 'producerId' } });
    // Nothing moved: the thief cannot produce, the owner still can, at epoch 0.
    expect(await produce(thief, 'guarded', pid, 0, batch('thief'))).toMatchObject({ op: 'error', code: 'PRODUCER_ID_NOT_OWNED' });
    expect(await produce(owner, 'guarded', pid, 0, batch('owner'), 0)).toMatchObject({ op: 'result', parts: [[0, 0, 1]] });
    expect(await values(owner, 'guarded')).toEqual(['owner-0']);
  });

  it('a reclaim with the right secret moves the id to the new connection at the next epoch and fences the old one', async () => {
    tb = await startTestBroker();
    const first = await rawClient(tb.url);
    await first.request({ op: 'create_topic', topic: 'moved', partitions: 1 });
    const { pid, secret } = await initProducer(first);
    const sent = batch('first0');
    expect(await produce(first, 'moved', pid, 0, sent, 0)).toMatchObject({ op: 'result', parts: [[0, 0, 1]] });

    const second = await rawClient(tb.url);
    expect(await reclaim(second, pid, secret)).toMatchObject({ op: 'result', producerId: pid, epoch: 1 });
    // The old connection is fenced, with or without naming its epoch: nothing it sends is written.
    expect(await produce(first, 'moved', pid, 1, batch('stale'), 0)).toMatchObject({ op: 'error', code: 'PRODUCER_FENCED', retryable: false, details: { producerId: pid, epoch: 1 } });
    expect(await produce(first, 'moved', pid, 1, batch('stale'))).toMatchObject({ op: 'error', code: 'PRODUCER_FENCED', retryable: false });
    // The new holder resends (original offset), continues, and must name the current epoch if any.
    expect(await produce(second, 'moved', pid, 0, sent, 1)).toMatchObject({ op: 'result', parts: [[0, 0, 1]] });
    expect(await produce(second, 'moved', pid, 1, batch('second1'), 1)).toMatchObject({ op: 'result', parts: [[0, 1, 1]] });
    expect(await produce(second, 'moved', pid, 2, batch('stale'), 0)).toMatchObject({ op: 'error', code: 'PRODUCER_FENCED' });
    expect(await produce(second, 'moved', pid, 2, batch('future'), 2)).toMatchObject({ op: 'error', code: 'BAD_REQUEST', details: { field: 'epoch' } });
    expect(await produce(second, 'moved', pid, 2, batch('second2'))).toMatchObject({ op: 'result', parts: [[0, 2, 1]] });
    // Its own reclaim again (the client's retry of a lost answer) bumps the epoch once more.
    expect(await reclaim(second, pid, secret)).toMatchObject({ op: 'result', producerId: pid, epoch: 2 });
    expect(await produce(second, 'moved', pid, 3, batch('stale'), 1)).toMatchObject({ op: 'error', code: 'PRODUCER_FENCED' });
    expect(await values(first, 'moved')).toEqual(['first0-0', 'second1-0', 'second2-0']);
  });

  it('a client reclaims its id after a broker restart (bindings survive; the file holds a hash, not the secret)', async () => {
    tb = await startTestBroker();
    let raw = await rawClient(tb.url);
    await raw.request({ op: 'create_topic', topic: 'again', partitions: 1 });
    const { pid, secret } = await initProducer(raw);
    const sent = batch('before');
    expect(await produce(raw, 'again', pid, 0, sent, 0)).toMatchObject({ op: 'result', parts: [[0, 0, 1]] });
    const wrong = Uint8Array.from(secret);
    wrong[0] = wrong[0]! ^ 0x80;
    raw.close();
    const dir = tb.dir;
    await tb.stop({ keepData: true });

    const file = fs.readFileSync(path.join(dir, PRODUCERS_DIR, BINDINGS_FILE), 'utf8');
    expect(file).toContain(crypto.createHash('sha256').update(secret).digest('hex'));
    expect(file).not.toContain(Buffer.from(secret).toString('hex'));
    expect(file).not.toContain(Buffer.from(secret).toString('base64'));

    tb = await startTestBroker({ dataDir: dir });
    raw = await rawClient(tb.url);
    // No connection holds anything after a restart: a produce without a reclaim is refused.
    expect(await produce(raw, 'again', pid, 1, batch('unclaimed'))).toMatchObject({ op: 'error', code: 'PRODUCER_ID_NOT_OWNED' });
    expect(await reclaim(raw, pid, wrong)).toMatchObject({ op: 'error', code: 'PRODUCER_ID_NOT_OWNED', details: { reason: 'secret' } });
    expect(await reclaim(raw, pid, secret)).toMatchObject({ op: 'result', producerId: pid, epoch: 1 });
    expect(await produce(raw, 'again', pid, 0, sent, 1)).toMatchObject({ op: 'result', parts: [[0, 0, 1]] }); // a resend: original offset
    expect(await produce(raw, 'again', pid, 1, batch('after'), 1)).toMatchObject({ op: 'result', parts: [[0, 1, 1]] });
    expect(await values(raw, 'again')).toEqual(['before-0', 'after-0']);
    // Epochs keep growing across restarts.
    raw.close();
    await tb.stop({ keepData: true });
    tb = await startTestBroker({ dataDir: dir });
    raw = await rawClient(tb.url);
    expect(await reclaim(raw, pid, secret)).toMatchObject({ op: 'result', producerId: pid, epoch: 2 });
  });
});
