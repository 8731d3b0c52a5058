/** The producer id counter: never hands an id out twice across restarts, moves ids.json of an older data directory, refuses a damaged counter. */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { PRODUCER_IDS_FILE, ProducerIds } from '../../../src/features/producers/ids.js';
import { JournalSyncs } from '../../support/journal-syncs.js';
import { tmpDir } from '../../support/tmp-dir.js';

let tmp: ReturnType<typeof tmpDir>;
beforeEach(() => {
  tmp = tmpDir('weir-ids-');
});
afterEach(() => tmp.cleanup());

it('reserves ids in durable blocks: a restart continues after the reserved block, never below an id handed out', () => {
  const syncs = new JournalSyncs();
  try {
    const ids = new ProducerIds(tmp.dir);
    expect([ids.allocate(), ids.allocate()]).toEqual([1, 2]);
    expect(syncs.of(path.join(tmp.dir, PRODUCER_IDS_FILE)).length).toBe(1); // one fsynced reservation for the block
    const again = new ProducerIds(tmp.dir);
    expect(again.allocate()).toBe(1001);
  } finally {
    syncs.stop();
  }
});

it('opens the counter of a data directory from before (ids.json) once, and moves it', () => {
  fs.writeFileSync(path.join(tmp.dir, 'ids.json'), JSON.stringify({ next: 3001 }));
  const ids = new ProducerIds(tmp.dir);
  expect(ids.allocate()).toBe(3001);
  expect(fs.existsSync(path.join(tmp.dir, 'ids.json'))).toBe(false);
  expect(new ProducerIds(tmp.dir).allocate()).toBe(4001);
});

it('refuses to start on a damaged counter rather than risk an id twice', () => {
  new ProducerIds(tmp.dir).allocate();
  const file = path.join(tmp.dir, PRODUCER_IDS_FILE);
  const bytes = fs.readFileSync(file);
  bytes[bytes.length - 2]! ^= 1;
  fs.writeFileSync(file, bytes);
  expect(() => new ProducerIds(tmp.dir)).toThrow(expect.objectContaining({ code: 'STORAGE_ERROR' }));
  fs.rmSync(file);
  fs.writeFileSync(path.join(tmp.dir, 'ids.json'), '{"next":');
  expect(() => new ProducerIds(tmp.dir)).toThrow(expect.objectContaining({ code: 'STORAGE_ERROR' }));
  expect(fs.existsSync(path.join(tmp.dir, 'ids.json'))).toBe(true); // left for an operator
});
