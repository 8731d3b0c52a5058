import { describe, expect, it } from 'vitest';
import {
  ConsumerDoorbell,
  Doorbell,
  ProducerDoorbell,
  RingRecordTooLargeError,
  RingClosedError,
  RingReader,
  RingStateError,
  RingTimeoutError,
  RingWriter,
  createRing,
} from '../../src/ring/index.js';
import { Slot, readSlot } from '../../src/ring/internal.js';

/** Single-thread doorbell tests: async waits on this thread, woken by calls on this thread. */

const CAP = 4096;

function pair() {
  const sab = createRing(CAP);
  const writer = new RingWriter(sab);
  const reader = new RingReader(sab);
  return { sab, writer, reader, producer: new ProducerDoorbell(writer), consumer: new ConsumerDoorbell(reader) };
}

/** Let microtasks and one macrotask run, so a pending async wait reaches Atomics.waitAsync. */
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

function fill(writer: RingWriter): void {
  while (writer.tryWrite(new Uint8Array(1020)));
}

describe('consumer side', () => {
  it('returns ok at once when data is already published, without announcing', async () => {
    const { sab, writer, producer, consumer } = pair();
    writer.tryWrite(Uint8Array.of(1));
    expect(producer.flush()).toBe(true);
    expect(await consumer.waitForDataAsync(1000)).toBe('ok');
    expect(consumer.waitForData(1000)).toBe('ok'); // no data wait: never parks
    expect(readSlot(sab, Slot.CONSUMER_WAITING)).toBe(0);
  });

  it('times out, and withdraws its announcement', async () => {
    const { sab, consumer } = pair();
    const started = performance.now();
    expect(await consumer.waitForDataAsync(40)).toBe('timed-out');
    expect(performance.now() - started).toBeGreaterThanOrEqual(35);
    expect(readSlot(sab, Slot.CONSUMER_WAITING)).toBe(0);
  });

  it('ring() notifies only while the consumer announced it is waiting, and only once', async () => {
    const { sab, writer, reader, producer, consumer } = pair();
    writer.tryWrite(Uint8Array.of(1));
    writer.publish();
    expect(producer.ring()).toBe(false); // nobody waiting: no notify
    expect([...reader.next()!]).toEqual([1]);

    const waiting = consumer.waitForDataAsync(10_000);
    await tick();
    expect(readSlot(sab, Slot.CONSUMER_WAITING)).toBe(1);
    writer.tryWrite(Uint8Array.of(2));
    writer.publish();
    expect(producer.ring()).toBe(true);
    expect(producer.ring()).toBe(false); // the first ring cleared the flag
    const started = performance.now();
    expect(await waiting).toBe('ok');
    expect(performance.now() - started).toBeLessThan(1000);
    expect([...reader.next()!]).toEqual([2]);
  });

  it('after waits that timed out, the next wait is still the one ring() wakes', async () => {
    const { writer, reader, producer, consumer } = pair();
    // Each of these leaves an Atomics.waitAsync waiter behind when its deadline (our timer) fires.
    for (let i = 0; i < 3; i++) expect(await consumer.waitForDataAsync(5)).toBe('timed-out');
    const waiting = consumer.waitForDataAsync(60_000);
    await tick();
    writer.tryWrite(Uint8Array.of(9));
    writer.publish();
    expect(producer.ring()).toBe(true); // one notify, count 1: it must reach the live waiter
    const started = performance.now();
    expect(await waiting).toBe('ok');
    expect(performance.now() - started).toBeLessThan(5_000); // not at the 60 s deadline
    expect([...reader.next()!]).toEqual([9]);
  });

  it('releases consumed records before waiting, so a full producer can proceed', async () => {
    const { writer, reader, producer, consumer } = pair();
    fill(writer);
    producer.flush();
    while (reader.next() !== null);
    expect(writer.freeBytes()).toBe(0);
    expect(await consumer.waitForDataAsync(10)).toBe('timed-out');
    expect(writer.freeBytes()).toBe(CAP);
  });

  it('is woken by close() and reports closed only after draining', async () => {
    const { writer, reader, producer, consumer } = pair();
    const waiting = consumer.waitForDataAsync(10_000);
    await tick();
    writer.tryWrite(Uint8Array.of(7));
    writer.publish(); // published, but no ring(): only close() wakes the consumer
    const started = performance.now();
    producer.close();
    expect(await waiting).toBe('ok');
    expect(performance.now() - started).toBeLessThan(1000);
    expect([...reader.next()!]).toEqual([7]);
    expect(await consumer.waitForDataAsync(10_000)).toBe('closed');
    expect(consumer.waitForData(10_000)).toBe('closed');
  });

  it('allows one wait at a time', async () => {
    const { consumer } = pair();
    const first = consumer.waitForDataAsync(30);
    await expect(consumer.waitForDataAsync(30)).rejects.toThrow(RingStateError);
    expect(await first).toBe('timed-out');
  });

  it('rejects unbounded or invalid timeouts', async () => {
    const { consumer, producer } = pair();
    await expect(consumer.waitForDataAsync(Number.POSITIVE_INFINITY)).rejects.toThrow(RangeError);
    expect(() => consumer.waitForData(-1)).toThrow(RangeError);
    expect(() => producer.waitForSpace(1, Number.NaN)).toThrow(RangeError);
  });
});

describe('producer side', () => {
  it('waits for space and is woken by notifySpace() after a release', async () => {
    const { sab, writer, reader, producer, consumer } = pair();
    fill(writer);
    producer.flush();
    expect(consumer.notifySpace()).toBe(false); // nobody waiting
    const waiting = producer.waitForSpaceAsync(1020, 10_000);
    await tick();
    expect(readSlot(sab, Slot.PRODUCER_WAITING)).toBe(1);
    reader.next();
    reader.release();
    expect(consumer.notifySpace()).toBe(true);
    expect(consumer.notifySpace()).toBe(false);
    expect(await waiting).toBe('ok');
    expect(writer.tryWrite(new Uint8Array(1020))).toBe(true);
    expect(readSlot(sab, Slot.PRODUCER_WAITING)).toBe(0);
  });

  it('keeps waiting while the freed space is still too small', async () => {
    const { writer, reader, producer, consumer } = pair();
    writer.tryWrite(new Uint8Array(12)); // 16-byte frame
    fill(writer); // 3 frames of 1024; 16 bytes left
    while (writer.tryWrite(new Uint8Array(0)));
    producer.flush();
    const waiting = producer.waitForSpaceAsync(1020, 200);
    await tick();
    reader.next(); // frees only 16 bytes
    consumer.releaseAndNotify();
    expect(await waiting).toBe('timed-out');
  });

  it('publishes committed records before waiting, so the consumer can see them', () => {
    const { writer, reader, producer } = pair();
    fill(writer);
    expect(writer.pending()).toBe(CAP);
    expect(producer.waitForSpace(1, 0)).toBe('timed-out');
    expect(writer.pending()).toBe(0);
    expect(reader.available()).toBe(CAP);
  });

  it('writeAsync/writeSync throw typed errors when the budget runs out or the ring closes', async () => {
    const { writer, producer } = pair();
    fill(writer);
    await expect(producer.writeAsync(new Uint8Array(8), 20)).rejects.toThrow(RingTimeoutError);
    expect(() => producer.writeSync(new Uint8Array(8), 0)).toThrow(RingTimeoutError);
    const waiting = producer.writeAsync(new Uint8Array(8), 10_000);
    await tick();
    producer.close();
    await expect(waiting).rejects.toThrow(RingClosedError);
    expect(producer.waitForSpace(8, 10_000)).toBe('closed');
  });

  it('refuses to wait while a record is staged (it could never get the space)', () => {
    const { writer, producer } = pair();
    writer.begin(4);
    expect(() => producer.waitForSpace(4, 10)).toThrow(RingStateError);
  });
});

describe('Doorbell over the shared indexes only', () => {
  it('pairs two instances over one buffer, as two threads would', async () => {
    const { sab, writer, reader } = pair();
    const producerBell = new Doorbell(sab);
    const consumerBell = new Doorbell(sab);
    const waiting = consumerBell.waitForDataAsync(10_000);
    await tick();
    writer.tryWrite(Uint8Array.of(5));
    writer.publish();
    expect(producerBell.ring()).toBe(true);
    expect(await waiting).toBe('ok');
    expect([...reader.next()!]).toEqual([5]);
    // Consumed but not released: judged from the shared indexes this is still data.
    expect(await consumerBell.waitForDataAsync(10_000)).toBe('ok');
    reader.release();
    expect(await consumerBell.waitForDataAsync(10)).toBe('timed-out');
  });

  it('judges space from published bytes only', async () => {
    const { sab, writer } = pair();
    const bell = new Doorbell(sab);
    fill(writer);
    expect(await bell.waitForSpaceAsync(1020, 10)).toBe('ok'); // unpublished: invisible to the bell
    writer.publish();
    expect(await bell.waitForSpaceAsync(0, 10)).toBe('timed-out');
    expect(() => bell.waitForSpace(CAP - 3, 10)).toThrow(RingRecordTooLargeError);
  });
});
