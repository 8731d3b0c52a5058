/**
 * The broker's data directory: its path checked before anything is created (checkDataDirPath),
 * then created and locked for the broker's life (lockDataDir), so two brokers never write one log.
 *
 * The lock is `<dir>/.weir.lock` holding the holder's PID. With the native helper it is an flock
 * (the kernel drops it when the process ends, SIGKILL included, so it is never stale); without,
 * the file itself is the lock (created with link(2), which fails if it exists), and a file whose
 * PID no longer runs is taken over. Start-up errors, never on the wire: BAD_DATA_DIR,
 * DATA_DIR_LOCKED (docs/protocol.md, "Start-up errors").
 */
import fs from 'node:fs';
import { mkdirFailure } from './storage-failure.js';
import path from 'node:path';
import { WeirCode } from '../protocol/error-codes.js';
import { WeirError } from './errors.js';
import { nativeIo } from './native-io.js';

export const LOCK_FILE = '.weir.lock';

/** The helper's one call used here (src/common/native-io.ts). */
export interface FlockIo {
  lockFile(fd: number): boolean;
}

export interface DataDirLock {
  readonly dir: string;
  readonly file: string;
  /** `flock`: held by the kernel for this process; `pid-file`: the file is the lock (no native helper). */
  readonly kind: 'flock' | 'pid-file';
  /** Give the directory up (Broker.close): removes the lock file. Idempotent. */
  release(): void;
}

/** Kernel file systems that hold no data: Node's recursive mkdir loops forever under /proc. */
const KERNEL_FS: ReadonlyArray<{ prefix: string; magic: number }> = [
  { prefix: '/proc', magic: 0x9fa0 }, // PROC_SUPER_MAGIC
  { prefix: '/sys', magic: 0x62656572 }, // SYSFS_MAGIC
];

function badDataDir(dir: string, why: string, cause?: unknown): WeirError {
  return new WeirError(WeirCode.BAD_DATA_DIR, `BAD_DATA_DIR: cannot use ${dir} as the data directory: ${why}`, { details: { dir }, cause });
}

/** An fs error as a reader wants it: "permission denied (EACCES)". */
function reason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const text: Record<string, string> = {
    EACCES: 'permission denied',
    EPERM: 'permission denied',
    EROFS: 'read-only file system',
    ENOSPC: 'no space left on the device',
    ENOTDIR: 'a part of the path is not a directory',
    ELOOP: 'too many symbolic links',
    ENAMETOOLONG: 'the path is too long',
  };
  return e.code !== undefined && text[e.code] !== undefined ? `${text[e.code]} (${e.code})` : e.message;
}

/**
 * Refuse a data path no broker can use, writing nothing: under /proc or /sys (after symbolic links,
 * and by file system type where those are mounted elsewhere), an existing non-directory, or one
 * below a file. Throws BAD_DATA_DIR naming the path and what is wrong.
 */
export function checkDataDirPath(dir: string): void {
  const abs = path.resolve(dir);
  // The deepest part of the path that exists: what the kernel will resolve the rest under.
  let existing = abs;
  let st: fs.Stats | undefined;
  for (;;) {
    try {
      st = fs.statSync(existing);
      break;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw badDataDir(dir, `cannot look at ${existing}: ${reason(err)}`, err);
      const up = path.dirname(existing);
      if (up === existing) break;
      existing = up;
    }
  }
  let real: string;
  try {
    real = path.join(fs.realpathSync(existing), path.relative(existing, abs));
  } catch (err) {
    throw badDataDir(dir, `cannot resolve ${existing}: ${reason(err)}`, err);
  }
  let magic = -1;
  try {
    magic = fs.statfsSync(existing).type;
  } catch {
    // Unknown type: the prefix check below still applies.
  }
  for (const k of KERNEL_FS) {
    if (real === k.prefix || real.startsWith(`${k.prefix}/`) || magic === k.magic) {
      throw badDataDir(dir, `it is under ${k.prefix}${real !== abs ? ` (it resolves to ${real})` : ''}, a kernel file system that cannot hold data`);
    }
  }
  if (st !== undefined && !st.isDirectory()) {
    throw badDataDir(dir, existing === abs ? 'it exists and is not a directory' : `${existing} is not a directory`);
  }
}

/**
 * Check `dir` (checkDataDirPath), create it, and lock it: with flock when `io` (the native helper)
 * is there, else with a pid file. Throws BAD_DATA_DIR when it cannot be created or written, and
 * DATA_DIR_LOCKED naming the holder's PID when another broker (of any process, this one included)
 * holds it; either way having written nothing in a directory another broker holds.
 */
export function lockDataDir(dir: string, io: FlockIo | null = nativeIo): DataDirLock {
  checkDataDirPath(dir);
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (err) {
    // The directory on the way that could not be made, not the ENOENT a recursive mkdir reports.
    const why = mkdirFailure(dir) ?? err;
    const at = (why as NodeJS.ErrnoException).path;
    throw badDataDir(dir, `cannot create ${typeof at === 'string' && at !== dir ? `${at} on its path` : 'it'}: ${reason(why)}`, why);
  }
  const file = path.join(dir, LOCK_FILE);
  return io !== null ? flockLock(dir, file, io) : pidFileLock(dir, file);
}

function locked(dir: string, file: string, holder: number | null): WeirError {
  const who = holder !== null ? `pid ${holder}` : `pid unknown: ${file} names none`;
  return new WeirError(WeirCode.DATA_DIR_LOCKED, `DATA_DIR_LOCKED: data directory ${dir} is in use by another broker (${who}; lock file ${file}). Stop it, or give this one another --data.`, {
    details: { dir, file, pid: holder },
  });
}

function parsePid(text: string): number | null {
  const pid = Number(text.trim());
  return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
}

function openLockFile(dir: string, file: string): number {
  try {
    return fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
  } catch (err) {
    throw badDataDir(dir, `cannot open its lock file ${file}: ${reason(err)}`, err);
  }
}

function flockLock(dir: string, file: string, io: FlockIo): DataDirLock {
  // A holder that stops cleanly unlinks the file while it still holds the lock. Had we opened it
  // just before, our lock would be on a file no one else opens: so once locked, check that the
  // path still names our file, and start over if not.
  for (let attempt = 0; attempt < 100; attempt++) {
    const fd = openLockFile(dir, file);
    let taken: boolean;
    try {
      taken = io.lockFile(fd);
    } catch (err) {
      fs.closeSync(fd);
      throw badDataDir(dir, `cannot lock ${file}: ${reason(err)}`, err);
    }
    if (!taken) {
      const holder = parsePid(fs.readFileSync(fd, 'utf8'));
      fs.closeSync(fd);
      throw locked(dir, file, holder);
    }
    const mine = fs.fstatSync(fd);
    let atPath: fs.Stats | undefined;
    try {
      atPath = fs.statSync(file);
    } catch {
      atPath = undefined;
    }
    if (atPath === undefined || atPath.ino !== mine.ino || atPath.dev !== mine.dev) {
      fs.closeSync(fd);
      continue;
    }
    try {
      fs.ftruncateSync(fd, 0);
      fs.writeSync(fd, `${process.pid}\n`, 0);
    } catch (err) {
      fs.closeSync(fd);
      throw badDataDir(dir, `cannot write its lock file ${file}: ${reason(err)}`, err);
    }
    let held = true;
    return {
      dir,
      file,
      kind: 'flock',
      release: () => {
        if (!held) return;
        held = false;
        // Unlinked while still locked (see above), then unlocked by the close.
        fs.rmSync(file, { force: true });
        fs.closeSync(fd);
      },
    };
  }
  throw badDataDir(dir, `its lock file ${file} keeps being replaced while being locked`);
}

/** Whether `pid` runs (this process counts). EPERM: it runs, as another user. */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readPid(file: string): { exists: boolean; pid: number | null } {
  try {
    return { exists: true, pid: parsePid(fs.readFileSync(file, 'utf8')) };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { exists: false, pid: null };
    throw err;
  }
}

/**
 * Without flock: the lock file is the lock. Best effort: a PID reused by an unrelated process
 * keeps the directory locked (the message names the PID and the file to delete), and two brokers
 * taking over one stale file at the same instant can both think they won (each checks what it
 * moved aside, which narrows this to a rare race). flock has neither problem.
 */
function pidFileLock(dir: string, file: string): DataDirLock {
  const me = `${process.pid}\n`;
  for (let attempt = 0; attempt < 100; attempt++) {
    const seen = readPid(file);
    if (seen.exists) {
      if (seen.pid === null || running(seen.pid)) throw locked(dir, file, seen.pid);
      // Its holder is gone: move the file aside, and check that what was moved is that stale one.
      const aside = `${file}.stale.${process.pid}`;
      try {
        fs.renameSync(file, aside);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // another broker took it over first
        throw badDataDir(dir, `cannot replace its stale lock file ${file}: ${reason(err)}`, err);
      }
      const moved = readPid(aside).pid;
      if (moved !== seen.pid && moved !== null && running(moved)) {
        // A live holder's file, written after we looked: put it back and give way.
        try {
          fs.linkSync(aside, file);
        } catch {
          // A third broker's file is there now: it holds the directory.
        }
        fs.rmSync(aside, { force: true });
        throw locked(dir, file, moved);
      }
      fs.rmSync(aside, { force: true });
      continue;
    }
    // Written whole under a name of its own, then linked into place: link(2) fails when the lock
    // file exists, and no reader ever sees it empty.
    const temp = `${file}.${process.pid}`;
    try {
      fs.writeFileSync(temp, me);
    } catch (err) {
      throw badDataDir(dir, `cannot write its lock file ${temp}: ${reason(err)}`, err);
    }
    try {
      fs.linkSync(temp, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw badDataDir(dir, `cannot create its lock file ${file}: ${reason(err)}`, err);
    } finally {
      fs.rmSync(temp, { force: true });
    }
    let held = true;
    return {
      dir,
      file,
      kind: 'pid-file',
      release: () => {
        if (!held) return;
        held = false;
        if (readPid(file).pid === process.pid) fs.rmSync(file, { force: true });
      },
    };
  }
  throw badDataDir(dir, `its lock file ${file} keeps changing while being taken`);
}
