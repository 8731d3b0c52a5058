/**
 * The journal's file operations, written once and run two ways. A journal step (append, replace,
 * sync, close) is a generator that yields the IO it needs (`IoOp`) and receives the result; `runSync`
 * performs each op with the synchronous fs calls (the group offset store answers a commit in the
 * same turn), `runAsync` with the callback ones on libuv's pool (the transaction log must not block
 * the gateway's thread). A failed op is thrown into the generator, so its `try`/`catch` cleanup
 * (cutting a failed append back) is the same code in both flavours.
 *
 * Every fs call goes through the `fs` module object at call time: a test can inject a failure with
 * `vi.spyOn(fs, 'write')` or, in a child process it SIGKILLs, by replacing `fs.fdatasyncSync`.
 *
 * A successful fdatasync of a journal publishes `{ file }` on `weir:journal:sync` (per thread: a
 * snapshot written on a partition worker is published on that worker), so tests and operators see
 * each journal reach the disk without mocking fs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { channels } from '../common/diagnostics.js';

/** What `weir:journal:sync` publishes: `file` is the journal's path (not a temp file). */
export interface JournalSync {
  file: string;
}

export type IoOp =
  | { op: 'write'; fd: number; bytes: Uint8Array; from: number; length: number }
  | { op: 'datasync'; fd: number }
  | { op: 'fsync'; fd: number }
  | { op: 'truncate'; fd: number; length: number }
  | { op: 'open'; path: string; flags: string }
  | { op: 'close'; fd: number }
  | { op: 'rename'; from: string; to: string }
  | { op: 'remove'; path: string };

/** A step of journal IO returning T (see the file comment). */
export type Steps<T> = Generator<IoOp, T, unknown>;

export function* write(fd: number, bytes: Uint8Array, from: number, length: number): Steps<number> {
  return (yield { op: 'write', fd, bytes, from, length }) as number;
}
export function* datasync(fd: number): Steps<void> {
  yield { op: 'datasync', fd };
}
export function* fsyncFd(fd: number): Steps<void> {
  yield { op: 'fsync', fd };
}
export function* truncate(fd: number, length: number): Steps<void> {
  yield { op: 'truncate', fd, length };
}
export function* open(file: string, flags: string): Steps<number> {
  return (yield { op: 'open', path: file, flags }) as number;
}
export function* close(fd: number): Steps<void> {
  yield { op: 'close', fd };
}
export function* rename(from: string, to: string): Steps<void> {
  yield { op: 'rename', from, to };
}
export function* remove(file: string): Steps<void> {
  yield { op: 'remove', path: file };
}

/** fsync a directory, so that a creation or rename in it is durable. */
export function* syncDirectory(dir: string): Steps<void> {
  const fd = yield* open(dir, 'r');
  try {
    yield* fsyncFd(fd);
  } finally {
    yield* close(fd);
  }
}

/** Tell `weir:journal:sync` that `file` reached the disk. */
export function publishSync(file: string): void {
  if (channels.journalSync.hasSubscribers) channels.journalSync.publish({ file } satisfies JournalSync);
}

/** A write that stored nothing: the disk is full (fs.writeSync may return 0 on some file systems). */
export function nothingWritten(): NodeJS.ErrnoException {
  return Object.assign(new Error('no space left on device (nothing written)'), { code: 'ENOSPC' });
}

/** Write `bytes` whole to `fd` (a write may store only part of it: a nearly full disk). */
export function* writeWhole(fd: number, bytes: Uint8Array): Steps<void> {
  for (let at = 0; at < bytes.length; ) {
    const n = yield* write(fd, bytes, at, bytes.length - at);
    if (n <= 0) throw nothingWritten();
    at += n;
  }
}

/**
 * Replace `file` by `bytes` atomically: a temp file beside it, fsynced (when `durable`), renamed
 * over, the directory fsynced (when `durable`), then published as a sync of `file`. After an OS
 * crash the file holds the old or the new content, never neither. A failure removes the temp file
 * (on a full disk a half-written one would keep the space a retry needs) and is thrown.
 */
export function* replaceFile(file: string, bytes: Uint8Array, durable: boolean): Steps<void> {
  const tmp = `${file}.tmp`;
  try {
    const fd = yield* open(tmp, 'w');
    try {
      yield* writeWhole(fd, bytes);
      if (durable) yield* fsyncFd(fd);
    } finally {
      yield* close(fd);
    }
    yield* rename(tmp, file);
  } catch (err) {
    try {
      yield* remove(tmp);
    } catch {
      // the error that matters is the first one
    }
    throw err;
  }
  if (durable) {
    yield* syncDirectory(path.dirname(file));
    publishSync(file);
  }
}

function doSync(op: IoOp): unknown {
  switch (op.op) {
    case 'write':
      return fs.writeSync(op.fd, op.bytes, op.from, op.length);
    case 'datasync':
      return fs.fdatasyncSync(op.fd);
    case 'fsync':
      return fs.fsyncSync(op.fd);
    case 'truncate':
      return fs.ftruncateSync(op.fd, op.length);
    case 'open':
      return fs.openSync(op.path, op.flags);
    case 'close':
      return fs.closeSync(op.fd);
    case 'rename':
      return fs.renameSync(op.from, op.to);
    case 'remove':
      return fs.rmSync(op.path, { force: true });
  }
}

function doAsync(op: IoOp): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const done = (err: NodeJS.ErrnoException | null, value?: unknown): void => (err ? reject(err) : resolve(value));
    switch (op.op) {
      case 'write':
        return fs.write(op.fd, op.bytes, op.from, op.length, null, done);
      case 'datasync':
        return fs.fdatasync(op.fd, done);
      case 'fsync':
        return fs.fsync(op.fd, done);
      case 'truncate':
        return fs.ftruncate(op.fd, op.length, done);
      case 'open':
        return fs.open(op.path, op.flags, done);
      case 'close':
        return fs.close(op.fd, done);
      case 'rename':
        return fs.rename(op.from, op.to, done);
      case 'remove':
        return fs.rm(op.path, { force: true }, done);
    }
  });
}

/** Run `steps` with synchronous fs calls. */
export function runSync<T>(steps: Steps<T>): T {
  let r = steps.next();
  while (!r.done) {
    let value: unknown;
    try {
      value = doSync(r.value);
    } catch (err) {
      r = steps.throw(err);
      continue;
    }
    r = steps.next(value);
  }
  return r.value;
}

/** Run `steps` with asynchronous fs calls (libuv's pool): the thread serves others meanwhile. */
export async function runAsync<T>(steps: Steps<T>): Promise<T> {
  let r = steps.next();
  while (!r.done) {
    let value: unknown;
    try {
      value = await doAsync(r.value);
    } catch (err) {
      r = steps.throw(err);
      continue;
    }
    r = steps.next(value);
  }
  return r.value;
}
