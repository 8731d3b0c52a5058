/**
 * The queue journal keeps the broker's fsync policy (syncs observed on `weir:journal:sync`), an
 * ack answered under `always` is durable, and a write on a full disk is whole or absent.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { QueueJournal, type JournalEntry } from '../../../src/features/queue/journal.js';
import type { WeirError } from '../../../src/common/errors.js';
import { encodeFrames, jsonPayload, readJournalFile } from '../../../src/journal/index.js';
import { brokerFixture, startTestBroker } from '../../support/broker.js';
import { JournalSyncs } from '../../support/journal-syncs.js';
import { until } from '../../support/payload.js';
import { RawClient } from '../../support/raw-client.js';
import { canMountTmpfs, fillDisk, smallFs } from '../../support/small-fs.js';
import { tmpDir } from '../../support/tmp-dir.js';
import { produceNumbered, sleep } from './helpers.js';

let tmp: ReturnType<typeof tmpDir>;
beforeEach(() => {
  tmp = tmpDir('weir-queue-journal-sync-');
});
const fx = brokerFixture();
let syncs: JournalSyncs | null = null;
let journal: QueueJournal | null = null;
afterEach(() => {
  journal?.close();
  journal = null;
  syncs?.stop();
  syncs = null;
  tmp.cleanup();
});

const durable = (j: QueueJournal): Promise<WeirError | null> => new Promise((resolve) => j.whenDurable(resolve));

describe('QueueJournal', () => {
  it('always: a write is fdatasynced before whenDurable answers', async () => {
    journal = new QueueJournal(tmp.dir, { mode: 'always' }, () => []);
    const file = path.join(tmp.dir, 'queue.journal');
    syncs = new JournalSyncs();
    journal.line({ w: 1, g: 'g', t: 't', p: 0, s: 0 });
    journal.done(1, 0, 5);
    expect(await durable(journal)).toBeNull();
    syncs.mark('answered');
    expect(syncs.before(file, 'answered')).toBe(1);
    expect(syncs.of(file)[0]!.size).toBe(fs.statSync(file).size);
  });

  it('interval:50: what is written is fdatasynced soon after, not only at close', async () => {
    journal = new QueueJournal(tmp.dir, { mode: 'interval', intervalMs: 50 }, () => []);
    const file = path.join(tmp.dir, 'queue.journal');
    syncs = new JournalSyncs();
    journal.line({ w: 1, g: 'g', t: 't', p: 0, s: 0 });
    journal.done(1, 0, 5);
    await until(() => fs.statSync(file).size > 0, 5_000, 'the journal write');
    const size = fs.statSync(file).size;
    await until(() => syncs!.of(file).some((s) => s.size >= size), 50 + 3_000, 'a sync covering the write');
  });

  it('never: writes and compacts, never fdatasyncs (not even at close)', async () => {
    const snapshot = ['{"w":1,"g":"g","t":"t","p":0,"s":0}', '{"w":1,"snap":1,"s":0,"d":[0,5],"c":[],"r":[]}'];
    journal = new QueueJournal(tmp.dir, { mode: 'never' }, () => snapshot, 100);
    const file = path.join(tmp.dir, 'queue.journal');
    syncs = new JournalSyncs();
    journal.line({ w: 1, g: 'g', t: 't', p: 0, s: 0 });
    for (let i = 0; i < 20; i++) journal.done(1, 10 * i, 10 * i + 5); // > 100 bytes: compacted
    journal.flush();
    expect(readJournalFile(file).payloads.map((b) => Buffer.from(b).toString('utf8'))).toEqual(snapshot);
    journal.done(1, 300, 301);
    journal.flush();
    await sleep(200);
    journal.close();
    journal = null;
    expect(fs.statSync(file).size).toBeGreaterThan(0);
    expect(syncs.of(file)).toEqual([]);
  });

  it('cuts an unterminated last entry at open, so the next write is not glued to it', () => {
    const file = path.join(tmp.dir, 'queue.journal');
    const whole = encodeFrames([jsonPayload({ w: 1, g: 'g', t: 't', p: 0, s: 0 })]);
    const torn = encodeFrames([jsonPayload({ w: 1, d: [8, 9] })]).subarray(0, 25); // a crash mid-write
    fs.writeFileSync(file, Buffer.concat([whole, torn]));
    journal = new QueueJournal(tmp.dir, { mode: 'never' }, () => []);
    journal.done(1, 0, 5);
    journal.close();
    journal = null;
    expect(QueueJournal.read(tmp.dir)).toEqual([
      { w: 1, g: 'g', t: 't', p: 0, s: 0 },
      { w: 1, d: [0, 5] },
    ]);
  });

  it('opens the line format (queues/journal, as the journal was written before) once, and moves it to the journal', () => {
    const old = path.join(tmp.dir, 'journal');
    fs.writeFileSync(old, '{"w":1,"g":"g","t":"t","p":0,"s":0}\n{"w":1,"d":[0,3]}\n{"w":1,"d":[8,'); // torn last line
    expect(QueueJournal.read(tmp.dir)).toEqual([{ w: 1, g: 'g', t: 't', p: 0, s: 0 }, { w: 1, d: [0, 3] }]); // the service replays before it opens
    journal = new QueueJournal(tmp.dir, { mode: 'always' }, () => []);
    expect(fs.existsSync(old)).toBe(false);
    journal.done(1, 3, 5);
    journal.close();
    journal = null;
    expect(QueueJournal.read(tmp.dir)).toEqual([{ w: 1, g: 'g', t: 't', p: 0, s: 0 }, { w: 1, d: [0, 3] }, { w: 1, d: [3, 5] }]);
  });
});

describe.skipIf(!canMountTmpfs)('a full disk (tiny tmpfs; skipped when mount(8) is not permitted)', () => {
  it('a write that does not fit is cut back whole, kept, and written once space is freed', async () => {
    const disk = smallFs('1m');
    fx.defer(disk.cleanup);
    const dir = path.join(disk.dir, 'queues');
    journal = new QueueJournal(dir, { mode: 'always' }, () => []);
    const file = path.join(dir, 'queue.journal');
    const entry = (k: number): JournalEntry => ({ w: 1, k, pad: 'x'.repeat(300) }); // ~330 bytes a line
    let k = 0;
    for (; k < 3; k++) journal.line(entry(k));
    expect(await durable(journal)).toBeNull();
    const filler = fillDisk(disk.dir);
    let error: WeirError | null = null;
    for (; k < 1000 && error === null; k++) {
      journal.line(entry(k));
      error = await durable(journal);
    }
    expect(error).toMatchObject({ code: 'STORAGE_FULL', retryable: true });
    // Nothing partial is left: the file ends on a whole entry, every entry parses.
    const contents = readJournalFile(file);
    expect(contents).toMatchObject({ damaged: [], tornBytes: 0 });
    const stored = contents.payloads.map((b) => (JSON.parse(Buffer.from(b).toString('utf8')) as { k: number }).k);
    expect(stored).toEqual(Array.from({ length: k - 1 }, (_, i) => i));
    // Space freed: the kept entry is written by the retry, then later ones follow it.
    fs.unlinkSync(filler);
    await until(() => readJournalFile(file).payloads.length === k, 10_000, 'the kept entry written');
    journal.line(entry(k));
    expect(await durable(journal)).toBeNull();
    journal.close();
    journal = null;
    expect(QueueJournal.read(dir).map((e) => e.k)).toEqual(Array.from({ length: k + 1 }, (_, i) => i));
  });
});

describe('through a broker', () => {
  it('always: an ack with an id is answered after its journal line was fdatasynced', async () => {
    fx.tb = await startTestBroker({ fsync: 'always' });
    const file = path.join(fx.tb.dir, 'queues', 'queue.journal');
    const c = await fx.client(fx.tb.url);
    await c.createTopic('q', { partitions: 1 });
    await produceNumbered(c, 'q', 0, 10);
    const raw = await RawClient.connect(fx.tb.url);
    fx.defer(() => raw.ws.close());
    const r = await raw.request({ op: 'queue_subscribe', topic: 'q', group: 'g', prefetch: 10 });
    const sub = r.sub as number;
    const d = await raw.waitFor((f) => f.op === 'deliver' && f.sub === sub);
    const next = d.next as number;
    await sleep(50); // the delivery's own journal write
    syncs = new JournalSyncs();
    const before = fs.statSync(file).size;
    const answer = await raw.request({ op: 'ack', sub, partition: 0, ranges: [next - (d.count as number), next] });
    syncs.mark('answered');
    expect(answer).toMatchObject({ op: 'result', count: d.count });
    expect(syncs.before(file, 'answered')).toBeGreaterThanOrEqual(1);
    expect(syncs.lastBefore(file, 'answered')!.size).toBeGreaterThan(before); // covers the ack's line
  });
});
