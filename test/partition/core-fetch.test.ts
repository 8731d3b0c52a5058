/**
 * The partition core's fetches, driven directly (no thread, no gateway): real rings and a real log
 * in a temp dir (a MemoryLog where the test needs damage), entries written the way the gateway
 * writes them, time passed in through step(now).
 * A standing fetch is answered with every commit until its budget or deadline runs out; a plain
 * long poll is answered once.
 */
import { expect, it } from 'vitest';
import { BatchBuilder } from '../../src/protocol/batch-builder.js';
import { readU32 } from '../../src/protocol/record.js';
import { DATA_HEADER_BYTES, DataFlag, FetchFlag, FetchMode, In, Out, PRODUCE_HEADER_BYTES, errorCodeAt } from '../../src/partition/protocol.js';
import type { RingReader, RingWriter } from '../../src/ring/index.js';
import { memoryPartitionCore, partitionCore, type CoreHarness } from '../support/partition-core.js';

const setup = (): CoreHarness => partitionCore('weir-core-fetch-'); // removed when the test ends

let chunkIds = 1;
function produce(w: RingWriter, values: string[]): void {
  const b = new BatchBuilder();
  for (const v of values) b.add(null, v);
  const records = b.take();
  expect(w.begin(PRODUCE_HEADER_BYTES + records.length)).toBe(true);
  w.appendU32(In.PRODUCE);
  w.appendU32(chunkIds++);
  w.appendU32(values.length);
  w.append(records);
  w.commit();
  w.publish();
}

interface FetchSpec {
  id: number;
  offset: number;
  maxBytes?: number;
  maxRecords?: number;
  maxWaitMs?: number;
  standing?: boolean;
}
function fetch(w: RingWriter, f: FetchSpec): void {
  expect(w.begin(36)).toBe(true);
  w.appendU32(In.FETCH);
  w.appendU32(f.id);
  w.appendU32(FetchMode.OFFSET);
  w.appendU32(f.offset);
  w.appendU32(0);
  w.appendU32(f.maxBytes ?? 1 << 20);
  w.appendU32(f.maxRecords ?? 1000);
  w.appendU32(f.maxWaitMs ?? 500);
  w.appendU32(f.standing ? FetchFlag.STANDING : 0);
  w.commit();
  w.publish();
}

interface Data {
  id: number;
  count: number;
  next: number;
  more: boolean;
  bytes: number;
}
function answers(r: RingReader): Data[] {
  const out: Data[] = [];
  let e: Uint8Array | null;
  while ((e = r.next()) !== null) {
    if (readU32(e, 0) !== Out.DATA) continue;
    out.push({
      id: readU32(e, 4),
      count: readU32(e, 8),
      next: readU32(e, 12),
      more: (readU32(e, 28) & DataFlag.MORE) !== 0,
      bytes: e.length - DATA_HEADER_BYTES,
    });
  }
  r.release();
  return out;
}

it('a standing fetch is answered with every commit, at contiguous offsets, until its records budget is spent', () => {
  const { core, input, output } = setup();
  const t = 1_000_000;
  fetch(input, { id: 7, offset: 0, maxRecords: 5, standing: true });
  core.step(t);
  expect(answers(output)).toEqual([]); // nothing yet: parked at the log end

  produce(input, ['a', 'b']);
  core.step(t + 1);
  expect(answers(output)).toMatchObject([{ id: 7, count: 2, next: 2, more: true }]);

  produce(input, ['c']);
  core.step(t + 2);
  expect(answers(output)).toMatchObject([{ id: 7, count: 1, next: 3, more: true }]);

  // 2 records left in the budget: the answer takes them and closes the fetch.
  produce(input, ['d', 'e', 'f']);
  core.step(t + 3);
  expect(answers(output)).toMatchObject([{ id: 7, count: 2, next: 5, more: false }]);

  produce(input, ['g']);
  core.step(t + 4);
  expect(answers(output)).toEqual([]); // closed: no more answers without a new fetch
});

it('a standing fetch ends with an empty answer at its deadline', () => {
  const { core, input, output } = setup();
  const t = 2_000_000;
  fetch(input, { id: 3, offset: 0, maxWaitMs: 100, standing: true });
  produce(input, ['a']);
  core.step(t);
  expect(answers(output)).toMatchObject([{ id: 3, count: 1, next: 1, more: true }]);
  expect(core.nextDeadline(t + 1)).toBe(t + 100);

  core.step(t + 50);
  expect(answers(output)).toEqual([]);
  core.step(t + 100);
  expect(answers(output)).toMatchObject([{ id: 3, count: 0, next: 1, more: false }]);
});

it('a standing fetch spends its bytes budget across answers', () => {
  const { core, input, output } = setup();
  const t = 3_000_000;
  const value = 'x'.repeat(100);
  produce(input, [value]);
  core.step(t);
  const one = (() => {
    fetch(input, { id: 1, offset: 0, maxRecords: 1 });
    core.step(t);
    return answers(output)[0]!.bytes; // the stored size of one record
  })();
  fetch(input, { id: 2, offset: 1, maxBytes: 2 * one + 1, standing: true });
  core.step(t + 1);
  for (let i = 0; i < 3; i++) {
    produce(input, [value]);
    core.step(t + 2 + i);
  }
  const got = answers(output);
  expect(got.map((d) => [d.count, d.more])).toEqual([[1, true], [1, true], [1, false]]);
  expect(got.map((d) => d.next)).toEqual([2, 3, 4]);
});

it('a plain long poll is answered once; a standing fetch gets a final empty answer at close', () => {
  const { core, input, output } = setup();
  const t = 4_000_000;
  fetch(input, { id: 1, offset: 0 });
  fetch(input, { id: 2, offset: 0, standing: true });
  core.step(t);
  produce(input, ['a']);
  core.step(t + 1);
  expect(answers(output)).toMatchObject([
    { id: 1, count: 1, more: false },
    { id: 2, count: 1, more: true },
  ]);
  produce(input, ['b']);
  core.step(t + 2);
  expect(answers(output)).toMatchObject([{ id: 2, count: 1, next: 2, more: true }]);
  core.close();
  expect(answers(output)).toMatchObject([{ id: 2, count: 0, next: 2, more: false }]);
});

it('a standing fetch behind the log end is answered at once and then waits at the end', () => {
  const { core, input, output } = setup();
  const t = 5_000_000;
  produce(input, ['a', 'b', 'c']);
  core.step(t);
  fetch(input, { id: 9, offset: 1, standing: true });
  core.step(t + 1);
  expect(answers(output)).toMatchObject([{ id: 9, count: 2, next: 3, more: true }]);
  core.step(t + 2);
  expect(answers(output)).toEqual([]);
  produce(input, ['d']);
  core.step(t + 3);
  expect(answers(output)).toMatchObject([{ id: 9, count: 1, next: 4, more: true }]);
});

function cancel(w: RingWriter, id: number): void {
  expect(w.begin(8)).toBe(true);
  w.appendU32(In.CANCEL);
  w.appendU32(id);
  w.commit();
  w.publish();
}

it('CANCEL ends a parked standing fetch with a final empty answer; later commits are not read for it', () => {
  const { core, input, output } = setup();
  const t = 6_000_000;
  fetch(input, { id: 4, offset: 0, standing: true });
  fetch(input, { id: 5, offset: 0, standing: true });
  produce(input, ['a']);
  core.step(t);
  expect(answers(output)).toMatchObject([
    { id: 4, count: 1, more: true },
    { id: 5, count: 1, more: true },
  ]);
  cancel(input, 4);
  cancel(input, 99); // no such fetch: ignored
  core.step(t + 1);
  expect(answers(output)).toMatchObject([{ id: 4, count: 0, next: 1, more: false }]);
  produce(input, ['b']);
  core.step(t + 2);
  expect(answers(output)).toMatchObject([{ id: 5, count: 1, next: 2, more: true }]); // only the other one
  expect(core.nextDeadline(t + 2)).toBe(t + 500); // fetch 5's deadline; fetch 4 is gone
});

it('counts an interval fsync that falls due among its deadlines, so a host that sleeps wakes for it', () => {
  const { core, input, log } = partitionCore('weir-core-sync-', { mode: 'interval', intervalMs: 500 });
  const t = Date.now();
  expect(core.nextDeadline(t)).toBe(t + 1000); // nothing written: only the idle step
  produce(input, ['a']);
  core.step(t); // appended and flushed; its sync is due 500 ms after the open
  expect(log.syncedOffset).toBe(0);
  const due = core.nextDeadline(t);
  expect(due).toBeLessThanOrEqual(t + 500);
  core.step(due);
  expect(log.syncedOffset).toBe(1);
  expect(core.nextDeadline(due)).toBe(due + 1000);
});

it('a fetch at offsets lost to damage is answered DATA_LOSS naming them; fetches before and after them are served', () => {
  const { core, input, output, log } = memoryPartitionCore();
  const t = 4_000_000;
  produce(input, ['a', 'b', 'c', 'd', 'e']);
  core.step(t);
  output.release(); // the ACK
  log.simulateDamage(2, 4);
  fetch(input, { id: 1, offset: 0 });
  fetch(input, { id: 2, offset: 2 });
  fetch(input, { id: 3, offset: 3 });
  fetch(input, { id: 4, offset: 4 });
  core.step(t + 1);
  const got: unknown[] = [];
  let e: Uint8Array | null;
  while ((e = output.next()) !== null) {
    const type = readU32(e, 0);
    if (type === Out.DATA) got.push({ id: readU32(e, 4), count: readU32(e, 8), next: readU32(e, 12) });
    else if (type === Out.FAIL) got.push({ id: readU32(e, 4), code: errorCodeAt(readU32(e, 12)), from: readU32(e, 16), to: readU32(e, 24) });
  }
  output.release();
  expect(got).toEqual([
    { id: 1, count: 2, next: 2 }, // up to the damage
    { id: 2, code: 'DATA_LOSS', from: 2, to: 4 },
    { id: 3, code: 'DATA_LOSS', from: 3, to: 4 }, // the reader continues at `to`
    { id: 4, count: 1, next: 5 },
  ]);
});
