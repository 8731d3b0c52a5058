/**
 * Watch `weir:journal:sync` (src/journal/io.ts) in this thread: every journal fdatasync,
 * in order, interleaved with the test's own marks (e.g. when an answer arrived), so a test can say
 * "the sync came before the answer" without mocking fs.
 */
import diagnostics_channel from 'node:diagnostics_channel';
import fs from 'node:fs';

export interface SyncEvent {
  kind: 'sync';
  file: string;
  /** The file's size when the sync was published (what that sync made durable, at least). */
  size: number;
}
export interface MarkEvent {
  kind: 'mark';
  label: string;
}

export class JournalSyncs {
  readonly events: Array<SyncEvent | MarkEvent> = [];
  private readonly listener = (m: unknown): void => {
    const file = (m as { file: string }).file;
    let size = -1;
    try {
      size = fs.statSync(file).size;
    } catch {
      // renamed away or removed meanwhile
    }
    this.events.push({ kind: 'sync', file, size });
  };

  constructor() {
    diagnostics_channel.subscribe('weir:journal:sync', this.listener);
  }

  mark(label: string): void {
    this.events.push({ kind: 'mark', label });
  }

  /** Syncs of `file` so far. */
  of(file: string): SyncEvent[] {
    return this.events.filter((e): e is SyncEvent => e.kind === 'sync' && e.file === file);
  }

  /** Syncs of `file` published before the mark `label` (-1 when the mark is missing). */
  before(file: string, label: string): number {
    const at = this.events.findIndex((e) => e.kind === 'mark' && e.label === label);
    if (at < 0) return -1;
    return this.events.slice(0, at).filter((e) => e.kind === 'sync' && e.file === file).length;
  }

  /** The last sync of `file` published before the mark `label`, if any. */
  lastBefore(file: string, label: string): SyncEvent | undefined {
    const at = this.events.findIndex((e) => e.kind === 'mark' && e.label === label);
    return this.events.slice(0, at < 0 ? 0 : at).filter((e): e is SyncEvent => e.kind === 'sync' && e.file === file).at(-1);
  }

  stop(): void {
    diagnostics_channel.unsubscribe('weir:journal:sync', this.listener);
  }
}
