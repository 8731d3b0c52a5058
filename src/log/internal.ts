/** Test surface (nats.js `internal_mod.ts` style): the pure pieces and the file layout. */
export * from './index.js';
export { SparseIndex, INDEX_ENTRY_BYTES } from './sparse-index.js';
export { scanChunk, newCursor, type ScanCursor, type ScanStop } from './scan.js';
export { segmentName, parseSegmentName, findSegment, needsIndexEntry, LOG_SUFFIX, INDEX_SUFFIX, CLEAN_SHUTDOWN_FILE, SYNCED_BELOW_FILE } from './layout.js';
export { recoverLog } from './recovery.js';
export { MemoryLog, type MemoryLogOptions } from './memory-log.js';
