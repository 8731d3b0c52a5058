/**
 * The data directory's checks and lock (src/common/data-dir.ts), in this process, on real files:
 * with flock (the native helper) and with the pid file used without it.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkDataDirPath, LOCK_FILE, lockDataDir, type DataDirLock } from '../../src/common/data-dir.js';
import { nativeIo } from '../../src/common/native-io.js';
import { exited } from '../support/child-broker.js';
import { tmpDir } from '../support/tmp-dir.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});
function dir(): string {
  const t = tmpDir('weir-data-dir-');
  cleanups.push(t.cleanup);
  return t.dir;
}
function held(lock: DataDirLock): DataDirLock {
  cleanups.push(() => lock.release());
  return lock;
}

/** The pid of a process that has exited (and, so soon after, not been reused). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  return r.pid!;
}

describe('checkDataDirPath', () => {
  it('accepts a directory, or a path to create under one', () => {
    const d = dir();
    expect(() => checkDataDirPath(d)).not.toThrow();
    expect(() => checkDataDirPath(path.join(d, 'a', 'b'))).not.toThrow();
  });

  it('refuses /proc and /sys, also through a symbolic link, naming the path and writing nothing', () => {
    const d = dir();
    fs.symlinkSync('/proc/self', path.join(d, 'link'));
    for (const [p, under] of [['/proc/weir-x', '/proc'], ['/proc', '/proc'], ['/sys/kernel/weir', '/sys'], [path.join(d, 'link', 'data'), '/proc']] as const) {
      expect(() => checkDataDirPath(p)).toThrow(expect.objectContaining({ code: 'BAD_DATA_DIR', message: expect.stringContaining(p) as unknown }));
      expect(() => checkDataDirPath(p)).toThrow(`under ${under}`);
    }
    expect(fs.readdirSync(d)).toEqual(['link']);
  });

  it('refuses a path that is a file, or lies below one', () => {
    const f = path.join(dir(), 'file');
    fs.writeFileSync(f, 'x');
    expect(() => checkDataDirPath(f)).toThrow(/BAD_DATA_DIR: .* it exists and is not a directory/);
    expect(() => checkDataDirPath(path.join(f, 'data'))).toThrow(`${f} is not a directory`);
  });
});

describe.each([
  ['flock', nativeIo],
  ['pid-file', null],
] as const)('lockDataDir with %s', (kind, io) => {
  it('creates the directory, writes this pid in the lock file, and refuses a second holder naming that pid, changing nothing', () => {
    const d = path.join(dir(), 'data');
    const lock = held(lockDataDir(d, io));
    expect(lock.kind).toBe(kind);
    const file = path.join(d, LOCK_FILE);
    expect(lock.file).toBe(file);
    expect(fs.readFileSync(file, 'utf8')).toBe(`${process.pid}\n`);
    const before = fs.statSync(file);
    let refused: unknown;
    try {
      lockDataDir(d, io);
    } catch (err) {
      refused = err;
    }
    expect(refused).toMatchObject({ code: 'DATA_DIR_LOCKED', details: { dir: d, file, pid: process.pid } });
    expect((refused as Error).message).toContain(`DATA_DIR_LOCKED: data directory ${d} is in use by another broker (pid ${process.pid};`);
    expect(fs.readdirSync(d)).toEqual([LOCK_FILE]);
    const after = fs.statSync(file);
    expect([after.ino, after.mtimeMs, after.size]).toEqual([before.ino, before.mtimeMs, before.size]);
  });

  it('release removes the lock file and lets the next holder in; releasing twice is harmless', () => {
    const d = dir();
    const first = lockDataDir(d, io);
    first.release();
    first.release();
    expect(fs.existsSync(path.join(d, LOCK_FILE))).toBe(false);
    const second = held(lockDataDir(d, io));
    first.release(); // a repeated release is a no-op, also once another holder has the directory
    expect(fs.readFileSync(second.file, 'utf8')).toBe(`${process.pid}\n`);
    expect(() => lockDataDir(d, io)).toThrow(expect.objectContaining({ code: 'DATA_DIR_LOCKED' }));
  });

  it('takes over a lock file left by a process that is gone', () => {
    const d = dir();
    const dead = deadPid();
    fs.writeFileSync(path.join(d, LOCK_FILE), `${dead}\n`);
    const lock = held(lockDataDir(d, io));
    expect(fs.readFileSync(lock.file, 'utf8')).toBe(`${process.pid}\n`);
    expect(fs.readdirSync(d)).toEqual([LOCK_FILE]);
  });

  it('refuses a directory it cannot create, naming it (BAD_DATA_DIR)', () => {
    const f = path.join(dir(), 'file');
    fs.writeFileSync(f, 'x');
    expect(() => lockDataDir(path.join(f, 'data'), io)).toThrow(expect.objectContaining({ code: 'BAD_DATA_DIR' }));
  });
});

it('pid-file: a lock file naming a live process of another broker is respected', async () => {
  const d = dir();
  const other = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  try {
    fs.writeFileSync(path.join(d, LOCK_FILE), `${other.pid}\n`);
    expect(() => lockDataDir(d, null)).toThrow(`(pid ${other.pid};`);
    // With flock the file's content does not matter, only whether a process holds its lock.
    held(lockDataDir(d, nativeIo));
  } finally {
    other.kill('SIGKILL');
    await exited(other);
  }
});
