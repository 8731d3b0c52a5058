/**
 * Committed consumer-group offsets, durable across broker restarts: a journal (src/journal/) of
 * one JSON entry per commit, `[group, topic, partition, offset]`, replayed at start and compacted
 * into one entry per key when it grows. Commits are synchronous (the main thread commits in
 * batches; one write per batch) and synced per the broker's fsync policy: `always`, before the
 * commit returns (so before it is acknowledged); `interval:MS`, within MS; `never`, not at all.
 *
 * A commit is stored whole or not at all: a write that fails (a full disk) is cut back and thrown
 * as STORAGE_FULL (retryable) or STORAGE_ERROR, and the offsets in memory stay as they were.
 *
 * Replay applies every good entry; a damaged one (anywhere in the file) is skipped and reported in
 * `recovery` and on `weir:journal:skipped`, and a torn last entry (a crash mid-write: never
 * acknowledged) is cut off. The file of the format before the journal, `offsets.jsonl` (one JSON
 * line per commit), is read once and rewritten as the journal.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Journal, jsonPayload, parseJsonPayload, type FsyncPolicy, type JournalSkipped } from '../../journal/index.js';

export type { JournalSkipped };

type Key = string; // `${group}\u0000${topic}\u0000${partition}`
type Commit = [group: string, topic: string, partition: number, offset: number];

export const OFFSETS_FILE = 'offsets.journal';
/** The line format before the journal (read once, then removed). */
export const LEGACY_OFFSETS_FILE = 'offsets.jsonl';

/** What replay found that it could not apply. */
export interface OffsetStoreRecovery {
  /** Damaged entries skipped (every other entry was applied). */
  skippedLines: number;
  /** Byte positions of the first skipped entries and of a cut tail (at most 100). */
  positions: number[];
  /** Bytes of a torn last entry, cut off at open. */
  truncatedBytes: number;
}

/** After a failed compaction, commits go on and compaction is tried again this many entries later. */
const COMPACT_RETRY_ENTRIES = 1024;

export class OffsetStore {
  readonly recovery: OffsetStoreRecovery;
  readonly file: string;
  private readonly offsets = new Map<Key, number>();
  private readonly journal: Journal;
  private compactAfterEntries = 0;

  constructor(dir: string, fsync: FsyncPolicy) {
    this.file = path.join(dir, OFFSETS_FILE);
    const legacy = { file: path.join(dir, LEGACY_OFFSETS_FILE), read: readLegacy };
    const { journal, entries, recovery } = Journal.open({ file: this.file, fsync, io: 'sync', legacy }, (payload) => commitOf(parseJsonPayload(payload)));
    this.journal = journal;
    for (const [g, t, p, o] of entries) this.offsets.set(key(g, t, p), o);
    this.recovery = { skippedLines: recovery.skipped, positions: recovery.positions, truncatedBytes: recovery.truncatedBytes };
    if (this.compactDue()) this.compact();
  }

  get(group: string, topic: string, partition: number): number | undefined {
    return this.offsets.get(key(group, topic, partition));
  }

  /**
   * Store several commits with one write. Returns once they are written (and, under `always`,
   * synced); throws STORAGE_FULL / STORAGE_ERROR, with nothing of them stored, when they cannot be.
   */
  commit(group: string, topic: string, entries: ReadonlyArray<readonly [number, number]>): void {
    if (entries.length === 0) return;
    this.journal.appendSync(entries.map(([p, o]) => jsonPayload([group, topic, p, o] satisfies Commit)));
    for (const [p, o] of entries) this.offsets.set(key(group, topic, p), o);
    if (this.compactDue()) this.compact();
  }

  close(): void {
    this.journal.closeSync();
  }

  private compactDue(): boolean {
    const n = this.journal.entries;
    return n > 4 * Math.max(1024, this.offsets.size) && n >= this.compactAfterEntries;
  }

  /**
   * Rewrite as one entry per key. A failure (disk full) leaves the journal as it was: the commit
   * that triggered it is stored already, so it is not failed for this.
   */
  private compact(): void {
    const snapshot: Uint8Array[] = [];
    for (const [k, o] of this.offsets) {
      const [g, t, p] = k.split('\u0000') as [string, string, string];
      snapshot.push(jsonPayload([g, t, Number(p), o] satisfies Commit));
    }
    try {
      this.journal.replaceSync(snapshot);
    } catch (err) {
      this.compactAfterEntries = this.journal.entries + COMPACT_RETRY_ENTRIES;
      console.error(`weir groups: compacting ${this.file} failed, appending to it meanwhile:`, (err as Error).message);
    }
  }
}

/** `[group, topic, partition, offset]`, or undefined for anything else. */
function commitOf(v: unknown): Commit | undefined {
  if (!Array.isArray(v) || v.length !== 4) return undefined;
  const [g, t, p, o] = v as unknown[];
  if (typeof g !== 'string' || typeof t !== 'string' || !Number.isSafeInteger(p) || !Number.isSafeInteger(o)) return undefined;
  if ((p as number) < 0 || (o as number) < 0) return undefined;
  return [g, t, p as number, o as number];
}

/** The commits of an `offsets.jsonl` (one JSON line each; lines that do not parse are left out and counted). */
function readLegacy(file: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  let skipped = 0;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (line.length === 0) continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      v = undefined;
    }
    const c = commitOf(v);
    if (c) out.push(jsonPayload(c));
    else skipped++;
  }
  if (skipped > 0) console.error(`weir groups: ${file}: ${skipped} damaged line(s) left out while moving it to the journal; every other commit was kept`);
  return out;
}

function key(group: string, topic: string, partition: number): Key {
  return `${group}\u0000${topic}\u0000${partition}`;
}
