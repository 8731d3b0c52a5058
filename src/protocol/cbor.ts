/**
 * The CBOR envelope codec shared by the gateway and the SDK. `useRecords: false` keeps frames plain
 * CBOR maps any language can read (cbor-x's record extension is cbor-x-only). Byte strings decode as
 * views of the input: the gateway copies what it keeps before its uWS callback returns.
 */
import { Encoder } from 'cbor-x';
import { decodePlainFrame } from './plain-frame-decoder.js';

const codec = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false, variableMapSize: true });

export function encodeFrame(frame: object): Uint8Array {
  return codec.encode(frame);
}

/** A frame: the common plain maps without cbor-x (plain-frame-decoder.ts), anything else with it. */
export function decodeFrame(bytes: Uint8Array): unknown {
  return decodePlainFrame(bytes) ?? codec.decode(bytes);
}

/** cbor-x alone, as decodeFrame falls back to (the plain decoder's test compares the two). */
export function decodeFrameWithCborX(bytes: Uint8Array): unknown {
  return codec.decode(bytes);
}
