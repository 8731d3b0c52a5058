/** Shared pieces of the queue tests: a broker per test, clients closed after it, numbered messages. */
import { connect, type WeirClient } from '../../../src/client/index.js';
import type { QueueMessage } from '../../../src/client/queue.js';

export const decoder = new TextDecoder();
export const valueOf = (m: QueueMessage): number => Number(decoder.decode(m.value));

export async function produceNumbered(c: WeirClient, topic: string, from: number, n: number, key?: (i: number) => string): Promise<void> {
  for (let i = from; i < from + n; i += 500) {
    const msgs = Array.from({ length: Math.min(500, from + n - i) }, (_, j) => ({ key: key ? key(i + j) : `k${i + j}`, value: String(i + j) }));
    await c.produce(topic, msgs);
  }
}

export class Clients {
  private readonly all: WeirClient[] = [];
  async open(url: string): Promise<WeirClient> {
    const c = await connect(url, { reconnect: false });
    this.all.push(c);
    return c;
  }
  async closeAll(): Promise<void> {
    for (const c of this.all.splice(0)) await c.close().catch(() => undefined);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
