import { expect, it } from 'vitest';
import { run as consume } from '../../src/cli/commands/consume.js';
import { run as dlq } from '../../src/cli/commands/dlq.js';
import { brokerFixture, startTestBroker } from '../support/broker.js';
import { cliIo as io } from '../support/cli-io.js';

const fx = brokerFixture();
const open = (url: string) => fx.client(url, { reconnect: false });


it('weir consume --queue shares messages between runs; weir dlq read and redrive', async () => {
  fx.tb = await startTestBroker();
  const url = fx.tb.url;
  const p = await open(url);
  await p.createTopic('jobs', { partitions: 1 });
  await p.produce('jobs', ['a', 'b', 'c', 'd', 'e'].map((value) => ({ key: `k-${value}`, value })));

  let t = io();
  expect(await consume(['jobs', '--queue', '--group', 'workers', '--count', '3', '--url', url], t)).toBe(0);
  expect(t.out()).toBe('0 0 k-a a\n0 1 k-b b\n0 2 k-c c\n');
  t = io();
  expect(await consume(['jobs', '--queue', '--group', 'workers', '--count', '2', '--url', url], t)).toBe(0);
  expect(t.out()).toBe('0 3 k-d d\n0 4 k-e e\n');
  expect(await consume(['jobs', '--queue', '--url', url], io())).toBe(2); // needs --group

  // Reject two messages for good, then look at them and redrive them.
  await p.produce('jobs', [{ key: 'k-x', value: 'x' }, { key: 'k-y', value: 'y' }]);
  const c = await open(url);
  const sub = await c.subscribe('jobs', { mode: 'queue', group: 'workers' }, (m) => m.nack({ fatal: true, reason: 'malformed' }));
  let letters = '';
  for (let i = 0; i < 100 && letters.split('\n').length < 3; i++) {
    await new Promise((r) => setTimeout(r, 50));
    t = io();
    expect(await dlq(['read', 'jobs', '--url', url], t)).toBe(0);
    letters = t.out();
  }
  await sub.close();
  expect(letters).toBe(
    '0 0 REASON="rejected: malformed" FROM=jobs/0/5 GROUP=workers DELIVERIES=1 k-x x\n' +
      '0 1 REASON="rejected: malformed" FROM=jobs/0/6 GROUP=workers DELIVERIES=1 k-y y\n',
  );
  t = io();
  expect(await dlq(['redrive', 'jobs', '--url', url], t)).toBe(0);
  expect(t.out()).toBe('redriven 2 jobs\n');
  t = io();
  expect(await consume(['jobs', '--queue', '--group', 'workers', '--count', '2', '--url', url], t)).toBe(0);
  expect(t.out()).toBe('0 7 k-x x\n0 8 k-y y\n');
  expect(await dlq(['frob', 'jobs'], io())).toBe(2);
});
