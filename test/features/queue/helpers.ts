/** Shared pieces of the queue tests: numbered messages and their values. */
import type { WeirClient } from '../../../src/client/index.js';
import type { QueueMessage } from '../../../src/client/queue.js';

export const decoder = new TextDecoder();
export const valueOf = (m: QueueMessage): number => Number(decoder.decode(m.value));

export async function produceNumbered(c: WeirClient, topic: string, from: number, n: number, key?: (i: number) => string): Promise<void> {
  for (let i = from; i < from + n; i += 500) {
    const msgs = Array.from({ length: Math.min(500, from + n - i) }, (_, j) => ({ key: key ? key(i + j) : `k${i + j}`, value: String(i + j) }));
    await c.produce(topic, msgs);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
