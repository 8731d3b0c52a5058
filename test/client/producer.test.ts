import { afterEach, describe, expect, it } from 'vitest';
import v8 from 'node:v8';
import vm from 'node:vm';
import { connect, type Ack, type ClientOptions, type WeirClient } from '../../src/client/index.js';
import { readMessages } from '../../src/protocol/batch-reader.js';
import { FakeBroker, until, type FakeBrokerOptions } from './support/fake-broker.js';

let broker: FakeBroker | null = null;
let client: WeirClient | null = null;

async function setup(brokerOpts: FakeBrokerOptions = {}, clientOpts: ClientOptions = {}): Promise<{ broker: FakeBroker; client: WeirClient }> {
  broker = await FakeBroker.start(brokerOpts);
  client = await connect(broker.url, { reconnectDelayMs: 10, retryBackoffMs: 5, retryBackoffMaxMs: 20, ...clientOpts });
  return { broker, client };
}

afterEach(async () => {
  client?.destroy();
  await broker?.close();
  client = null;
  broker = null;
});

const text = new TextDecoder();
const stored = (b: FakeBroker, topic: string, p: number, offset: number): string =>
  text.decode(readMessages(topic, p, b.log(topic, p)[offset]!)[0]!.value);

describe('produce acks', () => {
  it('resolves per-message {partition, offset} for a multi-partition batch (route)', async () => {
    const { broker, client } = await setup();
    await client.createTopic('t', { partitions: 4 });
    const msgs = Array.from({ length: 40 }, (_, i) => ({ key: `key-${i}`, value: `v${i}` }));
    const acks = await client.produce('t', msgs);
    expect(broker.frames('produce')).toHaveLength(1);
    expect(broker.frames('produce')[0]!.records).toBeInstanceOf(Uint8Array);
    // The batch really spread over several partitions, so the answer carried a route.
    expect(new Set(acks.map((a) => a.partition)).size).toBeGreaterThan(1);
    acks.forEach((a, i) => expect(stored(broker, 't', a.partition, a.offset)).toBe(`v${i}`));
  });

  it('gives each produce() call its own slice of a coalesced frame', async () => {
    const { broker, client } = await setup({}, { lingerMs: 5 });
    await client.createTopic('t', { partitions: 1 });
    const calls = Array.from({ length: 100 }, (_, i) => client.produce('t', [{ value: `m${i}` }, { value: `n${i}` }]));
    const results = await Promise.all(calls);
    expect(broker.frames('produce').length).toBeLessThanOrEqual(2);
    results.forEach((acks, i) => {
      expect(acks).toHaveLength(2);
      expect(stored(broker, 't', 0, acks[0]!.offset)).toBe(`m${i}`);
      expect(stored(broker, 't', 0, acks[1]!.offset)).toBe(`n${i}`);
      expect(acks[1]!.offset).toBe(acks[0]!.offset + 1);
    });
  });

  it('lingerMs 0 still coalesces calls made in the same tick', async () => {
    const { broker, client } = await setup({}, { lingerMs: 0 });
    await client.createTopic('t', { partitions: 1 });
    await Promise.all(Array.from({ length: 50 }, (_, i) => client.produce('t', [{ value: `m${i}` }])));
    expect(broker.frames('produce')).toHaveLength(1);
  });

  it('holds no reference to the caller’s messages once they are in a batch (only the acks wait for the answer)', async () => {
    const { client } = await setup({ produceDelayMs: 300 }, { lingerMs: 0 });
    await client.createTopic('t', { partitions: 1 });
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    let ref!: WeakRef<object>;
    const pending = (() => {
      const messages = [{ value: new Uint8Array(64) }, { value: 'b' }];
      ref = new WeakRef(messages[0]!);
      return client.produce('t', messages);
    })();
    // Let the batch be sealed and sent (lingerMs 0: a microtask), then collect while the answer is 300 ms away.
    await new Promise((r) => setTimeout(r, 20));
    gc();
    expect(ref.deref()).toBeUndefined();
    expect(await pending).toEqual([
      { partition: 0, offset: 0 },
      { partition: 0, offset: 1 },
    ]);
  });

  it('splits batches at batchMessages and batchBytes, and at partition option boundaries', async () => {
    const { broker, client } = await setup({}, { lingerMs: 5, batchMessages: 10 });
    await client.createTopic('t', { partitions: 2 });
    const acks = await client.produce('t', Array.from({ length: 35 }, (_, i) => ({ value: `m${i}` })), { partition: 1 });
    expect(broker.frames('produce')).toHaveLength(4);
    expect(broker.frames('produce').every((f) => f.partition === 1)).toBe(true);
    expect(acks.map((a) => a.offset)).toEqual(Array.from({ length: 35 }, (_, i) => i));
    expect(acks.every((a) => a.partition === 1)).toBe(true);
  });

  it('rejects a record over maxMessageBytes locally with MESSAGE_TOO_LARGE (nothing sent)', async () => {
    const { broker, client } = await setup({ maxMessageBytes: 1000 });
    await client.createTopic('t', { partitions: 1 });
    const p = client.produce('t', [{ value: 'ok' }, { value: 'x'.repeat(2000) }]);
    await expect(p).rejects.toMatchObject({ code: 'MESSAGE_TOO_LARGE', retryable: false, details: { index: 1 } });
    const ok = await client.produce('t', [{ value: 'x'.repeat(900) }]);
    expect(ok).toEqual([{ partition: 0, offset: 0 }]);
    expect(broker.frames('produce')).toHaveLength(1);
  });
});

describe('produce flow control', () => {
  it('keeps unanswered produce bytes within the broker maxInFlightBytes', async () => {
    const budget = 8 * 1024;
    const { broker, client } = await setup({ maxInFlightBytes: budget, produceDelayMs: 15 }, { lingerMs: 0, batchBytes: 2048 });
    await client.createTopic('t', { partitions: 1 });
    let maxClientInFlight = 0;
    const probe = setInterval(() => {
      maxClientInFlight = Math.max(maxClientInFlight, client.stats().inFlightBytes);
    }, 1);
    const value = new Uint8Array(900);
    const all = await Promise.all(Array.from({ length: 120 }, () => client.produce('t', [{ value }])));
    clearInterval(probe);
    expect(all.flat().map((a) => a.offset)).toEqual(Array.from({ length: 120 }, (_, i) => i));
    expect(broker.maxUnansweredProduceBytes).toBeLessThanOrEqual(budget);
    // Several frames really were in flight together, so the limit is what held them back.
    expect(broker.maxUnansweredProduceBytes).toBeGreaterThan(budget / 2);
    expect(maxClientInFlight).toBeLessThanOrEqual(budget);
    expect(client.stats().inFlightBytes).toBe(0);
  });

  it('maxInFlightRequests: 1 keeps a single frame in flight', async () => {
    const { broker, client } = await setup({ produceDelayMs: 5 }, { lingerMs: 0, batchMessages: 1, maxInFlightRequests: 1 });
    await client.createTopic('t', { partitions: 1 });
    await Promise.all(Array.from({ length: 10 }, (_, i) => client.produce('t', [{ value: `${i}` }])));
    expect(broker.frames('produce')).toHaveLength(10);
    expect(broker.maxUnansweredProduceFrames).toBe(1);
  });

  it('applies back-pressure when queued bytes exceed maxQueuedBytes', async () => {
    const { broker, client } = await setup(
      { produceDelayMs: 10 },
      { lingerMs: 0, batchBytes: 1024, maxInFlightRequests: 1, maxQueuedBytes: 4096 },
    );
    await client.createTopic('t', { partitions: 1 });
    const value = new Uint8Array(1000);
    let maxQueued = 0;
    let maxWaiting = 0;
    const calls = Array.from({ length: 30 }, () => client.produce('t', [{ value }]));
    const probe = setInterval(() => {
      const s = client.stats();
      maxQueued = Math.max(maxQueued, s.queuedBytes);
      maxWaiting = Math.max(maxWaiting, s.waitingProducers);
    }, 1);
    maxQueued = Math.max(maxQueued, client.stats().queuedBytes);
    maxWaiting = Math.max(maxWaiting, client.stats().waitingProducers);
    const acks = await Promise.all(calls);
    clearInterval(probe);
    expect(maxWaiting).toBeGreaterThan(0);
    expect(maxQueued).toBeLessThanOrEqual(4096);
    expect(acks.flat().map((a) => a.offset)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(broker.log('t', 0)).toHaveLength(30);
  });
});

describe('produce errors and retries', () => {
  it('retries PARTITION_UNAVAILABLE with backoff, then succeeds', async () => {
    const { broker, client } = await setup();
    await client.createTopic('t', { partitions: 1 });
    let failures = 2;
    broker.hook = (f) => (f.op === 'produce' && failures-- > 0 ? { error: { code: 'PARTITION_UNAVAILABLE', retryable: true } } : undefined);
    const acks = await client.produce('t', [{ value: 'a' }, { value: 'b' }]);
    expect(acks).toEqual([
      { partition: 0, offset: 0 },
      { partition: 0, offset: 1 },
    ]);
    expect(broker.frames('produce')).toHaveLength(3);
    expect(client.stats().retries).toBe(2);
  });

  it('a batch resent after a failure carries its own records while later batches reuse pooled buffers', async () => {
    // Batches are sent from their builder (no copy) and builders are pooled once a batch is
    // answered: more batches than the pool holds are in flight here, half of them retried.
    const { broker, client } = await setup({ produceDelayMs: 5 }, { lingerMs: 0, batchMessages: 1, maxInFlightRequests: 64 });
    await client.createTopic('t', { partitions: 1 });
    let seen = 0;
    broker.hook = (f) => (f.op === 'produce' && seen++ % 2 === 0 && seen < 40 ? { error: { code: 'PARTITION_UNAVAILABLE', retryable: true } } : undefined);
    const values = Array.from({ length: 20 }, (_, i) => `value-${i}-${'x'.repeat(i * 7)}`);
    // Calls spread over time, so new batches are built while earlier ones wait out a retry backoff.
    const calls: Array<Promise<Ack[]>> = [];
    for (const value of values) {
      calls.push(client.produce('t', [{ value }]));
      await new Promise((r) => setTimeout(r, 2));
    }
    const acks = await Promise.all(calls);
    expect(client.stats().retries).toBeGreaterThan(0);
    const got = acks.map(([a]) => stored(broker, 't', a!.partition, a!.offset));
    expect(got).toEqual(values);
    expect(broker.log('t', 0)).toHaveLength(values.length);
  });

  it('rejects with the broker code on a non-retryable error, without retrying', async () => {
    const { broker, client } = await setup();
    const p = client.produce('missing', [{ value: 'a' }]);
    await expect(p).rejects.toMatchObject({ name: 'WeirClientError', code: 'TOPIC_NOT_FOUND', retryable: false });
    expect(broker.frames('produce')).toHaveLength(1);
    expect(client.stats().retries).toBe(0);
  });

  it('gives up after retryForMs with the last retryable error', async () => {
    const { broker, client } = await setup({}, { retryForMs: 80 });
    await client.createTopic('t', { partitions: 1 });
    broker.hook = (f) => (f.op === 'produce' ? { error: { code: 'STORAGE_FULL' } } : undefined);
    await expect(client.produce('t', [{ value: 'a' }])).rejects.toMatchObject({ code: 'STORAGE_FULL', retryable: true });
    expect(broker.frames('produce').length).toBeGreaterThan(2);
  });

  it('TIMEOUT: a request with no answer rejects after requestTimeoutMs', async () => {
    const { broker, client } = await setup({}, { requestTimeoutMs: 80 });
    broker.hook = (f) => (f.op === 'list_topics' ? 'ignore' : undefined);
    const t0 = Date.now();
    await expect(client.listTopics()).rejects.toMatchObject({ code: 'TIMEOUT', retryable: true });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(70);
    // The connection is still usable, and a late answer to the timed-out id is ignored.
    broker.hook = null;
    expect(await client.listTopics()).toEqual([]);
  });

  it('a produce whose answer times out is retried (at-least-once)', async () => {
    const { broker, client } = await setup({}, { requestTimeoutMs: 50 });
    await client.createTopic('t', { partitions: 1 });
    let first = true;
    broker.hook = (f) => {
      if (f.op === 'produce' && first) {
        first = false;
        return 'ignore';
      }
      return undefined;
    };
    const acks = await client.produce('t', [{ value: 'a' }]);
    expect(acks).toEqual([{ partition: 0, offset: 0 }]);
    expect(broker.frames('produce')).toHaveLength(2);
  });
});

describe('reconnect', () => {
  it('reconnects after the server drops the socket, re-sends hello, and the produce completes', async () => {
    const { broker, client } = await setup();
    await client.createTopic('t', { partitions: 1 });
    let dropped = false;
    broker.hook = (f) => {
      if (f.op === 'produce' && !dropped) {
        dropped = true;
        return 'drop';
      }
      return undefined;
    };
    const events: string[] = [];
    client.on('disconnect', (e) => events.push(`disconnect:${e.code}`));
    client.on('reconnect', () => events.push('reconnect'));
    const acks = await client.produce('t', [{ value: 'a' }, { value: 'b' }]);
    expect(acks).toEqual([
      { partition: 0, offset: 0 },
      { partition: 0, offset: 1 },
    ]);
    expect(broker.frames('hello')).toHaveLength(2);
    expect(broker.conns).toHaveLength(2);
    expect(client.stats().reconnects).toBe(1);
    expect(events).toEqual(['disconnect:CONNECTION_CLOSED', 'reconnect']);
  });

  it('with reconnect: false, a dropped socket closes the client and fails requests', async () => {
    const { broker, client } = await setup({}, { reconnect: false });
    broker.hook = (f) => (f.op === 'list_topics' ? 'drop' : undefined);
    await expect(client.listTopics()).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
    await until(() => broker.conns[0]!.ws.readyState === broker.conns[0]!.ws.CLOSED);
    await expect(client.listTopics()).rejects.toMatchObject({ code: 'CONNECTION_CLOSED', retryable: false });
  });

  it('fails to connect with CONNECTION_CLOSED when nothing listens', async () => {
    const b = await FakeBroker.start();
    const url = b.url;
    await b.close();
    await expect(connect(url, { connectTimeoutMs: 1000 })).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
  });
});

describe('close and destroy', () => {
  it('close() flushes pending produces before closing the socket', async () => {
    const { broker, client: c } = await setup({ produceDelayMs: 20 }, { lingerMs: 50 });
    await c.createTopic('t', { partitions: 1 });
    const p = c.produce('t', [{ value: 'late' }]);
    await c.close();
    expect(await p).toEqual([{ partition: 0, offset: 0 }]);
    await expect(c.produce('t', [{ value: 'x' }])).rejects.toMatchObject({ code: 'CONNECTION_CLOSED', retryable: false });
    expect(broker.log('t', 0)).toHaveLength(1);
  });

  it('destroy() fails outstanding produces at once', async () => {
    const { broker, client: c } = await setup();
    await c.createTopic('t', { partitions: 1 });
    broker.hook = (f) => (f.op === 'produce' ? 'ignore' : undefined);
    const p = c.produce('t', [{ value: 'a' }]);
    await until(() => broker.frames('produce').length === 1);
    c.destroy();
    await expect(p).rejects.toMatchObject({ code: 'CONNECTION_CLOSED', retryable: false });
  });

  it('createTopic is idempotent for the same count; describe/list/fetch work', async () => {
    const { client } = await setup();
    expect(await client.createTopic('t', { partitions: 2 })).toEqual({ topic: 't', partitions: 2, created: true });
    expect(await client.createTopic('t', { partitions: 2 })).toEqual({ topic: 't', partitions: 2, created: false });
    await expect(client.createTopic('t', { partitions: 3 })).rejects.toMatchObject({ code: 'TOPIC_EXISTS' });
    await client.produce('t', [{ value: 'a', key: 'k', headers: { h: 'v' } }, { value: 'b' }], { partition: 1 });
    expect(await client.listTopics()).toEqual([{ topic: 't', partitions: 2 }]);
    const d = await client.describeTopic('t');
    expect(d.offsets).toEqual([
      { partition: 0, start: 0, end: 0, host: 'gateway' },
      { partition: 1, start: 0, end: 2, host: 'gateway' },
    ]);
    const f = await client.fetch('t', 1, 0, { maxRecords: 10 });
    expect(f.next).toBe(2);
    expect(f.end).toBe(2);
    expect(f.messages.map((m) => [m.offset, m.key, text.decode(m.value), m.headers])).toEqual([
      [0, 'k', 'a', { h: 'v' }],
      [1, null, 'b', {}],
    ]);
  });
});

describe('keep-alive', () => {
  it('pings an idle connection and reconnects when the ping gets no answer', async () => {
    const { broker, client } = await setup({}, { keepAliveMs: 40 });
    let silent = true;
    broker.hook = (f) => (f.op === 'ping' && silent ? 'ignore' : undefined);
    await until(() => client.stats().reconnects === 1, 2000, 'keep-alive reconnect');
    expect(broker.frames('ping').length).toBeGreaterThanOrEqual(1);
    expect(broker.frames('hello')).toHaveLength(2);
    silent = false;
    await until(() => broker.frames('ping').length >= 3, 2000, 'pings answered');
    expect(client.stats().reconnects).toBe(1);
    expect(await client.listTopics()).toEqual([]);
  });
});
