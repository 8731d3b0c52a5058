/**
 * A partition whose log can no longer be opened (its active segment replaced by a directory of the
 * same name, then its actor crashed) keeps failing its restarts. The broker gives up on that
 * partition alone, well before the partition supervisor's intensity would make it restart every
 * partition (and, failing again, stop the broker): the other partitions keep serving produce and
 * consume without a restart, requests to the failed one are answered with STORAGE_ERROR naming the
 * errno and the file, /healthz names it with its last error, and the supervisor's and the broker's
 * diagnostics events carry the reason.
 */
import { execFileSync } from 'node:child_process';
import diagnostics_channel from 'node:diagnostics_channel';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WeirError } from '../../src/common/errors.js';
import { brokerFixture, startTestBroker } from '../support/broker.js';
import { until } from '../support/payload.js';

const fx = brokerFixture();

type Msg = Record<string, unknown>;
const seen: Record<string, Msg[]> = {};
const listeners: Array<[string, (m: unknown) => void]> = [];
function record(channel: string): Msg[] {
  const list: Msg[] = (seen[channel] = []);
  const fn = (m: unknown): void => void list.push(m as Msg);
  diagnostics_channel.subscribe(channel, fn);
  listeners.push([channel, fn]);
  return list;
}
afterEach(() => {
  for (const [channel, fn] of listeners.splice(0)) diagnostics_channel.unsubscribe(channel, fn);
});

async function health(port: number): Promise<{ status: number; body: Msg }> {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`);
  return { status: res.status, body: (await res.json()) as Msg };
}

describe.each(['gateway', 'threads'] as const)('partition actors on %s', (actorHost) => {
  it('gives up on the one partition that keeps failing, reports why, and keeps the others serving', async () => {
    const failed = record('weir:partition:failed');
    const supRestarts = record('weir:supervisor:restart');
    const escalations = record('weir:supervisor:escalate');
    const partitionRestarts = record('weir:partition:restart');
    fx.tb = await startTestBroker({
      actorHost,
      actorsPerThread: 1,
      restartIntensity: 10,
      restartBackoff: { initialMs: 5, maxMs: 20 },
    });
    let fatal: Error | null = null;
    fx.tb.broker.onFatal((err) => (fatal = err));
    const c = await fx.client(fx.tb.url);
    await c.createTopic('good', { partitions: 2 });
    await c.createTopic('bad', { partitions: 2 });
    for (const [topic, p] of [['good', 0], ['good', 1], ['bad', 0], ['bad', 1]] as const) {
      await c.produce(topic, [{ value: `${topic}/${p} before` }], { partition: p });
    }

    // bad/0's active segment becomes a directory: the next open of its log fails (EISDIR).
    const dir = path.join(fx.tb.dir, 'topics', 'bad', '0');
    const segment = path.join(dir, fs.readdirSync(dir).find((f) => f.endsWith('.log'))!);
    fs.renameSync(segment, `${segment}.moved`);
    fs.mkdirSync(segment);
    fx.tb.broker.partitionActor('bad', 0).crash('throw');

    // (Before, the partition supervisor escalated, restarted every partition, failed again, and
    // the broker stopped: onFatal.)
    await until(() => failed.length > 0 || fatal !== null, 20_000, 'the broker to give up on bad/0');
    expect(fatal).toBeNull();
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ topic: 'bad', partition: 0, code: 'EISDIR', answer: 'STORAGE_ERROR' });
    expect(String(failed[0]!.message)).toContain(segment);
    // The supervisor's restart events said why, each time; it never escalated; no other partition restarted.
    const reasons = supRestarts.filter((m) => m.supervisor === 'partitions').map((m) => (m.reason as Error | null)?.message ?? '');
    expect(reasons.length).toBeGreaterThan(1);
    expect(reasons.slice(1).every((r) => r.includes('EISDIR'))).toBe(true);
    expect(escalations).toEqual([]);
    expect(partitionRestarts.filter((m) => !(m.topic === 'bad' && m.partition === 0))).toEqual([]);
    expect(fatal).toBeNull();

    // /healthz: degraded, and it says which partition and why.
    const h = await health(fx.tb.broker.port);
    expect(h.status).toBe(503);
    expect(h.body.partitions).toEqual({ up: 3, total: 4 });
    const down = h.body.unavailable as Msg[];
    expect(down).toHaveLength(1);
    expect(down[0]).toMatchObject({ topic: 'bad', partition: 0, state: 'failed', code: 'STORAGE_ERROR' });
    expect(String(down[0]!.message)).toMatch(/EISDIR/);
    expect(String(down[0]!.message)).toContain(segment);

    // The failed partition answers with what failed (not retryable), at once.
    const err = await c.produce('bad', [{ value: 'to the failed one' }], { partition: 0 }).then(
      () => null,
      (e: unknown) => e as WeirError,
    );
    expect(err?.code).toBe('STORAGE_ERROR');
    expect(err?.retryable).toBe(false);
    expect(err?.message).toMatch(/EISDIR/);

    // Every other partition serves produce and consume.
    for (const [topic, p] of [['good', 0], ['good', 1], ['bad', 1]] as const) {
      await c.produce(topic, [{ value: `${topic}/${p} after` }], { partition: p });
    }
    const got: string[] = [];
    const sub = await c.subscribe('good', { from: 'earliest' }, (m) => void got.push(new TextDecoder().decode(m.value)));
    const r = await c.fetch('bad', 1, 0);
    expect(r.messages.map((m) => new TextDecoder().decode(m.value))).toEqual(['bad/1 before', 'bad/1 after']);
    await until(() => got.length === 4, 10_000, 'all four messages of good');
    expect(got.sort()).toEqual(['good/0 after', 'good/0 before', 'good/1 after', 'good/1 before']);
    await sub.close();
  });
});

const isRoot = process.getuid?.() === 0;
const canChattr = (() => {
  if (!isRoot) return false;
  const probe = fs.mkdtempSync(path.join(os.tmpdir(), 'weir-chattr-probe-'));
  try {
    execFileSync('chattr', ['+i', probe], { stdio: 'ignore' });
    execFileSync('chattr', ['-i', probe], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    fs.rmSync(probe, { recursive: true, force: true });
  }
})();

// An open file made immutable (chattr +i) refuses writes with EPERM. Needs root and a file system
// with chattr (skipped otherwise: without root a mode change does not affect an open descriptor).
describe.skipIf(!canChattr)('a produce whose write to the log fails with EPERM (chattr +i; root only)', () => {
  it.each(['gateway', 'threads'] as const)('is answered STORAGE_ERROR naming the errno and the file, not PARTITION_UNAVAILABLE (actors on %s)', async (actorHost) => {
    fx.tb = await startTestBroker({ actorHost, actorsPerThread: 1 });
    const c = await fx.client(fx.tb.url, { retryForMs: 0 }); // the first answer, not a retry's
    await c.createTopic('t', { partitions: 1 });
    await c.produce('t', [{ value: 'before' }]);
    const dir = path.join(fx.tb.dir, 'topics', 't', '0');
    const segment = path.join(dir, fs.readdirSync(dir).find((f) => f.endsWith('.log'))!);
    execFileSync('chattr', ['+i', segment]);
    let err: WeirError | null;
    try {
      err = await c.produce('t', [{ value: 'refused' }]).then(
        () => null,
        (e: unknown) => e as WeirError,
      );
    } finally {
      execFileSync('chattr', ['-i', segment]); // before the fixture deletes the data directory
    }
    expect(err?.code).toBe('STORAGE_ERROR');
    expect(err?.message).toMatch(/EPERM/);
    expect(err?.message).toContain(segment);
  });
});
