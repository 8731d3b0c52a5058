/**
 * The CBOR envelope codec shared by the gateway and the SDK. `useRecords: false` keeps frames plain
 * CBOR maps any language can read (cbor-x's record extension is cbor-x-only). Byte strings decode as
 * views of the input: the gateway copies what it keeps before its uWS callback returns.
 */
import { Encoder } from 'cbor-x';

const codec = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false, variableMapSize: true });

export function encodeFrame(frame: object): Uint8Array {
  return codec.encode(frame);
}

export function decodeFrame(bytes: Uint8Array): unknown {
  return codec.decode(bytes);
}
