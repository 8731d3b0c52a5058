/**
 * How a produce batch is spread over a peer's "partitions" (NATS subjects, RabbitMQ queues, Redis
 * stream keys), the same way weir does it so every system sees the same shape of traffic:
 *   - no key: the whole batch goes to one partition, round-robin per batch (weir: round-robin per
 *     request);
 *   - with keys: Kafka's murmur2 of the key modulo the partition count (weir's partitioner).
 */
import { partitionForKey } from '../../../src/common/murmur2.js';
import type { ProduceBatch } from '../../e2e/driver.js';

const enc = new TextEncoder();

export class Partitioner {
  private next = 0;
  private readonly cache = new Map<string, number>();

  constructor(readonly partitions: number) {
    if (!Number.isSafeInteger(partitions) || partitions < 1) throw new Error(`partitions must be ≥ 1, got ${partitions}`);
  }

  /** Partition of every message of `batch`: a number when the whole batch goes to one. */
  assign(batch: ProduceBatch): number | number[] {
    if (batch.keys === null) {
      const p = this.next;
      this.next = (this.next + 1) % this.partitions;
      return p;
    }
    const out = new Array<number>(batch.count);
    for (let i = 0; i < batch.count; i++) out[i] = this.forKey(batch.keys[i]!);
    return out;
  }

  forKey(key: string): number {
    let p = this.cache.get(key);
    if (p === undefined) {
      const b = enc.encode(key);
      p = partitionForKey(b, 0, b.length, this.partitions);
      if (this.cache.size < 100_000) this.cache.set(key, p);
    }
    return p;
  }
}

/** Message i of a batch as a Buffer view (no copy): the clients copy it into their socket buffers. */
export function messageView(batch: ProduceBatch, i: number): Buffer {
  const v = batch.values;
  return Buffer.from(v.buffer, v.byteOffset + i * batch.size, batch.size);
}

/** A name safe for NATS stream/consumer names, RabbitMQ queues and Redis keys. */
export function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9_-]/g, '_');
}

/** Resolves when `n` callbacks reported success, rejects on the first failure. */
export function countdown(n: number): { done: Promise<void>; ok: () => void; fail: (e: unknown) => void } {
  let left = n;
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  let settled = false;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  if (n === 0) {
    settled = true;
    resolve();
  }
  return {
    done,
    ok: () => {
      if (!settled && --left === 0) {
        settled = true;
        resolve();
      }
    },
    fail: (e) => {
      if (!settled) {
        settled = true;
        reject(e);
      }
    },
  };
}
