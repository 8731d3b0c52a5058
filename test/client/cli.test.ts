import { afterEach, describe, expect, it } from 'vitest';
import { run as consume, parseFrom } from '../../src/cli/commands/consume.js';
import { run as produce } from '../../src/cli/commands/produce.js';
import { run as topics } from '../../src/cli/commands/topics.js';
import { readMessages } from '../../src/protocol/batch-reader.js';
import { FakeBroker, until } from './support/fake-broker.js';
import { cliIo as io } from '../support/cli-io.js';

let broker: FakeBroker | null = null;
afterEach(async () => {
  await broker?.close();
  broker = null;
});


const text = new TextDecoder();

describe('weir topics', () => {
  it('create, list, describe', async () => {
    broker = await FakeBroker.start();
    const url = broker.url;
    let t = io();
    expect(await topics(['create', 'orders', '--partitions', '3', '--url', url], t)).toBe(0);
    expect(t.out()).toBe('created orders 3\n');
    t = io();
    expect(await topics(['create', 'orders', '--partitions', '3', '--url', url], t)).toBe(0);
    expect(t.out()).toBe('exists orders 3\n');
    t = io();
    expect(await topics(['create', 'orders', '--partitions', '4', '--url', url], t)).toBe(1);
    expect(t.err()).toMatch(/TOPIC_EXISTS/);
    t = io();
    expect(await topics(['--url', url], t)).toBe(0);
    expect(t.out()).toBe('orders 3\n');
    t = io();
    expect(await topics(['describe', 'orders', '--url', url], t)).toBe(0);
    expect(t.out()).toBe('topic orders partitions 3\npartition 0 start 0 end 0 on gateway\npartition 1 start 0 end 0 on gateway\npartition 2 start 0 end 0 on gateway\n');
  });

  it('usage errors exit 2', async () => {
    const t = io();
    expect(await topics(['frobnicate'], t)).toBe(2);
    expect(t.err()).toMatch(/usage: weir topics/);
    expect(await topics(['--nope'], io())).toBe(2);
    expect(await topics(['describe'], io())).toBe(2);
  });
});

describe('weir produce / consume', () => {
  it('produces stdin lines with key separator and headers, then consumes them with --count', async () => {
    broker = await FakeBroker.start();
    broker.createTopic('t', 1);
    const url = broker.url;
    const p = io('a:one\nb:two\nthree\n');
    expect(await produce(['t', '--url', url, '--key-sep', ':', '--header', 'src=cli', '--header', 'x=1=2'], p)).toBe(0);
    expect(p.out()).toBe('acked 3 messages; last: partition 0 offset 2\n');
    const stored = broker.log('t', 0).map((r) => readMessages('t', 0, r)[0]!);
    expect(stored.map((m) => [m.key, text.decode(m.value), m.headers])).toEqual([
      ['a', 'one', { src: 'cli', x: '1=2' }],
      ['b', 'two', { src: 'cli', x: '1=2' }],
      [null, 'three', { src: 'cli', x: '1=2' }],
    ]);

    const c = io();
    expect(await consume(['t', '--url', url, '--from', 'earliest', '--count', '2', '--group', 'g'], c)).toBe(0);
    expect(c.out()).toBe('0 0 a one\n0 1 b two\n');
    // Exactly the printed messages were committed.
    expect(broker.committed.get('g/t/0')).toBe(2);
    expect(c.err()).toBe('');
  });

  it('consume runs until its signal aborts', async () => {
    broker = await FakeBroker.start();
    broker.createTopic('t', 1);
    const ac = new AbortController();
    const c = { ...io(), signal: ac.signal };
    const done = consume(['t', '--url', broker.url], c);
    await until(() => broker!.frames('subscribe').length === 1);
    await until(() => broker!.subs.size === 1);
    expect(await produce(['t', '--url', broker.url], io('hello\n'))).toBe(0);
    await until(() => c.out() === '0 0  hello\n');
    ac.abort();
    expect(await done).toBe(0);
  });

  it('produce reports broker errors with exit 1', async () => {
    broker = await FakeBroker.start();
    const p = io('x\n');
    expect(await produce(['missing', '--url', broker.url], p)).toBe(1);
    expect(p.err()).toMatch(/TOPIC_NOT_FOUND/);
    expect(p.out()).toBe('acked 0 messages\n');
  });

  it('parses --from forms', () => {
    expect(parseFrom('earliest')).toBe('earliest');
    expect(parseFrom('42')).toEqual({ offset: 42 });
    expect(parseFrom('@1700000000000')).toEqual({ timestamp: 1700000000000 });
    expect(parseFrom('@2024-01-01T00:00:00Z')).toEqual({ timestamp: Date.UTC(2024, 0, 1) });
    expect(() => parseFrom('soon')).toThrow(/--from/);
  });
});
