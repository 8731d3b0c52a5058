/**
 * weir's native helper (native/weir_io.c via src/common/native-io.ts), for real: page-cache
 * residency read with util-linux's `fincore` (mincore(2)), scheduler slices read back from
 * /proc/thread-self/sched, a worker thread, a `weir start` child process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { applyThreadSlice, applyTimerSlack, nativeIo, nativeIoStatus } from '../../src/common/native-io.js';
import { BatchBuilder } from '../../src/protocol/batch-builder.js';
import { isValidStoredRecord, readU32, sealRecords as sealRecordsInJs, stampOffsetAndTime, verifyRecords as verifyRecordsInJs } from '../../src/protocol/record.js';
import { mulberry32 } from '../support/seeded-prng.js';
import { exited, startBrokerProcess } from '../support/child-broker.js';
import { residentBytes as resident } from '../support/page-cache.js';
import { tmpDir } from '../support/tmp-dir.js';

const MiB = 1024 * 1024;
const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});
function dir(): string {
  const t = tmpDir('weir-native-');
  cleanups.push(t.cleanup);
  return t.dir;
}

/** The EEVDF slice (ns) of a thread, from its /proc sched file. */
function sliceOf(schedFile: string): number {
  const m = /^se\.slice\s*:\s*(\d+)/m.exec(fs.readFileSync(schedFile, 'utf8'));
  if (!m) throw new Error(`no se.slice in ${schedFile}`);
  return Number(m[1]);
}

/**
 * Run `body` (CommonJS, with `m` = the built addon and `fs`) in a new worker thread; resolves with
 * the value it posts. The helper's thread calls act on the calling thread only: this is how a test
 * sees them on a thread of their own.
 */
async function inWorker<T>(body: string): Promise<T> {
  const worker = new Worker(
    `const { parentPort } = require('node:worker_threads');
     const fs = require('node:fs');
     const m = require(${JSON.stringify(path.resolve('build/Release/weir_io.node'))});
     ${body}`,
    { eval: true },
  );
  try {
    return await new Promise<T>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
  } finally {
    await worker.terminate();
  }
}

/**
 * Up to `most` random records (keys, headers, values up to 3,000 bytes) stamped with offsets from
 * `first`, unsealed, at a random alignment (`lead`) inside `space`, with bytes around them.
 */
function stampedBatch(rnd: ReturnType<typeof mulberry32>, most: number, first: number, round: number): { space: Uint8Array; records: Uint8Array; lead: number; n: number } {
  const builder = new BatchBuilder(64);
  const n = rnd.int(1, most);
  for (let i = 0; i < n; i++) {
    const value = new Uint8Array(rnd.int(0, rnd.int(0, 1) === 1 ? 3000 : 40));
    for (let j = 0; j < value.length; j++) value[j] = rnd.int(0, 255);
    builder.add(rnd.int(0, 1) === 1 ? `k${i}` : null, value, i % 5 === 0 ? { h: 'v'.repeat(i) } : null);
  }
  const records = builder.view();
  const lead = rnd.int(0, 15);
  const space = new Uint8Array(lead + records.length + 9).fill(0xaa);
  space.set(records, lead);
  for (let at = lead, k = 0; at < lead + records.length; k++) {
    stampOffsetAndTime(space, at, first + k, 1_700_000_000_000 + round);
    at += 4 + readU32(space, at);
  }
  return { space, records, lead, n };
}

describe('native I/O helper', () => {
  it('is built by npm install and loads', () => {
    expect(nativeIoStatus).toBe('loaded');
    expect(nativeIo).not.toBeNull();
  });

  it('dropCache syncs and drops a range of a file from the page cache; the bytes stay the same', async () => {
    const file = path.join(dir(), 'f.bin');
    const data = Buffer.alloc(4 * MiB);
    for (let i = 0; i < data.length; i += 4096) data.writeUInt32LE(i, i);
    fs.writeFileSync(file, data);
    expect(resident(file)).toBe(4 * MiB);
    const fd = fs.openSync(file, 'r');
    try {
      await nativeIo!.dropCache(fd, 0, 2 * MiB, true);
      expect(resident(file)).toBe(2 * MiB); // only the range asked for (folios are aligned)
      await nativeIo!.dropCache(fd, 0, 4 * MiB, false);
      expect(resident(file)).toBe(0);
      expect(Buffer.compare(fs.readFileSync(file), data)).toBe(0);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('dropCache rejects with the errno name and the failing call; bad arguments throw a TypeError', async () => {
    const fd = fs.openSync(path.join(dir(), 'closed.bin'), 'w');
    fs.closeSync(fd);
    await expect(nativeIo!.dropCache(fd, 0, 4096, true)).rejects.toMatchObject({ code: 'EBADF', syscall: 'fdatasync' });
    await expect(nativeIo!.dropCache(fd, 0, 4096, false)).rejects.toMatchObject({ code: 'EBADF', syscall: 'posix_fadvise' });
    expect(() => nativeIo!.dropCache(-1, 0, 0, true)).toThrow(TypeError);
    // @ts-expect-error: a missing argument
    expect(() => nativeIo!.dropCache(0, 0, 0)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });

  it('setThreadSlice sets the calling thread\'s slice only, on the main thread and in a worker thread', async () => {
    const before = sliceOf('/proc/thread-self/sched');
    const fromWorker = await inWorker<{ got: number; slice: number }>(
      `const got = m.setThreadSlice(250000);
       const sched = fs.readFileSync('/proc/thread-self/sched', 'utf8');
       parentPort.postMessage({ got, slice: Number(/^se\\.slice\\s*:\\s*(\\d+)/m.exec(sched)[1]) });`,
    );
    expect(fromWorker).toEqual({ got: 250_000, slice: 250_000 });
    expect(sliceOf('/proc/thread-self/sched')).toBe(before); // this thread untouched
    expect(() => nativeIo!.setThreadSlice(0)).toThrow(TypeError);
  });

  it('setTimerSlack sets the calling thread\'s timer slack only (read back from /proc/<tid>/timerslack_ns)', async () => {
    const slackOf = (tid: string): number => Number(fs.readFileSync(`/proc/${tid}/timerslack_ns`, 'utf8'));
    const mine = fs.readlinkSync('/proc/thread-self').split('/').pop()!;
    const before = slackOf(mine);
    const fromWorker = await inWorker<{ got: number; slack: number }>(
      `const tid = fs.readlinkSync('/proc/thread-self').split('/').pop();
       const got = m.setTimerSlack(1);
       parentPort.postMessage({ got, slack: Number(fs.readFileSync('/proc/' + tid + '/timerslack_ns', 'utf8')) });`,
    );
    expect(fromWorker).toEqual({ got: 1, slack: 1 });
    expect(slackOf(mine)).toBe(before); // this thread untouched
    expect(before).not.toBe(1);
    expect(() => nativeIo!.setTimerSlack(0)).toThrow(TypeError);
    // This thread runs other test files later: ask for the slack it already has.
    expect(applyTimerSlack(before)).toBeNull();
    expect(slackOf(mine)).toBe(before);
  });

  it('sealRecords writes the same CRC32C as the JavaScript sealRecords, for records of every size, at any alignment', () => {
    const rnd = mulberry32(5);
    for (let round = 0; round < 200; round++) {
      const { space, records, lead, n } = stampedBatch(rnd, 40, 1000, round);
      const inJs = space.slice();
      expect(sealRecordsInJs(inJs, lead, lead + records.length)).toBe(n);
      expect(nativeIo!.sealRecords(space, lead, lead + records.length)).toBe(n);
      expect(Buffer.from(space).equals(Buffer.from(inJs))).toBe(true);
      for (let at = lead; at < lead + records.length; at += 4 + readU32(space, at)) {
        expect(isValidStoredRecord(space, at, lead + records.length)).toBe(true);
      }
    }
  });

  it('sealRecords refuses a range that is not whole records, having written nothing', () => {
    const builder = new BatchBuilder(64);
    builder.add('a', new Uint8Array(50));
    builder.add('b', new Uint8Array(50));
    const records = builder.view().slice();
    const before = records.slice();
    for (const end of [records.length - 1, records.length - 60, 3]) {
      expect(() => nativeIo!.sealRecords(records, 0, end)).toThrow(RangeError);
      expect(() => sealRecordsInJs(records, 0, end)).toThrow(RangeError);
    }
    expect(() => nativeIo!.sealRecords(records, 0, records.length + 1)).toThrow(RangeError);
    expect(() => nativeIo!.sealRecords(new Uint16Array(8) as unknown as Uint8Array, 0, 2)).toThrow(TypeError);
    expect(Buffer.from(records).equals(Buffer.from(before))).toBe(true);
  });

  it('verifyRecords agrees with the JavaScript verifyRecords: every record good, then one byte changed anywhere, at any alignment', () => {
    const rnd = mulberry32(11);
    for (let round = 0; round < 200; round++) {
      const first = rnd.int(0, 1) === 1 ? 2 ** 40 + round : round;
      const { space, records, lead, n } = stampedBatch(rnd, 30, first, round);
      sealRecordsInJs(space, lead, lead + records.length);
      const end = lead + records.length;
      expect(nativeIo!.verifyRecords(space, lead, end, first)).toBe(n);
      expect(verifyRecordsInJs(space, lead, end, first)).toBe(n);
      expect(nativeIo!.verifyRecords(space, lead, end, first + 1)).toBe(0); // not the expected offset
      // One byte changed: the records before it check out, that one does not.
      const at = lead + rnd.int(0, records.length - 1);
      let victim = 0;
      for (let p = lead; p + 4 + readU32(space, p) <= at; p += 4 + readU32(space, p)) victim++;
      space[at] ^= 1 << rnd.int(0, 7);
      expect(nativeIo!.verifyRecords(space, lead, end, first)).toBe(victim);
      expect(verifyRecordsInJs(space, lead, end, first)).toBe(victim);
      // A range cut inside a record: only the whole ones before the cut count.
      expect(nativeIo!.verifyRecords(space, lead, end - 1, first)).toBe(Math.min(victim, n - 1));
    }
    expect(() => nativeIo!.verifyRecords(new Uint8Array(8), 0, 9, 0)).toThrow(RangeError);
    expect(() => nativeIo!.verifyRecords(new Uint8Array(8), 0, 8, -1)).toThrow(TypeError);
  });

  it('pwrite writes a range of a buffer at a position, past 4 GiB too, and fails like fs.writeSync', () => {
    const file = path.join(dir(), 'p.bin');
    const fd = fs.openSync(file, 'w+');
    try {
      const buf = new Uint8Array(4096).map((_, i) => (i * 31) & 0xff);
      const view = buf.subarray(1000); // an offset view: `from` counts from the view's start
      expect(nativeIo!.pwrite(fd, view, 24, 500, 10)).toBe(500);
      expect(nativeIo!.pwrite(fd, buf, 0, 0, 0)).toBe(0);
      const back = fs.readFileSync(file);
      expect(back.length).toBe(510);
      expect(back.subarray(0, 10).every((b) => b === 0)).toBe(true);
      expect(Buffer.from(back.subarray(10)).equals(Buffer.from(buf.subarray(1024, 1524)))).toBe(true);
      // A sparse write beyond 2^32 (positions are 64-bit).
      expect(nativeIo!.pwrite(fd, buf, 0, 8, 2 ** 32 + 3)).toBe(8);
      expect(fs.fstatSync(fd).size).toBe(2 ** 32 + 11);
      const tail = Buffer.alloc(8);
      fs.readSync(fd, tail, 0, 8, 2 ** 32 + 3);
      expect(tail.equals(Buffer.from(buf.subarray(0, 8)))).toBe(true);

      expect(() => nativeIo!.pwrite(fd, buf, 4000, 97, 0)).toThrow(RangeError);
      expect(() => nativeIo!.pwrite(fd, buf, -1, 1, 0)).toThrow(RangeError);
      expect(() => nativeIo!.pwrite(fd, new Uint16Array(4) as unknown as Uint8Array, 0, 1, 0)).toThrow(TypeError);
    } finally {
      fs.closeSync(fd);
    }
    // A read-only descriptor: EBADF from the system call, as Node reports it.
    const ro = fs.openSync(file, 'r');
    try {
      let nodeError: NodeJS.ErrnoException | null = null;
      try {
        fs.writeSync(ro, new Uint8Array(1), 0, 1, 0);
      } catch (err) {
        nodeError = err as NodeJS.ErrnoException;
      }
      let ours: NodeJS.ErrnoException | null = null;
      try {
        nativeIo!.pwrite(ro, new Uint8Array(1), 0, 1, 0);
      } catch (err) {
        ours = err as NodeJS.ErrnoException;
      }
      expect(nodeError?.code).toBe('EBADF');
      expect(ours?.code).toBe('EBADF');
      expect(ours?.syscall).toBe('write');
      expect(ours?.message).toMatch(/^EBADF: /);
    } finally {
      fs.closeSync(ro);
    }
  });
});

describe('native I/O helper: the data directory lock and the open-file limit', () => {
  /** A node child that loads the addon and runs `body` (CommonJS, `m` = the addon, `file`); stdout piped. */
  function child(body: string, file = ''): ChildProcess {
    const addon = JSON.stringify(path.resolve('build/Release/weir_io.node'));
    return spawn(process.execPath, ['-e', `const m = require(${addon}); const fs = require('node:fs'); const file = ${JSON.stringify(file)}; ${body}`], { stdio: ['ignore', 'pipe', 'inherit'] });
  }
  function firstLine(proc: ChildProcess): Promise<string> {
    return new Promise((resolve, reject) => {
      let out = '';
      proc.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
      });
      proc.once('exit', (code) => reject(new Error(`child exited (${code}) before a line: ${out}`)));
    });
  }

  it('lockFile takes an exclusive flock once per open file, in this process too, until the holder closes it', () => {
    const file = path.join(dir(), 'lock');
    const a = fs.openSync(file, 'w+');
    const b = fs.openSync(file, 'r+');
    try {
      expect(nativeIo!.lockFile(a)).toBe(true);
      expect(nativeIo!.lockFile(a)).toBe(true); // the holder again: still its lock
      expect(nativeIo!.lockFile(b)).toBe(false);
      fs.closeSync(a);
      expect(nativeIo!.lockFile(b)).toBe(true);
    } finally {
      fs.closeSync(b);
    }
  });

  it('lockFile: another process holds it until that process is SIGKILLed, then the kernel lets it go', async () => {
    const file = path.join(dir(), 'lock');
    const holder = child(`const fd = fs.openSync(file, 'w+'); console.log(m.lockFile(fd)); setInterval(() => {}, 1000);`, file);
    try {
      expect(await firstLine(holder)).toBe('true');
      const fd = fs.openSync(file, 'r+');
      try {
        expect(nativeIo!.lockFile(fd)).toBe(false);
        holder.kill('SIGKILL');
        await exited(holder);
        expect(nativeIo!.lockFile(fd)).toBe(true);
      } finally {
        fs.closeSync(fd);
      }
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('lockFile throws the errno name for a descriptor that is not open, a TypeError for no descriptor', () => {
    const fd = fs.openSync(path.join(dir(), 'closed'), 'w');
    fs.closeSync(fd);
    expect(() => nativeIo!.lockFile(fd)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    expect(() => nativeIo!.lockFile(-1)).toThrow(TypeError);
  });

  it('raiseFileLimit raises the soft open-file limit to the hard one (seen in /proc/self/limits)', async () => {
    // Node raises it at its own start, so lower it first (prlimit, util-linux) in a child of our own.
    const proc = child(
      `const soft = () => Number(/^Max open files\\s+(\\d+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'))[1]);
       require('node:child_process').execFileSync('prlimit', ['--pid', String(process.pid), '--nofile=512:']);
       const lowered = soft();
       const got = m.raiseFileLimit();
       console.log(JSON.stringify({ lowered, got, after: soft() }));`,
    );
    const { lowered, got, after } = JSON.parse(await firstLine(proc)) as { lowered: number; got: { before: number; soft: number; hard: number }; after: number };
    await exited(proc);
    expect(lowered).toBe(512);
    expect(got.before).toBe(512);
    expect(got.hard).toBeGreaterThan(512);
    expect(got.soft).toBe(got.hard);
    expect(after).toBe(got.hard);
    // Here (soft already at hard): nothing to raise, the same limits reported.
    const mine = nativeIo!.raiseFileLimit();
    expect(mine.before).toBe(mine.soft);
    expect(mine.soft).toBe(mine.hard);
  });
});

describe('weir start --sched-slice-us', () => {
  it('gives the gateway (main) thread that slice, and the kernel default with 0', async () => {
    for (const [flag, expected] of [['150', 150_000], ['0', null]] as const) {
      const { proc } = await startBrokerProcess(dir(), { args: ['--sched-slice-us', flag] });
      try {
        const slice = sliceOf(`/proc/${proc.pid}/task/${proc.pid}/sched`);
        if (expected !== null) expect(slice).toBe(expected);
        else expect(slice).not.toBe(150_000);
      } finally {
        proc.kill('SIGKILL');
        await exited(proc);
      }
    }
  });

  it('applyThreadSlice reports null when applied', () => {
    // This thread runs other test files later: ask for the slice it already has.
    const now = sliceOf('/proc/thread-self/sched');
    expect(applyThreadSlice(now / 1000)).toBeNull();
    expect(sliceOf('/proc/thread-self/sched')).toBe(now);
  });
});
