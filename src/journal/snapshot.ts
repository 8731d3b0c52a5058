/**
 * Snapshot files: a whole state in one file, replaced atomically (the partition's producer state,
 * the producer id counter). The file is one journal frame (frame.ts), so a damaged or torn
 * snapshot is detected rather than parsed, and written like a journal's compaction: temp file,
 * fsync unless the policy is never, rename, fsync the directory, published on `weir:journal:sync`.
 */
import fs from 'node:fs';
import type { FsyncPolicy } from '../common/fsync.js';
import { encodeFrames, frameAt, FRAME_HEADER_BYTES } from './frame.js';
import { replaceFile, runSync } from './io.js';

export type SnapshotRead =
  | { kind: 'missing' }
  /** The file exists but is not one whole, good frame (or could not be read: `error`). */
  | { kind: 'damaged'; error?: unknown }
  | { kind: 'ok'; payload: Uint8Array };

/** A snapshot's previous on-disk format: read once, rewritten framed, removed. */
export interface LegacySnapshot {
  file: string;
  /** The payload the old file stands for, or null when it cannot be used (then it is left in place). */
  read(file: string): Uint8Array | null;
}

/** Replace `file` by a snapshot of `payload`, durably unless the policy is never. Throws what fs throws. */
export function writeSnapshotSync(file: string, payload: Uint8Array, fsync: FsyncPolicy): void {
  runSync(replaceFile(file, encodeFrames([payload]), fsync.mode !== 'never'));
}

/**
 * The snapshot in `file`. When there is none and `legacy.file` exists, that one is read, written
 * as `file` (per `fsync`) and removed: a one-time migration.
 */
export function readSnapshotSync(file: string, options: { legacy?: LegacySnapshot; fsync?: FsyncPolicy } = {}): SnapshotRead {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return { kind: 'damaged', error: err };
    return migrate(file, options);
  }
  if (options.legacy) fs.rmSync(options.legacy.file, { force: true }); // a migration interrupted after its rename
  const length = frameAt(bytes, 0);
  if (length < 0 || FRAME_HEADER_BYTES + length !== bytes.length) return { kind: 'damaged' };
  return { kind: 'ok', payload: bytes.subarray(FRAME_HEADER_BYTES) };
}

function migrate(file: string, options: { legacy?: LegacySnapshot; fsync?: FsyncPolicy }): SnapshotRead {
  const { legacy } = options;
  if (!legacy || !fs.existsSync(legacy.file)) return { kind: 'missing' };
  const payload = legacy.read(legacy.file);
  // An old file that cannot be used stays where it is, for an operator (and the caller decides).
  if (payload === null) return { kind: 'damaged' };
  writeSnapshotSync(file, payload, options.fsync ?? { mode: 'always' });
  fs.rmSync(legacy.file, { force: true });
  return { kind: 'ok', payload };
}
