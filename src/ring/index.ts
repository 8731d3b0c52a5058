/**
 * Public surface of the shared-memory ring: a wait-free SPSC ring of variable-length records
 * (spsc.ts), its wait/notify doorbell (doorbell.ts), the memory layout (layout.ts) and typed errors.
 *
 * One ring per direction. The owner creates it and passes the SharedArrayBuffer in `workerData`
 * (shared, not copied); each thread builds its own RingWriter or RingReader and Doorbell over it.
 */

export { createRing, ringCapacity, frameBytes, maxPayloadBytes, MIN_CAPACITY, MAX_CAPACITY, HEADER_BYTES } from './layout.js';
export { RingWriter, RingReader } from './spsc.js';
export { Doorbell, ProducerDoorbell, ConsumerDoorbell, closeRing, type WaitResult } from './doorbell.js';
export {
  RingError,
  RingErrorCode,
  RingRecordTooLargeError,
  RingClosedError,
  RingTimeoutError,
  RingStateError,
  RingLayoutError,
  RingCorruptError,
} from './errors.js';
export { ThreadBell, createThreadBell } from './thread-bell.js';
