/**
 * Page-cache drop-behind (PartitionLog's `pageCacheBytes`, native/weir_io.c through
 * src/common/native-io.ts): real files, residency read with util-linux's `fincore` (mincore(2)).
 * The page cache holds files in folios of up to 2 MiB here (ext4 large folios), and DONTNEED drops
 * only folios wholly inside its range: bounds below allow one folio of slack.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PartitionLog, type LogOptions } from '../../src/log/index.js';
import { brokerFixture, startTestBroker } from '../support/broker.js';
import { residentBytes as resident } from '../support/page-cache.js';
import { until } from '../support/payload.js';
import { cleanupTmpDirs, expectBytes, logFiles, makeBatch, producerBodies, readAll, tmpDir } from './helpers.js';

afterEach(cleanupTmpDirs);
const opened: PartitionLog[] = [];
afterEach(() => {
  for (const l of opened.splice(0)) l.destroy();
});

const MiB = 1024 * 1024;
const FOLIO_SLACK = 2 * MiB;

function open(opts: Partial<LogOptions> & { dir: string }): PartitionLog {
  const log = PartitionLog.open({ fsync: { mode: 'never' }, ...opts });
  opened.push(log);
  return log;
}

/** Append and flush `bytes` worth of 1 KiB messages, 64 per batch; returns every body in order. */
function fill(log: PartitionLog, bytes: number): Uint8Array[] {
  const bodies: Uint8Array[] = [];
  const batches = Math.ceil(bytes / (64 * 1024));
  for (let i = 0; i < batches; i++) {
    const b = makeBatch(log.nextOffset, 64, 1024);
    log.append(b.bytes, 0, b.bytes.length, b.count);
    bodies.push(...producerBodies(b.bytes));
    log.flush();
  }
  return bodies;
}

function expectAll(log: PartitionLog, bodies: Uint8Array[]): void {
  const recs = readAll(log, 0);
  expect(recs.length).toBe(bodies.length);
  recs.forEach((r, i) => {
    expect(r.offset).toBe(i);
    expect(r.valid).toBe(true);
    expectBytes(r.body, bodies[i]!);
  });
}

describe('PartitionLog drop-behind', () => {
  it('keeps about pageCacheBytes of the active segment cached; every record still reads back (from disk)', async () => {
    const dir = tmpDir();
    const log = open({ dir, pageCacheBytes: MiB });
    const bodies = fill(log, 12 * MiB);
    const file = path.join(dir, logFiles(dir)[0]!);
    expect(fs.statSync(file).size).toBeGreaterThan(12 * MiB);
    // The window, less than one step (1 MiB) not yet dropped, a folio across the cut.
    await until(() => resident(file) < 2 * MiB + FOLIO_SLACK, 10_000, 'the active segment to shrink in the page cache');
    expectAll(log, bodies);
  });

  it('drops under fsync always too (no second sync: every write was synced)', async () => {
    const dir = tmpDir();
    const log = open({ dir, pageCacheBytes: MiB, fsync: { mode: 'always' } });
    const bodies = fill(log, 12 * MiB);
    const file = path.join(dir, logFiles(dir)[0]!);
    await until(() => resident(file) < 2 * MiB + FOLIO_SLACK, 10_000, 'the active segment to shrink in the page cache');
    expectAll(log, bodies);
  });

  it('a sealed segment keeps its newest pageCacheBytes cached after its background sync', async () => {
    const dir = tmpDir();
    const log = open({ dir, pageCacheBytes: MiB, segmentBytes: 8 * MiB });
    const bodies = fill(log, 20 * MiB);
    await log.whenSealedSynced();
    const files = logFiles(dir);
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const f of files.slice(0, -1)) expect(resident(path.join(dir, f))).toBeLessThanOrEqual(MiB + FOLIO_SLACK);
    expectAll(log, bodies);
  });

  it('pageCacheBytes 0 leaves the page cache alone', async () => {
    const dir = tmpDir();
    const log = open({ dir, pageCacheBytes: 0 });
    fill(log, 4 * MiB);
    await new Promise((r) => setTimeout(r, 100));
    const file = path.join(dir, logFiles(dir)[0]!);
    expect(resident(file)).toBeGreaterThanOrEqual(fs.statSync(file).size);
  });
});

describe('drop-behind through the broker (partition actors on worker threads)', () => {
  const fx = brokerFixture();

  it('--page-cache-bytes reaches each partition log; everything produced is consumed back in order', async () => {
    fx.tb = await startTestBroker({ pageCacheBytes: MiB, segmentBytes: 64 * MiB, actorHost: 'threads' });
    const client = await fx.client(fx.tb.url);
    await client.createTopic('dropped', { partitions: 1 });
    const value = (i: number): Uint8Array => new Uint8Array(16 * 1024).fill(i & 0xff);
    const total = 640; // 10 MiB of values
    for (let i = 0; i < total; i += 32) {
      await client.produce('dropped', Array.from({ length: 32 }, (_, k) => ({ value: value(i + k) })));
    }
    const dir = path.join(fx.tb.dir, 'topics', 'dropped', '0');
    const file = path.join(dir, logFiles(dir)[0]!);
    expect(fs.statSync(file).size).toBeGreaterThan(10 * MiB);
    await until(() => resident(file) < 2 * MiB + FOLIO_SLACK, 10_000, 'the partition log to shrink in the page cache');
    const seen: number[] = [];
    let done!: () => void;
    const all = new Promise<void>((r) => (done = r));
    const sub = await client.subscribe('dropped', { group: 'g', from: 'earliest' }, (m) => {
      expect(m.offset).toBe(seen.length);
      expectBytes(m.value, value(seen.length));
      seen.push(m.offset);
      if (seen.length === total) done();
    });
    await all;
    await sub.close();
    expect(seen.length).toBe(total);
  });
});
