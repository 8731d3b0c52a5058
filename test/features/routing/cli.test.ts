import { expect, it } from 'vitest';
import { connect } from '../../../src/client/index.js';
import { run as consume } from '../../../src/cli/commands/consume.js';
import { brokerFixture, startTestBroker } from '../../support/broker.js';
import { cliIo } from '../../support/cli-io.js';

const fx = brokerFixture();


it('weir consume --pattern prints the messages of every matching topic, prefixed with the topic', async () => {
  fx.tb = await startTestBroker();
  const c = await connect(fx.tb.url);
  for (const t of ['app.web.errors', 'app.db.errors', 'app.web.access']) await c.createTopic(t, { partitions: 1 });
  await c.produce('app.web.errors', [{ key: 'k', value: 'w1' }, { value: 'w2' }]);
  await c.produce('app.db.errors', [{ value: 'd1' }]);
  await c.produce('app.web.access', [{ value: 'nope' }]);
  await c.close();

  const io = cliIo();
  expect(await consume(['--pattern', 'app.*.errors', '--from', 'earliest', '--group', 'cli', '--count', '3', '--url', fx.tb.url], io)).toBe(0);
  expect(io.out().split('\n').filter(Boolean).sort()).toEqual(['app.db.errors 0 0  d1', 'app.web.errors 0 0 k w1', 'app.web.errors 0 1  w2']);

  const bad = cliIo();
  expect(await consume(['orders', '--pattern', 'a.#', '--url', fx.tb.url], bad)).toBe(2);
  expect(bad.err()).toMatch(/TOPIC or --pattern/);
  const invalid = cliIo();
  expect(await consume(['--pattern', 'a.b#', '--count', '1', '--url', fx.tb.url], invalid)).toBe(1);
  expect(invalid.err()).toMatch(/BAD_REQUEST/);
});
