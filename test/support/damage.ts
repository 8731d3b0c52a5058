/**
 * Damaging a partition's files the way a failing disk would, for tests of what the broker serves
 * afterwards: where each stored record of a segment file lies, and changing bytes in place.
 */
import fs from 'node:fs';
import path from 'node:path';
import { F_KEY_LENGTH, RECORD_HEADER_BYTES, readU32, recordOffset } from '../../src/protocol/record.js';

export interface StoredRecord {
  /** File position. */
  at: number;
  size: number;
  offset: number;
  /** File position of its value bytes. */
  valueAt: number;
}

/** The records of an intact segment file, in order. */
export function storedRecords(file: string): StoredRecord[] {
  const b = new Uint8Array(fs.readFileSync(file));
  const out: StoredRecord[] = [];
  for (let at = 0; at + RECORD_HEADER_BYTES <= b.length; at += 4 + readU32(b, at)) {
    const keyLength = readU32(b, at + F_KEY_LENGTH) | 0;
    out.push({ at, size: 4 + readU32(b, at), offset: recordOffset(b, at), valueAt: at + RECORD_HEADER_BYTES + Math.max(0, keyLength) });
  }
  return out;
}

/** The segment files (.log) of a partition directory, oldest first. */
export function segmentFiles(partitionDir: string): string[] {
  return fs.readdirSync(partitionDir).filter((n) => n.endsWith('.log')).sort().map((n) => path.join(partitionDir, n));
}

/** XOR `mask` into the byte at `position` of `file`. */
export function flipByte(file: string, position: number, mask = 0x20): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, position);
    b[0]! ^= mask;
    fs.writeSync(fd, b, 0, 1, position);
  } finally {
    fs.closeSync(fd);
  }
}

/** Overwrite `length` bytes of `file` at `position` with `fill`. */
export function overwrite(file: string, position: number, length: number, fill = 0): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, Buffer.alloc(length, fill), 0, length, position);
  } finally {
    fs.closeSync(fd);
  }
}

/** Every stored record of an intact partition directory, in offset order, with its segment file. */
export function partitionRecords(partitionDir: string): Array<StoredRecord & { file: string }> {
  return segmentFiles(partitionDir).flatMap((file) => storedRecords(file).map((r) => ({ ...r, file })));
}
