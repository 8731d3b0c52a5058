/**
 * Public surface of the journal module: the one durable journal every side journal is built on
 * (journal.ts), snapshot files (snapshot.ts), the frame format both use (frame.ts), and the sync
 * notification (`weir:journal:sync`, io.ts).
 */
export { Journal, MAX_REPORTED_POSITIONS } from './journal.js';
export type { FsyncPolicy, JournalOptions, JournalRecovery, JournalSkipped, LegacyFormat } from './journal.js';
export { readSnapshotSync, writeSnapshotSync } from './snapshot.js';
export type { LegacySnapshot, SnapshotRead } from './snapshot.js';
export { readJournalFile } from './read.js';
export type { JournalContents } from './read.js';
export { encodeFrames, scanFrames, jsonPayload, parseJsonPayload, FRAME_HEADER_BYTES, FRAME_MAGIC } from './frame.js';
export type { DamagedRegion, FrameScan, ScannedFrame } from './frame.js';
export type { JournalSync } from './io.js';
