/**
 * Quotas as clients meet them, through the SDK over real sockets: a principal producing (or
 * consuming) flat out over its byte rate is slowed to it, while another principal on the same
 * broker is not; a tenant's topic count and storage are refused beyond their limits
 * (QUOTA_EXCEEDED), its storage read from disk at start; a principal's connections beyond its
 * limit are refused (TOO_MANY_CONNECTIONS).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, type WeirClient } from '../../src/client/index.js';
import type { Rule } from '../../src/security/index.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { SUPERUSER, signToken, writeJwtSecret } from '../support/security.js';
import { tmpDir } from '../support/tmp-dir.js';
import { refusal } from '../support/refusal.js';

const QUOTA = 200_000; // bytes per second
const VALUE = new Uint8Array(4000).fill(120);

const tmp = tmpDir('weir-quota-enforcement-');
let tb: TestBroker;
let secret: Uint8Array;
const clients: WeirClient[] = [];

async function as(sub: string, allow: Rule[] = [SUPERUSER]): Promise<WeirClient> {
  const c = await connect(tb.url, { token: await signToken(secret, sub, { allow }), reconnect: false });
  clients.push(c);
  return c;
}

/** Produces VALUE-sized messages flat out (`workers` calls at once) for `ms`; the acked bytes with the time of each ack. */
async function produceFlatOut(c: WeirClient, topic: string, ms: number, workers = 32): Promise<Array<[number, number]>> {
  const acked: Array<[number, number]> = [];
  const start = Date.now();
  const end = start + ms;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (Date.now() < end) {
        await c.produce(topic, [{ value: VALUE }]);
        acked.push([Date.now() - start, VALUE.length]);
      }
    }),
  );
  return acked;
}

/**
 * Bytes per second of `events` (time, bytes) between the first and the last of them that fall in
 * [fromMs, toMs): the bytes after the first over the time between them, so that acks arriving in
 * lumps (a batch's messages at once) are not cut at the window's edges.
 */
function rate(events: Array<[number, number]>, fromMs: number, toMs: number): number {
  const inside = events.filter(([t]) => t >= fromMs && t < toMs).sort((a, b) => a[0] - b[0]);
  const first = inside[0]![0];
  const last = inside[inside.length - 1]![0];
  let bytes = 0;
  for (const [t, n] of inside) if (t > first) bytes += n;
  return (bytes * 1000) / (last - first);
}

beforeAll(async () => {
  const jwt = writeJwtSecret(tmp.dir);
  secret = jwt.secret;
  tb = await startTestBroker({
    security: {
      jwt: { secretFile: jwt.file },
      // A default for every principal; `fast` has none (0), `admin` neither.
      quotas: { produceBytesPerSec: QUOTA, consumeBytesPerSec: QUOTA, perPrincipal: { fast: { produceBytesPerSec: 0, consumeBytesPerSec: 0 }, admin: {} } },
      tenants: [
        { name: 'acme', prefix: 'acme.', maxTopics: 2 },
        { name: 'tiny', prefix: 'tiny.', maxStorageBytes: 20_000 },
      ],
      maxConnectionsPerPrincipal: 2,
    },
  });
  const admin = await as('admin');
  await admin.createTopic('rates', { partitions: 2 });
  await admin.createTopic('backlog', { partitions: 1 });
  // 2 MB for the consumers to read flat out.
  for (let i = 0; i < 20; i++) await admin.produce('backlog', Array.from({ length: 25 }, () => ({ value: VALUE })));
  await admin.close();
  clients.length = 0;
}, 60_000);
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => undefined);
});
afterAll(async () => {
  await tb?.stop();
  tmp.cleanup();
});

describe('byte-rate quotas', () => {
  it('slows a producer over its quota to it, without errors, while another principal is not slowed', async () => {
    const slow = await as('slow');
    const fast = await as('fast');
    const [slowAcks, fastAcks] = await Promise.all([produceFlatOut(slow, 'rates', 4500, 4), produceFlatOut(fast, 'rates', 4500, 8)]);
    // After the first second (the bucket starts full: one second's worth passes at once).
    const slowRate = rate(slowAcks, 1000, 4000);
    expect(slowRate).toBeGreaterThan(QUOTA * 0.9);
    expect(slowRate).toBeLessThan(QUOTA * 1.1);
    expect(rate(fastAcks, 1000, 4000)).toBeGreaterThan(QUOTA * 3);
  }, 30_000);

  it('slows deliveries to a consumer over its quota to it, while another principal is not slowed', async () => {
    const slow = await as('slow-reader');
    const fast = await as('fast');
    const seen: Record<string, Array<[number, number]>> = { slow: [], fast: [] };
    const start = Date.now();
    const on = (who: string) => (m: { value: Uint8Array }): void => void seen[who]!.push([Date.now() - start, m.value.length]);
    await slow.subscribe('backlog', { from: 'earliest', credits: 10 }, on('slow'));
    await fast.subscribe('backlog', { from: 'earliest', credits: 10 }, on('fast'));
    await new Promise((r) => setTimeout(r, 4200));
    const slowRate = rate(seen.slow!, 1000, 4000);
    expect(slowRate).toBeGreaterThan(QUOTA * 0.9);
    expect(slowRate).toBeLessThan(QUOTA * 1.1);
    // The fast one read the whole backlog (2 MB) long before.
    expect(seen.fast!.length).toBe(500);
  }, 30_000);
});

describe('configuration and shutdown', () => {
  it('refuses a wrong quota, tenant list or connection limit at start (BAD_CONFIG)', async () => {
    for (const security of [
      { quotas: { produceBytesPerSec: -1 } },
      { quotas: { perPrincipal: { x: { consumeBytesPerSec: Number.NaN } } } },
      { tenants: [{ name: 'a', prefix: 'nodot' }] },
      { tenants: [{ name: 'a', prefix: 'a.', maxTopics: 1, colour: 'red' }] as never },
      { maxConnectionsPerPrincipal: 0 },
    ]) {
      await expect(startTestBroker({ security }), JSON.stringify(security)).rejects.toMatchObject({ code: 'BAD_CONFIG' });
    }
  });

  it('answers the produces it holds back at once when the broker stops (their data is written)', async () => {
    const own = await startTestBroker({ security: { quotas: { produceBytesPerSec: 1000 } } });
    try {
      const c = await connect(own.url, { reconnect: false });
      await c.createTopic('held', { partitions: 1 });
      const started = Date.now();
      // 20 KB at 1 KB/s: held about 19 s, unless the broker stops.
      const ack = c.produce('held', Array.from({ length: 5 }, () => ({ value: VALUE })));
      await new Promise((r) => setTimeout(r, 300));
      await own.broker.close();
      const acks = await ack;
      expect(acks).toHaveLength(5);
      expect(Date.now() - started).toBeLessThan(5000);
      await c.close().catch(() => undefined);
    } finally {
      await own.stop().catch(() => undefined);
    }
  });
});

describe('tenants', () => {
  it("refuses a topic beyond the tenant's topic count with QUOTA_EXCEEDED; others are not counted", async () => {
    const c = await as('fast');
    await c.createTopic('acme.a', { partitions: 1 });
    await c.createTopic('acme.b', { partitions: 1 });
    await c.createTopic('acme.a', { partitions: 1 }); // exists: not a new one
    const r = await refusal(c.createTopic('acme.c', { partitions: 1 }));
    expect(r).toEqual({ code: 'QUOTA_EXCEEDED', details: { tenant: 'acme', quota: 'topics', limit: 2 } });
    expect((await c.listTopics()).map((t) => t.topic)).not.toContain('acme.c');
    await c.createTopic('other.c', { partitions: 1 });
  });

  it("refuses produces beyond the tenant's storage with QUOTA_EXCEEDED", async () => {
    const c = await as('fast');
    await c.createTopic('tiny.t', { partitions: 1 });
    for (let i = 0; i < 4; i++) await c.produce('tiny.t', [{ value: VALUE }]);
    const r = await refusal(c.produce('tiny.t', [{ value: VALUE }, { value: VALUE }]));
    expect(r).toEqual({ code: 'QUOTA_EXCEEDED', details: { tenant: 'tiny', quota: 'storageBytes', limit: 20_000 } });
    // Other topics are not the tenant's.
    await c.produce('rates', [{ value: VALUE }, { value: VALUE }]);
  });

  it("counts what the tenant's topics hold on disk from before a restart", async () => {
    const data = tmpDir('weir-quota-tenant-restart-');
    const security = { tenants: [{ name: 'tiny', prefix: 'tiny.', maxStorageBytes: 20_000 }] };
    let own = await startTestBroker({ dataDir: data.dir, security });
    try {
      let c = await connect(own.url, { reconnect: false });
      await c.createTopic('tiny.kept', { partitions: 2 });
      for (let i = 0; i < 4; i++) await c.produce('tiny.kept', [{ value: VALUE }]);
      await c.close();
      await own.stop({ keepData: true });
      own = await startTestBroker({ dataDir: data.dir, security });
      c = await connect(own.url, { reconnect: false });
      const r = await refusal(c.produce('tiny.kept', [{ value: VALUE }, { value: VALUE }]));
      expect(r).toEqual({ code: 'QUOTA_EXCEEDED', details: { tenant: 'tiny', quota: 'storageBytes', limit: 20_000 } });
      await c.close();
    } finally {
      await own.stop().catch(() => undefined);
      data.cleanup();
    }
  });
});

describe('connections per principal', () => {
  it('refuses a principal its third connection with TOO_MANY_CONNECTIONS, and admits one again once one closes', async () => {
    const a = await as('crowd');
    await as('crowd');
    const r = await refusal(as('crowd'));
    expect(r.code).toBe('TOO_MANY_CONNECTIONS');
    expect(r.details).toEqual({ scope: 'principal', limit: 2 });
    await as('loner'); // another principal is not counted with it
    await a.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    await as('crowd');
  });
});
