/**
 * Reading a journal file without opening it for writes (tools, tests, a feature's replay before it
 * opens its journal): its good payloads and what is wrong with it. Nothing is cut or migrated.
 */
import fs from 'node:fs';
import { scanFrames, type DamagedRegion } from './frame.js';

export interface JournalContents {
  payloads: Uint8Array[];
  damaged: DamagedRegion[];
  /** Bytes after the last good entry (a torn tail). */
  tornBytes: number;
}

/** The journal in `file` (empty when there is none). */
export function readJournalFile(file: string): JournalContents {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { payloads: [], damaged: [], tornBytes: 0 };
    throw err;
  }
  const scan = scanFrames(bytes);
  return { payloads: scan.frames.map((f) => f.payload), damaged: scan.damaged, tornBytes: bytes.length - scan.end };
}
