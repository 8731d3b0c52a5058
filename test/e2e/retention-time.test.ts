/**
 * Retention by time on a topic that stopped receiving: its records expire and are deleted (the
 * active segment rolls once all of it expired), on either host of partition actors.
 */
import { afterEach, expect, it } from 'vitest';
import { connect, type WeirClient } from '../../src/client/index.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';

let tb: TestBroker | undefined;
let client: WeirClient | undefined;
afterEach(async () => {
  await client?.close().catch(() => undefined);
  await tb?.stop();
  tb = client = undefined;
});

for (const actorHost of ['gateway', 'threads'] as const) {
  it(`--retention-ms 1000 trims a topic that receives nothing more (actors on ${actorHost})`, async () => {
    tb = await startTestBroker({ retentionMs: 1000, actorHost });
    client = await connect(tb.url);
    await client.createTopic('quiet', { partitions: 2 });
    await client.produce('quiet', Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, value: `v${i}` })));
    const before = await client.describeTopic('quiet');
    expect(before.offsets.reduce((n, o) => n + o.end - o.start, 0)).toBe(100);
    // Bounded wait (the retention check runs every few seconds), not a timing assertion.
    const deadline = Date.now() + 30_000;
    let left = 100;
    while (left > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      const d = await client.describeTopic('quiet');
      left = d.offsets.reduce((n, o) => n + o.end - o.start, 0);
    }
    expect(left).toBe(0);
    // Nothing of it is delivered any more; new messages are, at new offsets.
    const after = await client.describeTopic('quiet');
    for (const o of after.offsets) expect(o.start).toBe(o.end);
    const got: string[] = [];
    const sub = await client.subscribe('quiet', { from: 'earliest' }, (m) => void got.push(new TextDecoder().decode(m.value)));
    await client.produce('quiet', [{ key: 'k1', value: 'fresh' }]);
    while (got.length < 1) await new Promise((r) => setTimeout(r, 10));
    await sub.close();
    expect(got).toEqual(['fresh']);
  });
}
