import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { QueueJournal, parseJournal } from '../../../src/features/queue/journal.js';
import { encodeFrames, jsonPayload } from '../../../src/journal/index.js';
import { tmpDir } from '../../support/tmp-dir.js';

const tmp = tmpDir('weir-queue-journal-');
afterEach(() => tmp.cleanup());
/** Longer than the journal's flush interval (a few ms). */
const flushed = (): Promise<void> => new Promise((r) => setTimeout(r, 30));

it('merges one flush\'s events per window into one line, and skips a torn tail at load', async () => {
  const j = new QueueJournal(tmp.dir, { mode: 'never' }, () => []);
  j.line({ w: 1, g: 'g', t: 't', p: 0, s: 0 });
  j.delivered(1, 0, 10);
  j.delivered(1, 10, 20);
  j.done(1, 0, 5);
  j.done(1, 7, 8);
  j.retry(1, 5, 1234);
  j.undelivered(1, 9, 10);
  await flushed();
  j.done(1, 5, 7);
  j.close();
  appendFileSync(join(tmp.dir, 'queue.journal'), encodeFrames([jsonPayload({ w: 1, d: [8, 9] })]).subarray(0, 20)); // a crash mid-write
  expect(QueueJournal.read(tmp.dir)).toEqual([
    { w: 1, g: 'g', t: 't', p: 0, s: 0 },
    { w: 1, v: [0, 20], u: [9, 10], r: [5, 1234], d: [0, 5, 7, 8] },
    { w: 1, d: [5, 7] },
  ]);
  expect(parseJournal('not json\n{"w":2}\n[1]\n')).toEqual([{ w: 2 }]);
});

it('rewrites itself as the snapshot once it passes the compaction size, then keeps appending', async () => {
  const snapshot = [JSON.stringify({ w: 1, g: 'g', t: 't', p: 0, s: 500 }), JSON.stringify({ w: 1, snap: 1, s: 500, d: [], c: [501, 2], r: [] })];
  const j = new QueueJournal(tmp.dir, { mode: 'always' }, () => snapshot, 300);
  j.line({ w: 1, g: 'g', t: 't', p: 0, s: 0 });
  for (let i = 0; i < 50; i++) j.done(1, i * 10, i * 10 + 5); // not adjacent: 50 ranges, > 300 bytes
  await flushed();
  j.done(1, 600, 601);
  j.close();
  expect(QueueJournal.read(tmp.dir)).toEqual([...snapshot.map((l) => JSON.parse(l) as unknown), { w: 1, d: [600, 601] }]);
});
