/** The journal's frame, byte by byte: every cut is a torn tail, every flipped byte is caught, resync finds the next frame. */
import { expect, it } from 'vitest';
import { encodeFrames, FRAME_HEADER_BYTES, jsonPayload, parseJsonPayload, scanFrames } from '../../src/journal/frame.js';

const text = (p: Uint8Array): string => new TextDecoder().decode(p);
const payloads = ['{"a":1}', '["g","t",0,12]', '', 'x'.repeat(300)].map((s) => new TextEncoder().encode(s));

it('reads back what it wrote, frames back to back', () => {
  const bytes = encodeFrames(payloads);
  expect(bytes.length).toBe(payloads.reduce((n, p) => n + FRAME_HEADER_BYTES + p.length, 0));
  const scan = scanFrames(bytes);
  expect(scan.frames.map((f) => text(f.payload))).toEqual(payloads.map(text));
  expect(scan.damaged).toEqual([]);
  expect(scan.end).toBe(bytes.length);
});

it('a file cut at any byte keeps the whole frames before the cut and reports the rest as a torn tail', () => {
  const bytes = encodeFrames(payloads.slice(0, 2));
  const first = FRAME_HEADER_BYTES + payloads[0]!.length;
  for (let cut = 0; cut < bytes.length; cut++) {
    const scan = scanFrames(bytes.subarray(0, cut));
    const whole = cut >= first ? 1 : 0;
    expect(scan.frames.length).toBe(whole);
    expect(scan.damaged).toEqual([]);
    expect(scan.end).toBe(whole === 1 ? first : 0);
  }
});

it('a flipped byte anywhere in a middle frame skips that frame alone, reported as a damaged region', () => {
  const bytes = encodeFrames(payloads);
  const at = FRAME_HEADER_BYTES + payloads[0]!.length;
  const size = FRAME_HEADER_BYTES + payloads[1]!.length;
  for (let i = 0; i < size; i++) {
    const damaged = bytes.slice();
    damaged[at + i]! ^= 0x40;
    const scan = scanFrames(damaged);
    expect(scan.frames.map((f) => text(f.payload))).toEqual([payloads[0]!, payloads[2]!, payloads[3]!].map(text));
    expect(scan.damaged).toEqual([{ at, bytes: size }]);
    expect(scan.end).toBe(bytes.length);
  }
});

it('zeroed blocks and garbage between frames are skipped; a damaged last frame is a torn tail', () => {
  const a = encodeFrames(payloads.slice(0, 1));
  const b = encodeFrames(payloads.slice(1, 2));
  const garbage = new Uint8Array(100); // a zeroed block
  garbage.set([0xff, 0x57, 0x4a, 0x01], 40); // even a magic inside it: its header CRC does not check out
  const joined = new Uint8Array([...a, ...garbage, ...b]);
  const scan = scanFrames(joined);
  expect(scan.frames.map((f) => f.at)).toEqual([0, a.length + garbage.length]);
  expect(scan.damaged).toEqual([{ at: a.length, bytes: garbage.length }]);
  const lastDamaged = joined.slice();
  lastDamaged[joined.length - 1]! ^= 1;
  expect(scanFrames(lastDamaged).end).toBe(a.length);
});

it('JSON payloads: a payload that is not JSON reads as undefined', () => {
  expect(parseJsonPayload(jsonPayload({ w: 1, d: [0, 5] }))).toEqual({ w: 1, d: [0, 5] });
  expect(parseJsonPayload(new TextEncoder().encode('{"w":'))).toBeUndefined();
  expect(parseJsonPayload(Uint8Array.of(0xff, 0xfe))).toBeUndefined();
});
