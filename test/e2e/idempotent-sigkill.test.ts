/**
 * Exactly-once append across a SIGKILL of the broker process (fsync never): batches the broker
 * wrote but whose answers were lost are resent to the restarted broker, acknowledged with their
 * original offsets, and stored once. The producer state is rebuilt from the log (no clean-shutdown
 * snapshot). Runs bin/weir.js, so it needs `npm run build`.
 */
import type { ChildProcess } from 'node:child_process';
import { afterEach, expect, it } from 'vitest';
import { connect, type Ack } from '../../src/client/index.js';
import { readPartition } from '../support/raw-client.js';
import { tmpDir } from '../support/tmp-dir.js';
import { until } from '../support/payload.js';
import { flakySockets } from '../support/flaky-socket.js';
import { exited, startBrokerProcess } from '../support/child-broker.js';

let child: ChildProcess | undefined;
const tmp = tmpDir('weir-eos-sigkill-');
afterEach(() => {
  child?.kill('SIGKILL');
  tmp.cleanup();
});

it('resends to a broker restarted after SIGKILL: original offsets, every message stored once', async () => {
  const first = await startBrokerProcess(tmp.dir);
  child = first.proc;
  const flaky = flakySockets();
  const client = await connect(first.url, { idempotent: true, WebSocket: flaky.Ctor, batchMessages: 10, maxInFlightRequests: 10, lingerMs: 0, reconnectDelayMs: 50 });
  try {
    await client.createTopic('eos', { partitions: 2 });
    const values: string[] = [];
    const send = (i: number): Promise<Ack[]> => {
      const msgs = Array.from({ length: 10 }, (_, j) => ({ value: `s${i * 10 + j}` }));
      values.push(...msgs.map((m) => m.value));
      return client.produce('eos', msgs, { partition: i % 2 });
    };
    const firstAcks = (await Promise.all(Array.from({ length: 20 }, (_, i) => send(i)))).flat();
    flaky.current.swallow = true;
    const pending = Array.from({ length: 20 }, (_, i) => send(20 + i));
    await until(() => flaky.current.swallowed >= 20, 10_000, 'the broker to answer the 20 batches');
    first.proc.kill('SIGKILL');
    await exited(first.proc);

    const second = await startBrokerProcess(tmp.dir);
    child = second.proc;
    flaky.redirect = second.url;
    const lateAcks = (await Promise.all(pending)).flat();
    const acks = [...firstAcks, ...lateAcks];

    const stored = new Map<string, string>();
    for (let p = 0; p < 2; p++) {
      for (const [offset, m] of await readPartition(second.url, 'eos', p)) {
        const v = new TextDecoder().decode(m.value);
        expect(stored.has(v), `${v} stored twice`).toBe(false);
        stored.set(v, `${p}/${offset}`);
      }
    }
    expect(stored.size).toBe(400);
    values.forEach((v, i) => expect(stored.get(v)).toBe(`${acks[i]!.partition}/${acks[i]!.offset}`));
  } finally {
    client.destroy();
  }
  child.kill('SIGTERM');
  await exited(child!);
});
