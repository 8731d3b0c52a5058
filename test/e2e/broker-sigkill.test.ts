import type { ChildProcess } from 'node:child_process';
import { afterEach, expect, it } from 'vitest';
import { connect } from '../../src/client/index.js';
import { readPartition } from '../support/raw-client.js';
import { tmpDir } from '../support/tmp-dir.js';
import { payload, sameBytes } from '../support/payload.js';
import { exited, startBrokerProcess } from '../support/child-broker.js';

let child: ChildProcess | undefined;
const tmp = tmpDir('weir-sigkill-');
afterEach(() => {
  child?.kill('SIGKILL');
  tmp.cleanup();
});

// fsync always on the gateway's thread too: `auto` starts every topic there (group commit's
// fdatasync on the thread that serves every socket).
const variants = [
  { host: 'threads', fsync: 'never' },
  { host: 'gateway', fsync: 'never' },
  { host: 'gateway', fsync: 'always' },
] as const;
for (const { host, fsync } of variants) {
  it(`loses no acknowledged message when the broker process is SIGKILLed mid-stream (fsync ${fsync}, partition actors on ${host === 'threads' ? 'worker threads' : "the gateway's thread"})`, async () => {
    const args = ['--actor-host', host];
    const first = await startBrokerProcess(tmp.dir, { fsync, args });
    child = first.proc;
    const client = await connect({ url: first.url, reconnect: false });
    await client.createTopic('durable', { partitions: 4 });
    const acked: Array<{ seq: number; partition: number; offset: number }> = [];
    let seq = 0;
    let stop = false;
    let failure: unknown = null; // a produce that failed before the kill: the test's own failure
    const producing = (async () => {
      while (!stop) {
        const msgs = Array.from({ length: 100 }, (_, i) => ({ key: `k${(seq + i) % 50}`, value: payload(3, seq + i, 80) }));
        const base = seq;
        seq += msgs.length;
        try {
          const acks = await client.produce('durable', msgs);
          acks.forEach((a, i) => acked.push({ seq: base + i, ...a }));
        } catch (err) {
          if (!stop) failure = err; // else the broker died under us: this batch was not acknowledged
          return;
        }
      }
    })();
    while (acked.length < 20_000 && failure === null) await new Promise((r) => setTimeout(r, 5));
    expect(failure).toBeNull();
    first.proc.kill('SIGKILL');
    stop = true;
    await producing;
    await client.close().catch(() => undefined);
    await exited(first.proc);

    const second = await startBrokerProcess(tmp.dir, { fsync, args });
    child = second.proc;
    const stored = new Map<string, Uint8Array>();
    for (let p = 0; p < 4; p++) {
      for (const [offset, m] of await readPartition(second.url, 'durable', p)) stored.set(`${p}/${offset}`, m.value);
    }
    expect(acked.length).toBeGreaterThanOrEqual(20_000);
    for (const a of acked) {
      const v = stored.get(`${a.partition}/${a.offset}`);
      expect(v, `acknowledged ${a.partition}/${a.offset}`).toBeDefined();
      expect(sameBytes(v!, payload(3, a.seq, 80))).toBe(true);
    }
    second.proc.kill('SIGTERM');
    await exited(second.proc);
  });
}
