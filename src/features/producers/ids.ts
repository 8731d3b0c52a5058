/**
 * Producer ids for exactly-once append: unique for the life of a data directory, from a durable
 * counter in `<dataDir>/producers/ids.snapshot` (a snapshot file, src/journal/snapshot.ts, holding
 * `{"next":N}`). Ids are reserved in blocks (one write + fsync per BLOCK ids, not per producer); a
 * restart skips the rest of the reserved block, so an id is never handed out twice even if the
 * broker dies right after handing it out. `ids.json` (the same JSON, unframed) of a data directory
 * from before is read once and moved to it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { WeirError } from '../../common/errors.js';
import { ErrorCode } from '../../protocol/codes.js';
import { jsonPayload, parseJsonPayload, readSnapshotSync, writeSnapshotSync, type FsyncPolicy, type SnapshotRead } from '../../journal/index.js';

const BLOCK = 1000;
export const PRODUCER_IDS_FILE = 'ids.snapshot';
/** The file before snapshot files (read once, then removed). */
export const LEGACY_PRODUCER_IDS_FILE = 'ids.json';
/**
 * Always durable (file and directory), whatever the broker's fsync policy: after a crash the
 * counter must never come back lower than an id already handed out, or two producers would share
 * an id (and one's batches be dropped as the other's duplicates). It costs one fsync per BLOCK ids.
 */
const DURABLE: FsyncPolicy = { mode: 'always' };

/** The `next` of a counter's JSON, or null. */
function nextOf(v: unknown): number | null {
  const next = (v as { next?: unknown } | null)?.next;
  return typeof next === 'number' && Number.isSafeInteger(next) && next >= 1 ? next : null;
}

export class ProducerIds {
  private next: number;
  private reservedUpTo: number;
  private readonly file: string;

  constructor(dir: string) {
    fs.mkdirSync(dir, { recursive: true });
    this.file = path.join(dir, PRODUCER_IDS_FILE);
    const legacy = {
      file: path.join(dir, LEGACY_PRODUCER_IDS_FILE),
      read: (f: string): Uint8Array | null => {
        let v: unknown;
        try {
          v = JSON.parse(fs.readFileSync(f, 'utf8'));
        } catch {
          return null;
        }
        const next = nextOf(v);
        return next === null ? null : jsonPayload({ next });
      },
    };
    let read: SnapshotRead;
    try {
      read = readSnapshotSync(this.file, { legacy, fsync: DURABLE });
    } catch (err) {
      throw new WeirError(ErrorCode.STORAGE_ERROR, `cannot read the producer id counter ${this.file}: ${(err as Error).message}`, { cause: err });
    }
    let start = 1;
    if (read.kind !== 'missing') {
      const next = read.kind === 'ok' ? nextOf(parseJsonPayload(read.payload)) : null;
      // Guessing would risk handing out an id twice: refuse to start, say which file.
      if (next === null) throw new WeirError(ErrorCode.STORAGE_ERROR, `cannot read the producer id counter ${this.file} (or ${legacy.file}): damaged`, read.kind === 'damaged' && read.error !== undefined ? { cause: read.error } : {});
      start = next;
    }
    this.next = start;
    this.reservedUpTo = start;
  }

  /** A fresh producer id. */
  allocate(): number {
    if (this.next >= this.reservedUpTo) this.reserve(this.next + BLOCK);
    return this.next++;
  }

  /**
   * Every id handed out so far is below this: a produce naming an id at or above it was not given
   * by init_producer (on this data directory) and is refused.
   */
  get highWater(): number {
    return this.next;
  }

  private reserve(upTo: number): void {
    try {
      writeSnapshotSync(this.file, jsonPayload({ next: upTo }), DURABLE);
    } catch (err) {
      const code = (err as { code?: string }).code;
      const weirCode = code === 'ENOSPC' || code === 'EDQUOT' ? ErrorCode.STORAGE_FULL : ErrorCode.STORAGE_ERROR;
      throw new WeirError(weirCode, `cannot reserve producer ids in ${this.file}: ${(err as Error).message}`, { cause: err, retryable: weirCode === ErrorCode.STORAGE_FULL });
    }
    this.reservedUpTo = upTo;
  }
}
