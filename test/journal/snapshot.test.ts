/** Snapshot files: one frame replaced atomically per the fsync policy; damage detected, not parsed; old formats migrated once. */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { readSnapshotSync, writeSnapshotSync } from '../../src/journal/index.js';
import { JournalSyncs } from '../support/journal-syncs.js';
import { tmpDir } from '../support/tmp-dir.js';

let tmp: ReturnType<typeof tmpDir>;
let syncs: JournalSyncs;
beforeEach(() => {
  tmp = tmpDir('weir-snapshot-');
  syncs = new JournalSyncs();
});
afterEach(() => {
  syncs.stop();
  tmp.cleanup();
});
const p = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

it('reads back the last snapshot written; synced unless the policy is never', () => {
  const file = path.join(tmp.dir, 'state.snapshot');
  expect(readSnapshotSync(file)).toEqual({ kind: 'missing' });
  writeSnapshotSync(file, p('{"v":1}'), { mode: 'never' });
  expect(syncs.of(file)).toEqual([]);
  writeSnapshotSync(file, p('{"v":2}'), { mode: 'interval', intervalMs: 1000 });
  writeSnapshotSync(file, p('{"v":3}'), { mode: 'always' });
  expect(syncs.of(file).length).toBe(2);
  const r = readSnapshotSync(file);
  expect(r.kind === 'ok' && text(r.payload)).toBe('{"v":3}');
  expect(fs.existsSync(`${file}.tmp`)).toBe(false);
});

it('a torn, damaged or padded snapshot reads as damaged', () => {
  const file = path.join(tmp.dir, 'state.snapshot');
  writeSnapshotSync(file, p('{"offset":10}'), { mode: 'never' });
  const good = fs.readFileSync(file);
  fs.writeFileSync(file, good.subarray(0, good.length - 1));
  expect(readSnapshotSync(file).kind).toBe('damaged');
  const flipped = Buffer.from(good);
  flipped[flipped.length - 3]! ^= 1;
  fs.writeFileSync(file, flipped);
  expect(readSnapshotSync(file).kind).toBe('damaged');
  fs.writeFileSync(file, Buffer.concat([good, Buffer.from([0])]));
  expect(readSnapshotSync(file).kind).toBe('damaged');
});

it('migrates the old format once: read, written framed (per the policy), removed', () => {
  const file = path.join(tmp.dir, 'state.snapshot');
  const old = path.join(tmp.dir, 'state.json');
  fs.writeFileSync(old, '{"next":1000}');
  const legacy = { file: old, read: (f: string) => p(fs.readFileSync(f, 'utf8')) };
  const r = readSnapshotSync(file, { legacy, fsync: { mode: 'always' } });
  expect(r.kind === 'ok' && text(r.payload)).toBe('{"next":1000}');
  expect(fs.existsSync(old)).toBe(false);
  expect(syncs.of(file).length).toBe(1);
  const again = readSnapshotSync(file, { legacy });
  expect(again.kind === 'ok' && text(again.payload)).toBe('{"next":1000}');
});
