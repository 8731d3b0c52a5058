/**
 * The producer bindings (`<dataDir>/producers/bindings.journal`), beside the id counter (ids.ts):
 * a journal (src/journal/) of one JSON entry per init_producer or reclaim (`{p, e, h, t}`: id,
 * epoch, SHA-256 of the secret, time), so a client can reclaim its id after a broker restart, a
 * crash or a SIGKILL.
 *
 * Durable per the broker's fsync policy: `append` resolves once the entry reached the OS (`never`),
 * and also an fdatasync under `always`; under `interval:MS` an fdatasync follows within MS. Group
 * commit: entries appended in one event-loop turn share one write and one fdatasync. At open the
 * file is replayed (a torn tail cut, a damaged entry skipped and reported, the damaged file kept as
 * `bindings.journal.damaged-<ms>`) and rewritten with what the registry keeps (compaction); the
 * feature rewrites it again when it has grown past twice the live bindings, and with the bindings'
 * last-use times hourly and at close. No synchronous IO after open.
 *
 * A failed write is cut back by the journal, so later entries never follow a torn one; if even that
 * fails, every later append is refused (STORAGE_ERROR) until a restart.
 *
 * The format before the journal, `bindings.log` (a CRC'd JSON line per entry, `decodeLines`), is
 * read once and rewritten as the journal.
 */
import fs from 'node:fs';
import path from 'node:path';
import { crc32c } from '../../common/crc32c.js';
import { WeirError } from '../../common/errors.js';
import { ErrorCode } from '../../protocol/codes.js';
import { Journal, jsonPayload, parseJsonPayload, type FsyncPolicy } from '../../journal/index.js';
import type { BindingEntry } from './registry.js';

export const BINDINGS_FILE = 'bindings.journal';
/** The line format before the journal (read once, then removed). */
export const LEGACY_BINDINGS_FILE = 'bindings.log';

const encoder = new TextEncoder();

/** A line of the format before the journal: CRC32C of the JSON (8 hex digits), a space, the JSON. */
export function encodeLine(entry: BindingEntry): string {
  const json = JSON.stringify(entry);
  return `${crc32c(encoder.encode(json)).toString(16).padStart(8, '0')} ${json}\n`;
}

/** The good prefix of a file of the line format: its entries, its length in bytes, and whether anything followed it. */
export function decodeLines(bytes: Uint8Array): { entries: BindingEntry[]; validBytes: number; torn: boolean } {
  const entries: BindingEntry[] = [];
  let at = 0;
  while (at < bytes.length) {
    const nl = bytes.indexOf(0x0a, at);
    if (nl < 0) return { entries, validBytes: at, torn: true };
    const head = Buffer.from(bytes.buffer, bytes.byteOffset + at, Math.min(9, nl - at)).toString('latin1');
    const json = bytes.subarray(at + 9, nl);
    if (nl - at <= 9 || head[8] !== ' ' || !/^[0-9a-f]{8} $/.test(head) || parseInt(head.slice(0, 8), 16) !== crc32c(json)) {
      return { entries, validBytes: at, torn: true };
    }
    try {
      entries.push(JSON.parse(Buffer.from(json.buffer, json.byteOffset, json.length).toString('utf8')) as BindingEntry);
    } catch {
      return { entries, validBytes: at, torn: true };
    }
    at = nl + 1;
  }
  return { entries, validBytes: at, torn: false };
}

function entryOf(v: unknown): BindingEntry | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const e = v as Partial<BindingEntry>;
  return Number.isSafeInteger(e.p) && Number.isSafeInteger(e.e) && typeof e.h === 'string' ? (v as BindingEntry) : undefined;
}

/** The entries of a `bindings.log` up to its first bad line (a damaged one with lines after it is kept as a copy, as before). */
function readLegacy(file: string): Uint8Array[] {
  const bytes = fs.readFileSync(file);
  const { entries, validBytes, torn } = decodeLines(bytes);
  if (torn && bytes.subarray(validBytes, bytes.length - 1).includes(0x0a)) {
    const kept = `${file}.damaged-${Date.now()}`;
    fs.copyFileSync(file, kept);
    console.error(`weir producers: ${file} is damaged at byte ${validBytes} with lines after it; replayed up to there, the original is kept as ${kept}`);
  }
  return entries.map((e) => jsonPayload(e));
}

export class BindingLog {
  /** Entries appended since the file was last rewritten. */
  linesSinceRewrite = 0;

  private constructor(
    readonly file: string,
    private readonly journal: Journal,
  ) {}

  /** Replay the file in `dir`, rewrite it to `snapshot(entries)` and open it for appending. */
  static async open(dir: string, fsyncPolicy: FsyncPolicy, snapshot: (entries: BindingEntry[]) => BindingEntry[]): Promise<BindingLog> {
    const file = path.join(dir, BINDINGS_FILE);
    let opened;
    try {
      opened = Journal.open(
        {
          file,
          fsync: fsyncPolicy,
          io: 'async',
          legacy: { file: path.join(dir, LEGACY_BINDINGS_FILE), read: readLegacy },
          keepDamaged: true,
          onSyncError: (err) => console.error(`weir producers: fdatasync of ${file} failed: ${err.message}`),
        },
        (payload) => entryOf(parseJsonPayload(payload)),
      );
    } catch (err) {
      throw new WeirError(ErrorCode.STORAGE_ERROR, `cannot read the producer bindings ${file}: ${(err as Error).message}`, { cause: err });
    }
    // Start-up: nobody is served yet, so the synchronous atomic replace is fine here.
    opened.journal.replaceSync(snapshot(opened.entries).map((e) => jsonPayload(e)));
    return new BindingLog(file, opened.journal);
  }

  /** fdatasyncs of appended entries (under `always`, the interval timer, close): tests observe the policy with it. */
  get syncs(): number {
    return this.journal.syncs;
  }

  /** Queue an entry; resolves once it is written (and synced, per the policy). */
  append(entry: BindingEntry): Promise<void> {
    const done = this.journal.append(jsonPayload(entry));
    this.linesSinceRewrite++;
    return done;
  }

  /**
   * Replace the file with `snapshot()` (temp file, fdatasync, rename, directory fsync; the syncs
   * unless the policy is never). Taken after every earlier write finished; entries queued meanwhile
   * go to the new file after it.
   */
  async rewrite(snapshot: () => BindingEntry[]): Promise<void> {
    await this.journal.replace(() => snapshot().map((e) => jsonPayload(e)));
    this.linesSinceRewrite = 0;
  }

  async close(): Promise<void> {
    try {
      await this.journal.close();
    } catch (err) {
      console.error(`weir producers: closing ${this.file}: ${(err as Error).message}`);
    }
  }
}
