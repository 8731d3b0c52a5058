/**
 * The journal's on-disk entry (pure: bytes in, bytes out). Every entry of every side journal and
 * snapshot file is one frame:
 *
 *   offset  size  field
 *   0       4     magic  FF 57 4A 01  (0xFF never occurs in UTF-8, so a JSON payload cannot hold
 *                        it; "WJ"; format version 1)
 *   4       4     payload length, u32 little-endian
 *   8       4     CRC32C of the payload, u32 LE
 *   12      4     CRC32C of bytes 0..12 (the header), u32 LE: a damaged length is caught before
 *                 it is trusted, and a resync candidate is rejected without reading its payload
 *   16      n     payload (JSON text for most journals, binary for the scheduler's fired log)
 *
 * A file is frames back to back. Reading it (`scanFrames`) yields every frame that checks out;
 * bytes that do not are a damaged region when a good frame follows them (found by scanning for the
 * magic, like the log's resync), or a torn tail when none does (a write cut short by a crash).
 */
import { crc32c } from '../common/crc32c.js';

export const FRAME_HEADER_BYTES = 16;
export const FRAME_MAGIC: Uint8Array = Uint8Array.of(0xff, 0x57, 0x4a, 0x01);
/** Larger payloads are refused (a journal entry is a few KiB; a snapshot, MiBs). */
export const MAX_PAYLOAD_BYTES = 0x7fff_ffff;

/** One frame's bytes laid into `out` at `at`; returns the position after it. */
function putFrame(out: Uint8Array, at: number, payload: Uint8Array): number {
  if (payload.length > MAX_PAYLOAD_BYTES) throw new RangeError(`a journal entry of ${payload.length} bytes is larger than ${MAX_PAYLOAD_BYTES}`);
  const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out.set(FRAME_MAGIC, at);
  v.setUint32(at + 4, payload.length, true);
  v.setUint32(at + 8, crc32c(payload), true);
  v.setUint32(at + 12, crc32c(out, at, at + 12), true);
  out.set(payload, at + FRAME_HEADER_BYTES);
  return at + FRAME_HEADER_BYTES + payload.length;
}

/** The frames of `payloads`, back to back, in one buffer (one write). */
export function encodeFrames(payloads: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of payloads) n += FRAME_HEADER_BYTES + p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of payloads) at = putFrame(out, at, p);
  return out;
}

/** The payload length of a whole, good frame at `at`, or -1. */
export function frameAt(bytes: Uint8Array, at: number): number {
  if (at < 0 || at + FRAME_HEADER_BYTES > bytes.length) return -1;
  for (let i = 0; i < 4; i++) if (bytes[at + i] !== FRAME_MAGIC[i]) return -1;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint32(at + 12, true) !== crc32c(bytes, at, at + 12)) return -1;
  const length = v.getUint32(at + 4, true);
  const end = at + FRAME_HEADER_BYTES + length;
  if (end > bytes.length) return -1;
  if (v.getUint32(at + 8, true) !== crc32c(bytes, at + FRAME_HEADER_BYTES, end)) return -1;
  return length;
}

/** The first good frame at or after `from`, or -1. */
export function nextFrame(bytes: Uint8Array, from: number): number {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = view.indexOf(FRAME_MAGIC, from); at >= 0; at = view.indexOf(FRAME_MAGIC, at + 1)) {
    if (frameAt(bytes, at) >= 0) return at;
  }
  return -1;
}

export interface ScannedFrame {
  /** File position of the frame. */
  at: number;
  /** A view of the payload inside the scanned bytes. */
  payload: Uint8Array;
}

export interface DamagedRegion {
  at: number;
  bytes: number;
}

export interface FrameScan {
  frames: ScannedFrame[];
  /** Regions between good frames that are not frames (skipped), in file order. */
  damaged: DamagedRegion[];
  /** Where the last good frame ends: bytes after it are a torn tail (no good frame follows). */
  end: number;
}

/** Every good frame of `bytes`, the damaged regions between them, and where a torn tail starts. */
export function scanFrames(bytes: Uint8Array): FrameScan {
  const frames: ScannedFrame[] = [];
  const damaged: DamagedRegion[] = [];
  let at = 0;
  while (at < bytes.length) {
    const length = frameAt(bytes, at);
    if (length >= 0) {
      frames.push({ at, payload: bytes.subarray(at + FRAME_HEADER_BYTES, at + FRAME_HEADER_BYTES + length) });
      at += FRAME_HEADER_BYTES + length;
      continue;
    }
    const next = nextFrame(bytes, at + 1);
    if (next < 0) break;
    damaged.push({ at, bytes: next - at });
    at = next;
  }
  return { frames, damaged, end: at };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** A JSON payload. */
export function jsonPayload(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

/** The value of a JSON payload, or undefined when it is not JSON (a frame written by a bug). */
export function parseJsonPayload(payload: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(payload)) as unknown;
  } catch {
    return undefined;
  }
}
