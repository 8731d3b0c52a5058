/**
 * The gateway's port to a partition actor (src/partition/ref.ts), through a real broker:
 * what happens when a client's burst is larger than the partition's input ring.
 */
import { afterEach, expect, it } from 'vitest';
import { BatchBuilder } from '../../src/protocol/batch-builder.js';
import { readMessages } from '../../src/protocol/batch-reader.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { RawClient } from '../support/raw-client.js';
import { payload, sameBytes } from '../support/payload.js';

let tb: TestBroker | undefined;
afterEach(async () => {
  await tb?.stop();
  tb = undefined;
});

for (const actorHost of ['threads', 'gateway'] as const) {
  it(`holds what does not fit a full input ring and appends it in order (a burst of 16 × its size in one turn; actors on ${actorHost})`, async () => {
    // 16 KiB rings: the burst's entries fill the ring before the turn's flush publishes them, so
    // the rest is held until the actor frees space (the holding loop must publish first, or it spins).
    tb = await startTestBroker({ fsync: 'never', actorHost, ringBytes: 16 * 1024 });
    const raw = await RawClient.connect(tb.url);
    await raw.request({ op: 'create_topic', topic: 'burst', partitions: 1 });
    const REQUESTS = 64;
    const answers = Array.from({ length: REQUESTS }, (_, i) => {
      const b = new BatchBuilder();
      for (let j = 0; j < 20; j++) b.add(null, payload(i, j, 180));
      return raw.request({ op: 'produce', topic: 'burst', partition: 0, records: b.take() }, 30_000);
    });
    const results = await Promise.all(answers);
    for (const [i, r] of results.entries()) expect(r, `request ${i}`).toMatchObject({ op: 'result', parts: [[0, i * 20, 20]] });
    let offset = 0;
    while (offset < REQUESTS * 20) {
      const r = await raw.request({ op: 'fetch', topic: 'burst', partition: 0, offset, maxRecords: 500 });
      for (const m of readMessages('burst', 0, r.records as Uint8Array)) {
        expect(m.offset).toBe(offset);
        expect(sameBytes(m.value, payload(Math.floor(offset / 20), offset % 20, 180))).toBe(true);
        offset++;
      }
    }
    raw.close();
  });
}
