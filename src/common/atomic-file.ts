/**
 * Replace a small file atomically: write a temp file beside it, rename it over the target. With
 * `durable`, fsync the temp file before the rename and the directory after it, so that after an
 * OS crash the file holds either the old or the new content, never neither (and the new content
 * once this returns). Without it, a crash may bring back the old content: use that only for files
 * whose staleness is safe (hints that make recovery do more, not less). With `mode` (e.g. 0o600 for a
 * file of secrets), the file has that mode from before its first byte is written.
 */
import fs from 'node:fs';
import path from 'node:path';

export function writeFileAtomic(file: string, data: string | Uint8Array, options: { durable: boolean; mode?: number }): void {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w', options.mode);
  try {
    // A temp file left by a crash keeps its old mode on open: set it before writing.
    if (options.mode !== undefined) fs.fchmodSync(fd, options.mode);
    fs.writeFileSync(fd, data);
    if (options.durable) fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  if (options.durable) fsyncDirectory(path.dirname(file));
}

/** fsync a directory so that creations, renames and deletions in it are durable. */
export function fsyncDirectory(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
