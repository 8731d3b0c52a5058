/**
 * The group offset store keeps the broker's fsync policy, survives a full disk whole, and replays
 * around damaged lines: through a real broker (SDK and bare protocol commits), syncs observed on
 * `weir:journal:sync` in this process, a real full disk on a tiny tmpfs.
 */
import diagnostics_channel from 'node:diagnostics_channel';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { OffsetStore, type JournalSkipped } from '../../../src/core/groups/offset-store.js';
import { encodeFrames, jsonPayload, readJournalFile } from '../../../src/journal/index.js';
import type { WeirClient } from '../../../src/client/index.js';
import { brokerFixture, startTestBroker } from '../../support/broker.js';
import { JournalSyncs } from '../../support/journal-syncs.js';
import { until } from '../../support/payload.js';
import { RawClient, type Frame } from '../../support/raw-client.js';
import { canMountTmpfs, fillDisk, smallFs } from '../../support/small-fs.js';
import { tmpDir } from '../../support/tmp-dir.js';

const fx = brokerFixture();
const raws: RawClient[] = [];
let syncs: JournalSyncs | null = null;
afterEach(() => {
  for (const r of raws.splice(0)) r.ws.close();
  syncs?.stop();
  syncs = null;
});

const offsetsFile = (dataDir: string): string => path.join(dataDir, 'groups', 'offsets.journal');

async function produce(c: WeirClient, topic: string, n: number): Promise<void> {
  for (let i = 0; i < n; i += 100) await c.produce(topic, Array.from({ length: Math.min(100, n - i) }, (_, j) => ({ key: `k${i + j}`, value: String(i + j) })));
}

/** Consume all `n` messages of `topic` in `group` with the SDK, until its commits are acknowledged. */
async function consumeAndCommit(c: WeirClient, topic: string, n: number, group = 'g'): Promise<void> {
  let seen = 0;
  const sub = await c.subscribe(topic, { group, from: 'earliest', commitIntervalMs: 20 }, () => {
    seen++;
  });
  await until(() => seen === n && sub.stats().reduce((s, p) => s + (p.committed ?? 0), 0) === n, 20_000, 'every message handled and its commit acknowledged');
}

/** A bare protocol group member of `topic`: its subscription id once assigned. */
async function rawMember(url: string, topic: string, group: string): Promise<{ raw: RawClient; sub: number; assign: Frame }> {
  const raw = await RawClient.connect(url);
  raws.push(raw);
  const r = await raw.request({ op: 'subscribe', topic, group, from: 'earliest', credits: 1 });
  expect(r.op).toBe('result');
  const sub = r.sub as number;
  const assign = await raw.waitFor((f) => f.op === 'assign' && f.sub === sub);
  return { raw, sub, assign };
}

describe('fsync policy', () => {
  it('interval:50: committed offsets are fdatasynced while the broker runs, without waiting for close', async () => {
    fx.tb = await startTestBroker({ fsync: 'interval:50' });
    const file = offsetsFile(fx.tb.dir);
    syncs = new JournalSyncs();
    const c = await fx.client(fx.tb.url);
    await c.createTopic('o', { partitions: 2 });
    await produce(c, 'o', 300);
    await consumeAndCommit(c, 'o', 300);
    const size = fs.statSync(file).size;
    expect(size).toBeGreaterThan(0);
    // Within the interval plus a generous margin for a loaded machine: a sync that covers every
    // committed byte (the old store never synced under interval, only at close).
    await until(() => syncs!.of(file).some((s) => s.size >= size), 50 + 3_000, 'a sync of the offsets journal covering every commit');
  });

  it('always: each commit is fdatasynced before it is answered', async () => {
    fx.tb = await startTestBroker({ fsync: 'always' });
    const file = offsetsFile(fx.tb.dir);
    const c = await fx.client(fx.tb.url);
    await c.createTopic('o', { partitions: 1 });
    await produce(c, 'o', 10);
    const { raw, sub } = await rawMember(fx.tb.url, 'o', 'g');
    syncs = new JournalSyncs();
    for (let k = 1; k <= 5; k++) {
      const r = await raw.request({ op: 'commit', sub, offsets: [[0, k]] });
      syncs.mark(`answer ${k}`);
      expect(r.op).toBe('result');
      // k commits answered: k syncs before the k-th answer, the last one covering its line.
      expect(syncs.before(file, `answer ${k}`)).toBe(k);
      const last = syncs.of(file).at(-1)!;
      expect(last.size).toBe(fs.statSync(file).size);
    }
    // And the SDK's commits (another group): synced when they are acknowledged.
    await consumeAndCommit(c, 'o', 10, 'g2');
    expect(syncs.of(file).at(-1)!.size).toBe(fs.statSync(file).size);
  });

  it('never: commits are written but never fdatasynced', async () => {
    fx.tb = await startTestBroker({ fsync: 'never' });
    const file = offsetsFile(fx.tb.dir);
    syncs = new JournalSyncs();
    const c = await fx.client(fx.tb.url);
    await c.createTopic('o', { partitions: 2 });
    await produce(c, 'o', 200);
    await consumeAndCommit(c, 'o', 200);
    await new Promise((r) => setTimeout(r, 200)); // several intervals of any timer that might sync
    expect(fs.statSync(file).size).toBeGreaterThan(0);
    expect(syncs.of(file)).toEqual([]);
  });
});

describe('replay', () => {
  const tmp = tmpDir('weir-offsets-');
  afterEach(() => tmp.cleanup());

  it('applies every entry around a torn one in the middle and reports it (count, byte position)', () => {
    const dir = path.join(tmp.dir, 'groups');
    fs.mkdirSync(dir, { recursive: true });
    const frames = (entries: unknown[]): Uint8Array => encodeFrames(entries.map(jsonPayload));
    const before = frames([['g', 't', 0, 10], ['g', 't', 1, 5]]);
    const torn = frames([['g', 't', 0, 2]]).subarray(0, 20); // torn: part of an entry, then the next entries whole
    const after = frames([['g', 't', 0, 27], ['h', 't', 0, 3]]);
    fs.writeFileSync(path.join(dir, 'offsets.journal'), Buffer.concat([before, torn, after]));
    const tornAt = before.length;
    const published: JournalSkipped[] = [];
    const listener = (m: unknown): void => void published.push(m as JournalSkipped);
    diagnostics_channel.subscribe('weir:journal:skipped', listener);
    let store: OffsetStore;
    try {
      store = new OffsetStore(dir, { mode: 'never' });
    } finally {
      diagnostics_channel.unsubscribe('weir:journal:skipped', listener);
    }
    expect(store.get('g', 't', 0)).toBe(27);
    expect(store.get('g', 't', 1)).toBe(5);
    expect(store.get('h', 't', 0)).toBe(3);
    expect(store.recovery).toEqual({ skippedLines: 1, positions: [tornAt], truncatedBytes: 0 });
    expect(published).toEqual([{ file: path.join(dir, 'offsets.journal'), skippedLines: 1, positions: [tornAt], truncatedBytes: 0 }]);
    store.close();
  });

  it('cuts an unterminated last entry at open, so the next commit is not glued to it', () => {
    const dir = path.join(tmp.dir, 'groups');
    fs.mkdirSync(dir, { recursive: true });
    const whole = encodeFrames([jsonPayload(['g', 't', 0, 10])]);
    const cut = encodeFrames([jsonPayload(['g', 't', 0, 1])]).subarray(0, 12); // a crash mid-write
    fs.writeFileSync(path.join(dir, 'offsets.journal'), Buffer.concat([whole, cut]));
    const store = new OffsetStore(dir, { mode: 'never' });
    expect(store.recovery).toEqual({ skippedLines: 0, positions: [whole.length], truncatedBytes: 12 });
    store.commit('g', 't', [[0, 20]]);
    store.close();
    const again = new OffsetStore(dir, { mode: 'never' });
    expect(again.get('g', 't', 0)).toBe(20);
    expect(again.recovery).toEqual({ skippedLines: 0, positions: [], truncatedBytes: 0 });
    again.close();
  });

  it('opens a data directory of the line format (offsets.jsonl, as the store wrote it before the journal) once, and moves it to the journal', () => {
    const dir = path.join(tmp.dir, 'groups');
    fs.mkdirSync(dir, { recursive: true });
    // What the line store wrote: one JSON line per commit, appended; here with a damaged line and a torn tail.
    const lines = [['g', 't', 0, 10], ['g', 't', 1, 5], ['g', 't', 0, 27], ['h', 'u', 3, 1]].map((e) => JSON.stringify(e));
    fs.writeFileSync(path.join(dir, 'offsets.jsonl'), lines.slice(0, 2).join('\n') + '\n["g","t",0,2\n' + lines.slice(2).join('\n') + '\n["g","t",0,1');
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const store = new OffsetStore(dir, { mode: 'always' });
    expect(errors).toHaveBeenCalledTimes(1); // the damaged line is named
    errors.mockRestore();
    expect([store.get('g', 't', 0), store.get('g', 't', 1), store.get('h', 'u', 3)]).toEqual([27, 5, 1]);
    expect(fs.existsSync(path.join(dir, 'offsets.jsonl'))).toBe(false);
    store.commit('g', 't', [[1, 6]]);
    store.close();
    const again = new OffsetStore(dir, { mode: 'never' });
    expect([again.get('g', 't', 0), again.get('g', 't', 1), again.get('h', 'u', 3)]).toEqual([27, 6, 1]);
    expect(again.recovery).toEqual({ skippedLines: 0, positions: [], truncatedBytes: 0 });
    again.close();
  });
});

describe.skipIf(!canMountTmpfs)('a full disk (tiny tmpfs; skipped when mount(8) is not permitted)', () => {
  it('a commit that cannot be written whole answers STORAGE_FULL, leaves no partial line, and the group resumes at its last acknowledged offset', async () => {
    const disk = smallFs('8m');
    fx.defer(disk.cleanup);
    const dataDir = path.join(disk.dir, 'data');
    fx.tb = await startTestBroker({ dataDir, fsync: 'always', segmentBytes: 256 << 10 });
    const file = offsetsFile(dataDir);
    const c = await fx.client(fx.tb.url);
    await c.createTopic('o', { partitions: 1 });
    await produce(c, 'o', 1000);
    // A long group name: each commit line is ~230 bytes, so one soon crosses into a page the full
    // disk cannot give (a short write, then ENOSPC).
    const group = 'g'.repeat(200);
    const { raw, sub } = await rawMember(fx.tb.url, 'o', group);
    let acked = 0;
    for (; acked < 5; ) {
      const r = await raw.request({ op: 'commit', sub, offsets: [[0, acked + 1]] });
      expect(r.op).toBe('result');
      acked++;
    }
    const filler = fillDisk(disk.dir);
    let failure: Frame | null = null;
    for (let k = acked + 1; k <= 1000 && failure === null; k++) {
      const r = await raw.request({ op: 'commit', sub, offsets: [[0, k]] });
      if (r.op === 'result') acked = k;
      else failure = r;
    }
    expect(failure).toMatchObject({ op: 'error', code: 'STORAGE_FULL', retryable: true });
    // Still full: the next commits fail the same way (not INTERNAL).
    for (let k = 0; k < 3; k++) {
      expect(await raw.request({ op: 'commit', sub, offsets: [[0, 900 + k]] })).toMatchObject({ op: 'error', code: 'STORAGE_FULL' });
    }
    const wholeLines = (): Array<[string, string, number, number]> => {
      const stored = readJournalFile(file);
      expect(stored).toMatchObject({ damaged: [], tornBytes: 0 });
      return stored.payloads.map((b) => JSON.parse(Buffer.from(b).toString('utf8')) as [string, string, number, number]);
    };
    expect(wholeLines().at(-1)).toEqual([group, 'o', 0, acked]);
    expect(fx.tb.broker.offsets.get(group, 'o', 0)).toBe(acked);

    // Space freed: the next commit is stored, after the last acknowledged one.
    fs.unlinkSync(filler);
    expect(await raw.request({ op: 'commit', sub, offsets: [[0, acked + 7]] })).toMatchObject({ op: 'result' });
    acked += 7;
    expect(wholeLines().at(-1)).toEqual([group, 'o', 0, acked]);

    // A restart resumes the group there.
    raw.ws.close();
    await fx.closeClients();
    await fx.tb.stop({ keepData: true });
    fx.tb = await startTestBroker({ dataDir, fsync: 'always', segmentBytes: 256 << 10 });
    expect(fx.tb.broker.offsets.recovery).toEqual({ skippedLines: 0, positions: [], truncatedBytes: 0 });
    const { assign } = await rawMember(fx.tb.url, 'o', group);
    expect(assign.partitions).toEqual([[0, acked]]);
  });
});
