/**
 * A bare protocol client (ws + CBOR, no SDK) for tests that send exactly the bytes they mean,
 * including wrong ones.
 */
import WebSocket from 'ws';
import { decodeFrame, encodeFrame } from '../../src/protocol/cbor.js';
import { readMessages } from '../../src/protocol/batch-reader.js';

export type Frame = Record<string, unknown>;

export class RawClient {
  readonly frames: Frame[] = [];
  closed: { code: number; reason: string } | null = null;
  private waiters: Array<{ match: (f: Frame) => boolean; resolve: (f: Frame) => void }> = [];
  private closeWaiters: Array<(c: { code: number; reason: string }) => void> = [];
  private nextId = 1;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const f = decodeFrame(new Uint8Array(data)) as Frame;
      this.frames.push(f);
      const i = this.waiters.findIndex((w) => w.match(f));
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(f);
    });
    ws.on('close', (code: number, reason: Buffer) => {
      this.closed = { code, reason: reason.toString() };
      for (const w of this.closeWaiters) w(this.closed);
    });
  }

  static connect(url: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 256 * 1024 * 1024 });
      ws.once('open', () => resolve(new RawClient(ws)));
      ws.once('error', reject);
    });
  }

  sendRaw(bytes: Uint8Array | string): void {
    this.ws.send(bytes, { binary: typeof bytes !== 'string' });
  }

  send(frame: Frame): void {
    this.ws.send(encodeFrame(frame), { binary: true });
  }

  /** Send a request with a fresh id and wait for its result or error frame. */
  async request(frame: Frame, timeoutMs = 10_000): Promise<Frame> {
    const id = this.nextId++;
    const p = this.waitFor((f) => f.id === id && (f.op === 'result' || f.op === 'error'), timeoutMs);
    this.send({ ...frame, id });
    return p;
  }

  waitFor(match: (f: Frame) => boolean, timeoutMs = 10_000): Promise<Frame> {
    const seen = this.frames.find(match);
    if (seen) {
      this.frames.splice(this.frames.indexOf(seen), 1);
      return Promise.resolve(seen);
    }
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('timed out waiting for a frame')), timeoutMs);
      this.waiters.push({
        match,
        resolve: (f) => {
          clearTimeout(t);
          this.frames.splice(this.frames.indexOf(f), 1);
          resolve(f);
        },
      });
    });
  }

  waitClose(timeoutMs = 10_000): Promise<{ code: number; reason: string }> {
    if (this.closed) return Promise.resolve(this.closed);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('timed out waiting for close')), timeoutMs);
      this.closeWaiters.push((c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
  }

  close(): void {
    this.ws.close();
  }
}

/** Read a whole partition with raw fetches: offset → key and value (copied). */
export async function readPartition(url: string, topic: string, partition: number): Promise<Map<number, { key: string | null; value: Uint8Array }>> {
  const raw = await RawClient.connect(url);
  const out = new Map<number, { key: string | null; value: Uint8Array }>();
  let offset = 0;
  for (;;) {
    const r = await raw.request({ op: 'fetch', topic, partition, offset, maxRecords: 5000 });
    if (r.op !== 'result') throw new Error(`fetch failed: ${String(r.code)} ${String(r.message)}`);
    const msgs = readMessages(topic, partition, r.records as Uint8Array);
    for (const m of msgs) out.set(m.offset, { key: m.key, value: m.value.slice() });
    if (msgs.length === 0) break;
    offset = r.next as number;
  }
  raw.close();
  return out;
}
