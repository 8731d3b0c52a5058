/**
 * One segment of a partition log: the IO handle over its `.log` and `.index` files (synchronous fs
 * calls; the partition worker is the only writer). Every fs failure is rethrown as a LogError
 * (STORAGE_FULL for ENOSPC/EDQUOT, STORAGE_ERROR otherwise) naming the file and the operation.
 *
 * State fields describe the *durable* (written) part of the segment only; data still in the
 * partition log's group-commit buffer is not reflected here.
 */
import fs from 'node:fs';
import path from 'node:path';
import { INDEX_SUFFIX, LOG_SUFFIX, segmentName } from './layout.js';
import { INDEX_ENTRY_BYTES, SparseIndex } from './sparse-index.js';
import { StorageError, storageErrorFrom } from './errors.js';
import { nativeIo } from '../common/native-io.js';

/** A write call that makes no progress this many times in a row is an error, not a loop. */
const MAX_ZERO_WRITES = 3;
/** The native helper's bare pwrite where it is built (one call per group commit), else Node's. */
const pwrite: (fd: number, buf: Uint8Array, from: number, length: number, position: number) => number =
  nativeIo?.pwrite ?? ((fd, buf, from, length, position) => fs.writeSync(fd, buf, from, length, position));

export class Segment {
  readonly logPath: string;
  readonly indexPath: string;
  /** Bytes of the .log file holding written records. */
  size = 0;
  /** Offset after the newest written record (= base when empty). */
  endOffset: number;
  /** Timestamp of the newest written record, -1 when empty. */
  lastTimestamp = -1;
  /** .log fd, -1 when closed. Sealed segments are opened on demand (see PartitionLog's LRU). */
  fd = -1;
  /** .index fd: open only while the segment is active (appended to). */
  indexFd = -1;
  /** In-memory sparse index: always loaded for the active segment, on demand for sealed ones. */
  index: SparseIndex | null = null;
  /** Entries of `index` already in the .index file (the active segment writes its own in batches). */
  indexWritten = 0;
  deleted = false;
  /** Page-cache drop-behind: pages of the .log below this byte were dropped (PartitionLog). */
  cachedFrom = 0;

  constructor(
    readonly dir: string,
    readonly base: number,
  ) {
    this.logPath = path.join(dir, segmentName(base, LOG_SUFFIX));
    this.indexPath = path.join(dir, segmentName(base, INDEX_SUFFIX));
    this.endOffset = base;
  }

  /** Create a new, empty active segment (fails if its .log exists: never overwrite data). */
  static create(dir: string, base: number): Segment {
    const seg = new Segment(dir, base);
    seg.fd = io('create', seg.logPath, () => fs.openSync(seg.logPath, 'wx+'));
    try {
      seg.indexFd = io('create', seg.indexPath, () => fs.openSync(seg.indexPath, 'w+'));
    } catch (err) {
      seg.closeFds();
      tryUnlink(seg.logPath);
      throw err;
    }
    seg.index = new SparseIndex();
    return seg;
  }

  openLog(flags: 'r' | 'r+'): void {
    if (this.fd < 0) this.fd = io('open', this.logPath, () => fs.openSync(this.logPath, flags));
  }

  /** Open (creating if missing) the .index for appending. */
  openIndexForAppend(): void {
    if (this.indexFd < 0) {
      const flags = fs.existsSync(this.indexPath) ? 'r+' : 'w+';
      this.indexFd = io('open', this.indexPath, () => fs.openSync(this.indexPath, flags));
    }
  }

  /** The .index file's bytes, or null when it does not exist. */
  readIndexFile(): Uint8Array | null {
    try {
      return fs.readFileSync(this.indexPath);
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return null;
      throw storageErrorFrom(err, 'read', this.indexPath);
    }
  }

  /** Load the sparse index from disk (a sealed segment's index is trusted once recovery passed it). */
  loadIndex(): SparseIndex {
    if (this.index === null) this.index = SparseIndex.fromBytes(this.readIndexFile() ?? new Uint8Array(0));
    return this.index;
  }

  fileSize(): number {
    return io('fstat', this.logPath, () => fs.fstatSync(this.fd).size);
  }

  /** pwrite all of `buf[from, from+length)` at `position` of the .log. */
  writeLog(buf: Uint8Array, from: number, length: number, position: number): void {
    pwriteAll(this.fd, this.logPath, buf, from, length, position);
  }

  /** Write index entries [fromEntry, count) of the in-memory index to the .index file. */
  writeIndexEntries(fromEntry: number): void {
    const idx = this.index!;
    if (fromEntry < idx.count) {
      const bytes = idx.entryBytes(fromEntry, idx.count);
      pwriteAll(this.indexFd, this.indexPath, bytes, 0, bytes.length, fromEntry * INDEX_ENTRY_BYTES);
    }
    this.indexWritten = idx.count;
  }

  /** Write the index entries not in the .index file yet. */
  writePendingIndex(): void {
    this.writeIndexEntries(this.indexWritten);
  }

  /** Read up to `length` bytes at `position` into `buf[at..]`; returns the bytes read (short only at EOF). */
  readAt(buf: Uint8Array, at: number, length: number, position: number): number {
    let done = 0;
    while (done < length) {
      let n: number;
      try {
        n = fs.readSync(this.fd, buf, at + done, length - done, position + done);
      } catch (err) {
        throw storageErrorFrom(err, 'read', this.logPath);
      }
      if (n === 0) break;
      done += n;
    }
    return done;
  }

  truncateLog(size: number): void {
    io('ftruncate', this.logPath, () => fs.ftruncateSync(this.fd, size));
  }

  truncateIndexFile(entries: number): void {
    this.indexWritten = Math.min(this.indexWritten, entries);
    io('ftruncate', this.indexPath, () => fs.ftruncateSync(this.indexFd, entries * INDEX_ENTRY_BYTES));
  }

  datasyncLog(): void {
    io('fdatasync', this.logPath, () => fs.fdatasyncSync(this.fd));
  }

  /**
   * fdatasync both files without blocking the thread (libuv's pool), through fds of their own, so
   * the segment's fds may be closed meanwhile. Rejects with the fs error (ENOENT if deleted).
   */
  async datasyncAsync(): Promise<void> {
    for (const file of [this.logPath, this.indexPath]) {
      let fh: fs.promises.FileHandle;
      try {
        fh = await fs.promises.open(file, 'r');
      } catch (err) {
        if (file === this.indexPath && (err as NodeJS.ErrnoException).code === 'ENOENT') continue; // rebuilt by recovery if missing
        throw err;
      }
      try {
        await fh.datasync();
      } finally {
        await fh.close();
      }
    }
  }

  datasyncIndex(): void {
    if (this.indexFd >= 0) io('fdatasync', this.indexPath, () => fs.fdatasyncSync(this.indexFd));
  }

  closeIndexFd(): void {
    if (this.indexFd >= 0) {
      const fd = this.indexFd;
      this.indexFd = -1;
      io('close', this.indexPath, () => fs.closeSync(fd));
    }
  }

  /** Close both fds; the first failure is thrown after both were attempted. */
  closeFds(): void {
    let failure: unknown = null;
    if (this.fd >= 0) {
      const fd = this.fd;
      this.fd = -1;
      try {
        fs.closeSync(fd);
      } catch (err) {
        failure = storageErrorFrom(err, 'close', this.logPath);
      }
    }
    try {
      this.closeIndexFd();
    } catch (err) {
      failure ??= err;
    }
    if (failure !== null) throw failure;
  }

  /**
   * Close and remove both files. The .log goes first: a crash in between leaves an orphan .index,
   * which recovery removes, never a .log whose removal is forgotten.
   */
  deleteFiles(): void {
    this.deleted = true;
    this.index = null;
    this.closeFds();
    io('unlink', this.logPath, () => fs.unlinkSync(this.logPath));
    tryUnlink(this.indexPath);
  }
}

/** fsync a directory so that file creations and deletions in it are durable. */
export function fsyncDir(dir: string): void {
  io('fsync', dir, () => {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  });
}

function pwriteAll(fd: number, file: string, buf: Uint8Array, from: number, length: number, position: number): void {
  let zeroWrites = 0;
  while (length > 0) {
    // Hot path (once per flush): plain try/catch, no closure.
    let n: number;
    try {
      n = pwrite(fd, buf, from, length, position);
    } catch (err) {
      throw storageErrorFrom(err, 'write', file);
    }
    if (n === 0) {
      if (++zeroWrites >= MAX_ZERO_WRITES) {
        throw new StorageError(`write to ${file} made no progress ${MAX_ZERO_WRITES} times`, { op: 'write', path: file });
      }
      continue;
    }
    zeroWrites = 0;
    from += n;
    position += n;
    length -= n;
  }
}

function tryUnlink(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOENT') throw storageErrorFrom(err, 'unlink', file);
  }
}

function io<T>(op: string, file: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw storageErrorFrom(err, op, file);
  }
}
