/**
 * The IO every side journal shares (group offsets, queue journal, scheduler fired logs, transaction
 * log, producer-state snapshots): the fdatasync that makes a write durable, the atomic replace that
 * compacts one, and the whole-or-nothing append of a line journal.
 *
 * Every journal fdatasync goes through `syncJournalSync` / `syncJournal` (or `replaceJournal` with
 * `durable`), which publish `{ file }` on `weir:journal:sync` once the sync succeeded: tests and
 * operators see when each journal reaches the disk without mocking fs. The channel is per thread
 * (node:diagnostics_channel): a producer-state snapshot written on a partition worker is published
 * on that worker.
 */
import fs from 'node:fs';
import { writeFileAtomic } from './atomic-file.js';
import { channels } from './diagnostics.js';
import { WeirError } from './errors.js';
import { ErrorCode } from '../protocol/codes.js';

/** What `weir:journal:sync` publishes: `file` is the journal's path (not a temp file). */
export interface JournalSync {
  file: string;
}

function published(file: string): void {
  if (channels.journalSync.hasSubscribers) channels.journalSync.publish({ file } satisfies JournalSync);
}

/** fdatasync `fd` (the journal `file`), then publish it. Throws what fdatasync throws. */
export function syncJournalSync(fd: number, file: string): void {
  fs.fdatasyncSync(fd);
  published(file);
}

/** fdatasync a descriptor or FileHandle of the journal `file` off the thread, then publish it. */
export async function syncJournal(target: number | fs.promises.FileHandle, file: string): Promise<void> {
  if (typeof target === 'number') {
    await new Promise<void>((resolve, reject) => fs.fdatasync(target, (err) => (err ? reject(err) : resolve())));
  } else {
    await target.datasync();
  }
  published(file);
}

/**
 * Replace `file` by `data` atomically (writeFileAtomic), durably when `durable` (then published as
 * a sync of `file`). A failed attempt removes its temp file: on a full disk a half-written temp file
 * would otherwise keep the space the retry needs.
 */
export function replaceJournal(file: string, data: string | Uint8Array, durable: boolean): void {
  try {
    writeFileAtomic(file, data, { durable });
  } catch (err) {
    fs.rmSync(`${file}.tmp`, { force: true });
    throw err;
  }
  if (durable) published(file);
}

/**
 * A journal append that failed: STORAGE_FULL (retryable: ENOSPC, EDQUOT, a write that stored
 * nothing) or STORAGE_ERROR. `restored` says whether the file was cut back to its last good length;
 * when false it may end in a partial line and the journal must not append after it.
 */
export class JournalWriteError extends WeirError {
  constructor(
    file: string,
    cause: unknown,
    readonly restored: boolean,
  ) {
    const code = (cause as NodeJS.ErrnoException | undefined)?.code;
    const full = code === 'ENOSPC' || code === 'EDQUOT';
    super(full ? ErrorCode.STORAGE_FULL : ErrorCode.STORAGE_ERROR, `writing ${file} failed: ${(cause as Error)?.message ?? String(cause)}`, {
      retryable: full,
      cause,
    });
  }
}

/**
 * Append `bytes` whole to `fd` (opened for appending; `goodBytes` = its current length, all whole
 * entries). `fs.writeSync` may store only part (a nearly full disk); the rest is written until it
 * completes or fails. On failure the file is cut back to `goodBytes` (ftruncate), so no partial
 * entry stays for the next append to be glued to, and a JournalWriteError is thrown.
 */
export function appendWholeSync(fd: number, bytes: Uint8Array, goodBytes: number, file: string): void {
  let at = 0;
  try {
    while (at < bytes.length) {
      const n = fs.writeSync(fd, bytes, at, bytes.length - at);
      if (n <= 0) throw Object.assign(new Error('no space left on device (nothing written)'), { code: 'ENOSPC' });
      at += n;
    }
  } catch (err) {
    let restored = true;
    try {
      fs.ftruncateSync(fd, goodBytes);
    } catch {
      restored = false;
    }
    throw new JournalWriteError(file, err, restored);
  }
}
