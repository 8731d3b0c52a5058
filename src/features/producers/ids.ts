/**
 * Producer ids for exactly-once append: unique for the life of a data directory, from a durable
 * counter in `<dataDir>/producers/ids.json`. Ids are reserved in blocks (one write + fsync per
 * BLOCK ids, not per producer); a restart skips the rest of the reserved block, so an id is never
 * handed out twice even if the broker dies right after handing it out.
 */
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../common/atomic-file.js';
import { WeirError } from '../../common/errors.js';
import { ErrorCode } from '../../protocol/codes.js';

const BLOCK = 1000;
export const PRODUCER_IDS_FILE = 'ids.json';

export class ProducerIds {
  private next: number;
  private reservedUpTo: number;
  private readonly file: string;

  constructor(dir: string) {
    fs.mkdirSync(dir, { recursive: true });
    this.file = path.join(dir, PRODUCER_IDS_FILE);
    let start = 1;
    try {
      const o = JSON.parse(fs.readFileSync(this.file, 'utf8')) as { next?: unknown };
      if (typeof o.next === 'number' && Number.isSafeInteger(o.next) && o.next >= 1) start = o.next;
      else throw new Error(`${this.file}: "next" is not a positive integer`);
    } catch (err) {
      if ((err as { code?: string }).code !== 'ENOENT') {
        throw new WeirError(ErrorCode.STORAGE_ERROR, `cannot read the producer id counter ${this.file}: ${(err as Error).message}`, { cause: err });
      }
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
      // Durable (file and directory): after a crash the counter must never come back lower than
      // an id already handed out, or two producers would share an id.
      writeFileAtomic(this.file, JSON.stringify({ next: upTo }), { durable: true });
    } catch (err) {
      const code = (err as { code?: string }).code;
      const weirCode = code === 'ENOSPC' || code === 'EDQUOT' ? ErrorCode.STORAGE_FULL : ErrorCode.STORAGE_ERROR;
      throw new WeirError(weirCode, `cannot reserve producer ids in ${this.file}: ${(err as Error).message}`, { cause: err, retryable: weirCode === ErrorCode.STORAGE_FULL });
    }
    this.reservedUpTo = upTo;
  }
}
