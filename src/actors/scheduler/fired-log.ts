/**
 * Durable progress of one schedule topic: which schedule-log offsets were fired. An append-only
 * file of 16-byte entries, written once per event-loop turn and fsync'ed per the broker's policy:
 *
 *   u32 kind (0 = offset fired, 1 = every offset below it fired), u32 partition, f64 offset
 *
 * Rewritten (temp file, rename) to the live state (a low-water entry per partition plus the fired
 * offsets above it) once it holds many more entries than that. A torn last entry is ignored.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FsyncPolicy } from '../../broker.js';
import { FiredSet } from './fired-set.js';

export const ENTRY_BYTES = 16;
export const enum EntryKind {
  FIRED = 0,
  LOW_WATER = 1,
}

/** Encode entries (pure). */
export function encodeEntries(entries: ReadonlyArray<readonly [EntryKind, number, number]>): Uint8Array {
  const out = new Uint8Array(entries.length * ENTRY_BYTES);
  const v = new DataView(out.buffer);
  entries.forEach(([kind, partition, offset], i) => {
    v.setUint32(i * ENTRY_BYTES, kind, true);
    v.setUint32(i * ENTRY_BYTES + 4, partition, true);
    v.setFloat64(i * ENTRY_BYTES + 8, offset, true);
  });
  return out;
}

/** Apply a log's bytes to per-partition fired sets (pure). Returns the number of whole entries. */
export function applyEntries(bytes: Uint8Array, sets: FiredSet[]): number {
  const n = Math.floor(bytes.length / ENTRY_BYTES);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < n; i++) {
    const kind = v.getUint32(i * ENTRY_BYTES, true);
    const set = sets[v.getUint32(i * ENTRY_BYTES + 4, true)];
    const offset = v.getFloat64(i * ENTRY_BYTES + 8, true);
    if (!set || !Number.isInteger(offset) || offset < 0) continue;
    if (kind === EntryKind.LOW_WATER) set.setLow(offset);
    else set.mark(offset);
  }
  return n;
}

export class FiredLog {
  readonly sets: FiredSet[];
  private fd: number;
  private entriesInFile: number;
  /** Fired (partition, offset) pairs not yet written: no object per message. */
  private pending = new Float64Array(2048);
  private pendingCount = 0;
  private flushScheduled = false;
  private syncTimer: ReturnType<typeof setTimeout> | null = null;
  private closed = false;

  constructor(
    private readonly file: string,
    partitions: number,
    private readonly fsyncPolicy: FsyncPolicy,
  ) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    this.sets = Array.from({ length: partitions }, () => new FiredSet());
    const bytes = fs.existsSync(file) ? new Uint8Array(fs.readFileSync(file)) : new Uint8Array(0);
    this.entriesInFile = applyEntries(bytes, this.sets);
    if (bytes.length % ENTRY_BYTES !== 0) fs.truncateSync(file, this.entriesInFile * ENTRY_BYTES); // torn tail
    this.fd = fs.openSync(file, 'a');
  }

  /** Mark an offset fired: in memory now, on disk at the end of this turn. */
  fired(partition: number, offset: number): void {
    if (this.closed || !this.sets[partition]!.mark(offset)) return;
    if (2 * this.pendingCount === this.pending.length) {
      const grown = new Float64Array(this.pending.length * 2);
      grown.set(this.pending);
      this.pending = grown;
    }
    this.pending[2 * this.pendingCount] = partition;
    this.pending[2 * this.pendingCount + 1] = offset;
    this.pendingCount++;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.flushScheduled = false;
    if (this.closed || this.pendingCount === 0) return;
    const bytes = new Uint8Array(this.pendingCount * ENTRY_BYTES);
    const v = new DataView(bytes.buffer);
    for (let i = 0; i < this.pendingCount; i++) {
      v.setUint32(i * ENTRY_BYTES, EntryKind.FIRED, true);
      v.setUint32(i * ENTRY_BYTES + 4, this.pending[2 * i]!, true);
      v.setFloat64(i * ENTRY_BYTES + 8, this.pending[2 * i + 1]!, true);
    }
    this.pendingCount = 0;
    fs.writeSync(this.fd, bytes);
    this.entriesInFile += bytes.length / ENTRY_BYTES;
    if (this.fsyncPolicy.mode === 'always') fs.fdatasyncSync(this.fd);
    else if (this.fsyncPolicy.mode === 'interval' && !this.syncTimer) {
      this.syncTimer = setTimeout(() => {
        this.syncTimer = null;
        if (!this.closed) fs.fdatasyncSync(this.fd);
      }, this.fsyncPolicy.intervalMs);
    }
    this.maybeCompact();
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    if (this.syncTimer) clearTimeout(this.syncTimer);
    if (this.fsyncPolicy.mode !== 'never') fs.fdatasyncSync(this.fd);
    fs.closeSync(this.fd);
  }

  private maybeCompact(): void {
    let live = 0;
    for (const s of this.sets) live += 1 + s.firedAboveLow;
    if (this.entriesInFile < 65_536 || this.entriesInFile < 4 * live) return;
    const entries: Array<[EntryKind, number, number]> = [];
    this.sets.forEach((s, p) => {
      entries.push([EntryKind.LOW_WATER, p, s.low]);
      for (const o of s.firedAbove()) entries.push([EntryKind.FIRED, p, o]);
    });
    const tmp = this.file + '.tmp';
    const fd = fs.openSync(tmp, 'w');
    fs.writeSync(fd, encodeEntries(entries));
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, this.file);
    const dfd = fs.openSync(path.dirname(this.file), 'r');
    fs.fsyncSync(dfd);
    fs.closeSync(dfd);
    fs.closeSync(this.fd);
    this.fd = fs.openSync(this.file, 'a');
    this.entriesInFile = entries.length;
  }
}
