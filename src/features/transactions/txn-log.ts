/**
 * The transaction log (`<dataDir>/transactions/txn.journal`): the durable half of the coordinator,
 * a journal (src/journal/) with one JSON entry per begin, half-message range, decision and apply
 * step. Group commit: entries appended during one event-loop turn share one write and, under the
 * broker's fsync policy, one fdatasync; `append` resolves once its entry is durable that way.
 * At open the log is replayed (a torn tail cut, a damaged entry skipped and reported, the damaged
 * file kept as `txn.journal.damaged-<ms>` for an operator) and rewritten with only what is still
 * unfinished (compaction), which bounds it.
 *
 * No synchronous IO after open: writes, fdatasyncs and run-time compactions are asynchronous, so
 * the gateway's thread keeps serving other clients meanwhile.
 *
 * A failed write or fdatasync is cut back by the journal (the failed entries are rejected with
 * STORAGE_FULL / STORAGE_ERROR; their callers never applied them); if even that fails, the log
 * refuses every later append (STORAGE_ERROR) until the broker restarts, rather than let memory and
 * disk diverge.
 *
 * The format before the journal, `txn.log` (a CRC'd JSON line per entry, book.ts `decodeLog`), is
 * read once and rewritten as the journal; replay of it stops at its first bad line, as it did.
 */
import fs from 'node:fs';
import path from 'node:path';
import { channels } from '../../common/diagnostics.js';
import { crc32c } from '../../common/crc32c.js';
import { storageErrorFrom } from '../../log/errors.js';
import { Journal, jsonPayload, parseJsonPayload, type FsyncPolicy } from '../../journal/index.js';
import { decodeLog, type TxnLogEntry } from './book.js';
import { testHooks } from './internal.js';

export const TXN_LOG_FILE = 'txn.journal';
/** The line format before the journal (read once, then removed). */
export const LEGACY_TXN_LOG_FILE = 'txn.log';

/**
 * `weir:txn:error` `{ txn, op, error }`: background work of transactions failed and will be retried
 * (op `apply`: a committed transaction's apply; `timeout`: a timeout rollback; `check`: a checker
 * push; `compact`: a log compaction; `sync`: the periodic fdatasync under `--fsync interval`).
 * Nothing is thrown from timers: a transaction stays in its last durable state and is retried.
 */
export const txnErrorChannel = channels.txnError;

function entryOf(v: unknown): TxnLogEntry | undefined {
  return typeof v === 'object' && v !== null && typeof (v as { e?: unknown }).e === 'string' ? (v as TxnLogEntry) : undefined;
}

/** The entries of a `txn.log` up to its first bad line (a damaged one with lines after it is kept as a copy, as before). */
function readLegacy(file: string): Uint8Array[] {
  const bytes = fs.readFileSync(file);
  const { entries, torn, validBytes } = decodeLog(bytes.toString('utf8'), (b) => crc32c(b));
  if (torn && bytes.subarray(validBytes, bytes.length - 1).includes(0x0a)) {
    const kept = `${file}.damaged-${Date.now()}`;
    fs.copyFileSync(file, kept);
    console.error(`weir transactions: ${file} is damaged at byte ${validBytes} with entries after it; replayed up to there, the original is kept as ${kept}`);
  }
  return entries.map((e) => jsonPayload(e));
}

export class TxnLog {
  private constructor(
    readonly file: string,
    private readonly journal: Journal,
  ) {}

  /** Replay the log at `dir`, compact it to `snapshot(entries)` and open it for appending. */
  static async open(dir: string, fsyncPolicy: FsyncPolicy, snapshot: (entries: TxnLogEntry[]) => TxnLogEntry[]): Promise<{ log: TxnLog; entries: TxnLogEntry[]; torn: boolean }> {
    const file = path.join(dir, TXN_LOG_FILE);
    const { journal, entries, recovery } = Journal.open(
      {
        file,
        fsync: fsyncPolicy,
        io: 'async',
        legacy: { file: path.join(dir, LEGACY_TXN_LOG_FILE), read: readLegacy },
        keepDamaged: true,
        // Under 'interval' nothing else would ever notice: report it (it is tried again next interval).
        onSyncError: (error) => {
          if (txnErrorChannel.hasSubscribers) txnErrorChannel.publish({ txn: null, op: 'sync', error });
        },
      },
      (payload) => entryOf(parseJsonPayload(payload)),
    );
    // Start-up: nobody is served yet, so the synchronous atomic replace is fine here.
    journal.replaceSync(snapshot(entries).map((e) => jsonPayload(e)));
    return { log: new TxnLog(file, journal), entries, torn: recovery.skipped > 0 || recovery.truncatedBytes > 0 };
  }

  /** Queue an entry; resolves once it is written (and synced, per the policy). */
  append(entry: TxnLogEntry): Promise<void> {
    const payload = jsonPayload(entry);
    if (testHooks.beforeLogWrite) {
      try {
        testHooks.beforeLogWrite([new TextDecoder().decode(payload)]);
      } catch (err) {
        return Promise.reject(storageErrorFrom(err, 'write', this.file));
      }
    }
    return this.journal.append(payload);
  }

  /**
   * Replace the file's content with `snapshot()` (atomically: temp file, fsync, rename). The
   * snapshot is taken after every earlier write finished and its waiters ran (the state they
   * applied is in it); appends queued meanwhile are written to the new file after it.
   */
  rewrite(snapshot: () => TxnLogEntry[]): Promise<void> {
    return this.journal.replace(() => snapshot().map((e) => jsonPayload(e)));
  }

  /** Write what is queued, sync per the policy and close; a failed last sync is reported, not thrown. */
  async close(): Promise<void> {
    try {
      await this.journal.close();
    } catch (error) {
      if (txnErrorChannel.hasSubscribers) txnErrorChannel.publish({ txn: null, op: 'sync', error });
    }
  }
}
