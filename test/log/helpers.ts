/**
 * Shared helpers of the log tests: temp dirs, producer batches (BatchBuilder) and a stored-record
 * parser used as the oracle.
 */
import fs from 'node:fs';
import { SYNCED_BELOW_FILE } from '../../src/log/internal.js';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import { BatchBuilder } from '../../src/protocol/batch-builder.js';
import {
  F_KEY_LENGTH,
  RECORD_HEADER_BYTES,
  isValidStoredRecord,
  readU32,
  recordOffset,
  recordTimestamp,
  stampRecord,
} from '../../src/protocol/record.js';
import { mulberry32 } from '../support/seeded-prng.js';

const made: string[] = [];

export function tmpDir(): string {
  const dir = fs.mkdtempSync(os.tmpdir() + '/weir-log-');
  made.push(dir);
  return dir;
}

export function cleanupTmpDirs(): void {
  for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

/** Deterministic value bytes for message number i. */
export function valueFor(i: number, size: number): Uint8Array {
  const v = new Uint8Array(size);
  for (let j = 0; j < size; j++) v[j] = (i * 31 + j * 7) & 0xff;
  return v;
}

export interface Batch {
  bytes: Uint8Array;
  count: number;
  /** Message numbers carried (key = `k<number>`). */
  first: number;
}

/** A producer batch of `count` messages numbered from `first`, each with a `valueSize`-byte value. */
export function makeBatch(first: number, count: number, valueSize = 64): Batch {
  const b = new BatchBuilder();
  for (let i = first; i < first + count; i++) b.add(`k${i}`, valueFor(i, valueSize), i % 3 === 0 ? { h: `v${i}` } : null);
  return { bytes: b.take(), count, first };
}

export interface ParsedRecord {
  at: number;
  size: number;
  offset: number;
  timestamp: number;
  valid: boolean;
  key: string | null;
  /** Bytes from the key on (key, value, headers): what the producer wrote and the log must keep. */
  body: Uint8Array;
}

const dec = new TextDecoder();

export function parseStored(input: Uint8Array): ParsedRecord[] {
  // Plain Uint8Array view (a Buffer's slice would be a Buffer, which toEqual distinguishes).
  const bytes = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  const out: ParsedRecord[] = [];
  let at = 0;
  while (at < bytes.length) {
    const size = 4 + readU32(bytes, at);
    const keyLength = readU32(bytes, at + F_KEY_LENGTH) | 0;
    out.push({
      at,
      size,
      offset: recordOffset(bytes, at),
      timestamp: recordTimestamp(bytes, at),
      valid: isValidStoredRecord(bytes, at, at + size),
      key: keyLength < 0 ? null : dec.decode(bytes.subarray(at + RECORD_HEADER_BYTES, at + RECORD_HEADER_BYTES + keyLength)),
      body: bytes.slice(at + F_KEY_LENGTH, at + size),
    });
    at += size;
  }
  if (at !== bytes.length) throw new Error(`stored bytes end inside a record (${at} vs ${bytes.length})`);
  return out;
}

/** Producer bodies (bytes from keyLength on) of a batch, per record. */
export function producerBodies(batch: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < batch.length; ) {
    const size = 4 + readU32(batch, at);
    out.push(batch.slice(at + F_KEY_LENGTH, at + size));
    at += size;
  }
  return out;
}

/** Stamp a copy of a producer batch as the log would (for building files by hand). */
export function stampBatch(batch: Uint8Array, firstOffset: number, timestamp: number): Uint8Array {
  const b = batch.slice();
  let off = firstOffset;
  for (let at = 0; at < b.length; at += 4 + readU32(b, at)) stampRecord(b, at, off++, timestamp);
  return b;
}

/** Files of a partition directory, without the recovery point (rewritten in the background). */
export function listDir(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => !n.startsWith(SYNCED_BELOW_FILE)).sort();
}

export function logFiles(dir: string): string[] {
  return listDir(dir).filter((n) => n.endsWith('.log'));
}

export function filePath(dir: string, name: string): string {
  return path.join(dir, name);
}

/** Position of the value bytes of the record at `at` (for corruption tests). */
export function valueStart(stored: Uint8Array, at: number): number {
  const keyLength = readU32(stored, at + F_KEY_LENGTH) | 0;
  return at + RECORD_HEADER_BYTES + Math.max(keyLength, 0);
}

/** Uniform floats in [0, 1) from the shared seeded PRNG (test/support/seeded-prng.ts). */
export function prng(seed: number): () => number {
  return mulberry32(seed).float;
}

/** Read every durable record from `from` using `read`, following nextOffset. */
export function readAll(
  log: { read(o: number, b: number, r: number): { records: Uint8Array; count: number; nextOffset: number }; durableOffset: number },
  from: number,
  maxBytes = 1 << 20,
  maxRecords = 100_000,
): ParsedRecord[] {
  const out: ParsedRecord[] = [];
  let at = from;
  while (at < log.durableOffset) {
    const r = log.read(at, maxBytes, maxRecords);
    if (r.count === 0) throw new Error(`empty read at ${at} below durable ${log.durableOffset}`);
    const recs = parseStored(r.records);
    if (recs.length !== r.count) throw new Error(`count ${r.count} but ${recs.length} records`);
    out.push(...recs);
    at = r.nextOffset;
  }
  return out;
}

/** Read every durable record from `from` like readAll, through damaged regions: the records read and the ranges reported lost. */
export function readThrough(
  log: { read(o: number, b: number, r: number): { records: Uint8Array; count: number; nextOffset: number; lost: { from: number; to: number } | null }; durableOffset: number },
  from: number,
  maxBytes = 1 << 20,
  maxRecords = 100_000,
): { records: ParsedRecord[]; lost: Array<{ from: number; to: number }> } {
  const records: ParsedRecord[] = [];
  const lost: Array<{ from: number; to: number }> = [];
  let at = from;
  while (at < log.durableOffset) {
    const r = log.read(at, maxBytes, maxRecords);
    if (r.lost !== null) lost.push(r.lost);
    else if (r.count === 0) throw new Error(`empty read at ${at} below durable ${log.durableOffset}`);
    records.push(...parseStored(r.records));
    at = r.nextOffset;
  }
  return { records, lost };
}

/** Byte equality without vitest's slow deep-equal on the happy path (a diff only on mismatch). */
export function expectBytes(actual: Uint8Array, expected: Uint8Array): void {
  if (Buffer.compare(actual, expected) !== 0) expect(new Uint8Array(actual)).toEqual(new Uint8Array(expected));
}
