/**
 * Committed consumer-group offsets, durable across broker restarts: an append-only file of
 * fixed-shape JSON lines, replayed at start and compacted into a snapshot when it grows. Writes
 * are synchronous (the main thread commits in batches; one write per batch) and fdatasync'ed when
 * the broker's fsync policy is `always`. A torn last line (crash mid-write) is ignored at replay.
 */
import fs from 'node:fs';
import { writeFileAtomic } from '../../common/atomic-file.js';
import path from 'node:path';

type Key = string; // `${group}\u0000${topic}\u0000${partition}`

export class OffsetStore {
  private readonly offsets = new Map<Key, number>();
  private fd: number;
  private lines = 0;
  private readonly file: string;

  constructor(dir: string, private readonly syncEachWrite: boolean) {
    fs.mkdirSync(dir, { recursive: true });
    this.file = path.join(dir, 'offsets.jsonl');
    if (fs.existsSync(this.file)) {
      for (const line of fs.readFileSync(this.file, 'utf8').split('\n')) {
        if (!line) continue;
        try {
          const [g, t, p, o] = JSON.parse(line) as [string, string, number, number];
          this.offsets.set(key(g, t, p), o);
          this.lines++;
        } catch {
          // torn tail from a crash mid-write: the commit it held was never acknowledged
        }
      }
    }
    this.fd = fs.openSync(this.file, 'a');
    if (this.lines > 4 * Math.max(1024, this.offsets.size)) this.compact();
  }

  get(group: string, topic: string, partition: number): number | undefined {
    return this.offsets.get(key(group, topic, partition));
  }

  /** Store several commits with one write. */
  commit(group: string, topic: string, entries: ReadonlyArray<readonly [number, number]>): void {
    let text = '';
    for (const [p, o] of entries) {
      this.offsets.set(key(group, topic, p), o);
      text += JSON.stringify([group, topic, p, o]) + '\n';
    }
    if (!text) return;
    fs.writeSync(this.fd, text);
    if (this.syncEachWrite) fs.fdatasyncSync(this.fd);
    this.lines += entries.length;
    if (this.lines > 4 * Math.max(1024, this.offsets.size)) this.compact();
  }

  close(): void {
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
  }

  /** Rewrite as one line per key: write a temp file, fsync, rename over, fsync the directory. */
  private compact(): void {
    let text = '';
    for (const [k, o] of this.offsets) {
      const [g, t, p] = k.split('\u0000') as [string, string, string];
      text += JSON.stringify([g, t, Number(p), o]) + '\n';
    }
    fs.closeSync(this.fd);
    writeFileAtomic(this.file, text, { durable: true });
    this.fd = fs.openSync(this.file, 'a');
    this.lines = this.offsets.size;
  }
}

function key(group: string, topic: string, partition: number): Key {
  return `${group}\u0000${topic}\u0000${partition}`;
}
