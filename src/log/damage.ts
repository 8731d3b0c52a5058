/**
 * A partition's damage record: the byte regions of its segments that failed their checks (CRC,
 * framing, offset sequence) and the offsets lost with them, kept in `<dir>/.weir-damage` so that
 * what was found survives restarts, and consulted by every read so that a damaged region is skipped
 * with a report instead of served or re-scanned.
 *
 * The file holds one JSON object per line, appended and fdatasync'ed as damage is found (rare);
 * a line that does not parse (a torn append) is skipped at load. Entries below the log start
 * (retention deleted their segment) are dropped by rewriting the file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../common/atomic-file.js';
import { storageErrorFrom } from './errors.js';

export const DAMAGE_FILE = '.weir-damage';

/**
 * Why a region was judged damaged: a record failed its CRC, magic or length check (CORRUPT), carried
 * an unexpected offset (OUT_OF_SEQUENCE), or its length ran past the end of the segment (TORN).
 */
export type DamageReason = 'CORRUPT' | 'OUT_OF_SEQUENCE' | 'TORN';

export interface DamagedRange {
  /**
   * `damaged`: offsets [from, to) are lost and never delivered; reads skip them with a report.
   * `truncated`: recovery cut the torn tail of the last segment at `position` (`bytes` bytes); the
   * log continues at `from`, so those offsets are written again (truncate-and-report).
   */
  kind: 'damaged' | 'truncated';
  /** Base offset of the segment (its file name). */
  segment: number;
  /** File position of the first damaged byte. */
  position: number;
  /** File position of the first good record after the damage (or the segment's end). */
  resumePosition: number;
  bytes: number;
  /** First offset lost. */
  from: number;
  /** First offset after the damage (exclusive); = from for a truncation. */
  to: number;
  reason: DamageReason;
  /** Found while opening the log (`recovery`), serving a read (`read`), or by `weir verify`. */
  detectedBy: 'recovery' | 'read' | 'verify';
  /** When it was found (ms since the epoch). */
  at: number;
}

/** The damaged ranges of one partition, in memory, sorted by `from` (pure: no IO). */
export class DamageMap {
  private ranges: DamagedRange[] = [];

  get all(): readonly DamagedRange[] {
    return this.ranges;
  }

  /** Lost-offset ranges only (kind `damaged`). */
  get size(): number {
    return this.ranges.length;
  }

  /** Add unless the same region is known; returns whether it was new. */
  add(r: DamagedRange): boolean {
    if (this.ranges.some((x) => x.kind === r.kind && x.segment === r.segment && x.position === r.position && x.from === r.from)) return false;
    let i = this.ranges.length;
    while (i > 0 && this.ranges[i - 1]!.from > r.from) i--;
    this.ranges.splice(i, 0, r);
    return true;
  }

  /** The damaged range holding `offset`, or null (the read path's check: O(1) when there is none). */
  find(offset: number): DamagedRange | null {
    const rs = this.ranges;
    for (let i = 0; i < rs.length; i++) {
      const r = rs[i]!;
      if (r.kind === 'damaged' && r.from <= offset && offset < r.to) return r;
    }
    return null;
  }

  /** The first lost offset above `offset` (the start of the next damaged range), or Infinity. */
  nextFrom(offset: number): number {
    let next = Infinity;
    for (const r of this.ranges) if (r.kind === 'damaged' && r.from > offset && r.from < next) next = r.from;
    return next;
  }

  /**
   * Where a walk from record `offset` at `position` of segment `segment` toward `target` may jump
   * to: past every damaged range of that segment lying wholly in [offset, target]. Returns the
   * position and offset to continue from (unchanged when none applies).
   */
  skip(segment: number, position: number, offset: number, target: number): { position: number; offset: number } {
    for (const r of this.ranges) {
      if (r.kind !== 'damaged' || r.segment !== segment) continue;
      if (r.from >= offset && r.to <= target && r.resumePosition > position) {
        position = r.resumePosition;
        offset = r.to;
      }
    }
    return { position, offset };
  }

  /** Drop ranges wholly below `logStart`; returns whether any went. */
  prune(logStart: number): boolean {
    const before = this.ranges.length;
    this.ranges = this.ranges.filter((r) => (r.kind === 'damaged' ? r.to > logStart : r.from >= logStart));
    return this.ranges.length !== before;
  }
}

/** Parse the damage file's text: every line that is a well-formed range, others skipped. */
export function parseDamage(text: string): DamagedRange[] {
  const out: DamagedRange[] = [];
  for (const line of text.split('\n')) {
    if (line.length === 0) continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      continue; // a torn append
    }
    if (isDamagedRange(v)) out.push(v);
  }
  return out;
}

function isDamagedRange(v: unknown): v is DamagedRange {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  const ints = ['segment', 'position', 'resumePosition', 'bytes', 'from', 'to', 'at'];
  return (o.kind === 'damaged' || o.kind === 'truncated') && ints.every((k) => Number.isSafeInteger(o[k]) && (o[k] as number) >= 0) && typeof o.reason === 'string' && typeof o.detectedBy === 'string';
}

/** The damage record of a partition directory: the map plus its file. */
export class DamageRecord {
  readonly map = new DamageMap();
  private readonly file: string;

  constructor(dir: string) {
    this.file = path.join(dir, DAMAGE_FILE);
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw storageErrorFrom(err, 'read', this.file);
    }
    for (const r of parseDamage(text)) this.map.add(r);
  }

  /**
   * Record a range (durably) unless already known; returns whether it was new. A failed write of
   * the file does not throw (the damage is still in memory and reported; the next open finds it
   * again): it is returned as `writeError` for the caller to report.
   */
  add(r: DamagedRange): { added: boolean; writeError: unknown } {
    if (!this.map.add(r)) return { added: false, writeError: null };
    let fd = -1;
    try {
      fd = fs.openSync(this.file, 'a');
      fs.writeSync(fd, JSON.stringify(r) + '\n');
      fs.fdatasyncSync(fd);
      return { added: true, writeError: null };
    } catch (err) {
      return { added: true, writeError: storageErrorFrom(err, 'write', this.file) };
    } finally {
      if (fd >= 0) fs.closeSync(fd);
    }
  }

  /** Forget ranges below the log start (their segments were deleted). */
  prune(logStart: number): void {
    if (!this.map.prune(logStart)) return;
    try {
      if (this.map.all.length === 0) fs.rmSync(this.file, { force: true });
      else writeFileAtomic(this.file, this.map.all.map((r) => JSON.stringify(r) + '\n').join(''), { durable: true });
    } catch (err) {
      throw storageErrorFrom(err, 'write', this.file);
    }
  }
}
