/**
 * Test surface of the ring module (like nats.js `internal_mod.ts`). Not part of the public API:
 * these helpers poke the shared header directly and are only safe before a writer/reader exists.
 */

import { Slot, headerView } from './layout.js';

export { Slot, HEADER_BYTES, HEADER_SLOTS, headerView } from './layout.js';

/**
 * Start a fresh ring at `position` instead of 0 (both indexes), e.g. just below 2^32 to test the
 * counter wrap. Call BEFORE constructing the RingWriter/RingReader: they load the positions once.
 */
export function presetPositions(sab: SharedArrayBuffer, position: number): void {
  const header = headerView(sab);
  Atomics.store(header, Slot.WRITE_INDEX, position | 0);
  Atomics.store(header, Slot.READ_INDEX, position | 0);
}

/** Read one header slot as an unsigned number (positions) or flag. */
export function readSlot(sab: SharedArrayBuffer, slot: Slot): number {
  return Atomics.load(headerView(sab), slot) >>> 0;
}
