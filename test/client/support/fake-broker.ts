/**
 * A protocol-level test double of the broker: a `ws` WebSocketServer on 127.0.0.1 that speaks the
 * CBOR frames of docs/protocol.md with in-memory logs. It is deliberately small and scriptable:
 * tests intercept requests with `hook` (answer, fail, delay, ignore, drop the socket) and inspect
 * every received frame. It is not one of our components; the real broker is tested end to end.
 */
import { WebSocketServer, type WebSocket } from 'ws';
import { decodeFrame, encodeFrame } from '../../../src/protocol/cbor.js';
import { partitionForKey } from '../../../src/common/murmur2.js';
import { RecordIndex, scanBatch, stampRecord } from '../../../src/protocol/record.js';

export type Frame = Record<string, unknown> & { op: string };

export type Reply =
  | { result: Record<string, unknown> }
  | { error: { code: string; message?: string; retryable?: boolean; details?: Record<string, unknown> } }
  /** Never answer. */
  | 'ignore'
  /** Terminate the socket (no close frame). */
  | 'drop'
  /** Fall through to the default behaviour. */
  | undefined;

export type Hook = (frame: Frame, conn: FakeConn) => Reply | Promise<Reply>;

export interface ReceivedFrame {
  frame: Frame;
  conn: number;
  at: number;
}

export interface FakeSub {
  sub: number;
  conn: FakeConn;
  topic: string;
  group: string | undefined;
  credits: number;
  /** partition → next offset to deliver */
  position: Map<number, number>;
  /** partition → remaining credit */
  credit: Map<number, number>;
  /** partition → total records delivered */
  delivered: Map<number, number>;
  generation: number;
}

export interface FakeBrokerOptions {
  maxFrameBytes?: number;
  maxMessageBytes?: number;
  maxInFlightBytes?: number;
  /** Delay produce answers by this many ms. */
  produceDelayMs?: number;
  /** Deliver to subscriptions automatically as credit allows. Default true. */
  autoDeliver?: boolean;
  /** Records per deliver frame at most. Default 100. */
  deliverBatch?: number;
}

interface Topic {
  partitions: number;
  logs: Uint8Array[][];
  rr: number;
}

export class FakeConn {
  readonly subs = new Map<number, FakeSub>();
  constructor(
    readonly index: number,
    readonly ws: WebSocket,
  ) {}
  send(frame: Record<string, unknown>): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(encodeFrame(frame));
  }
  drop(): void {
    this.ws.terminate();
  }
}

export class FakeBroker {
  readonly received: ReceivedFrame[] = [];
  readonly conns: FakeConn[] = [];
  readonly topics = new Map<string, Topic>();
  readonly committed = new Map<string, number>(); // `${group}/${topic}/${partition}` → next offset
  readonly subs = new Map<number, FakeSub>();
  hook: Hook | null = null;
  /** Record bytes of produce frames received and not answered yet, and the most ever seen. */
  unansweredProduceBytes = 0;
  maxUnansweredProduceBytes = 0;
  maxUnansweredProduceFrames = 0;
  private unansweredProduceFrames = 0;
  private nextSub = 1;
  private waiters: Array<{ match: (f: ReceivedFrame) => boolean; resolve: (f: ReceivedFrame) => void }> = [];
  readonly opts: Required<FakeBrokerOptions>;

  private constructor(
    private readonly wss: WebSocketServer,
    opts: FakeBrokerOptions,
  ) {
    this.opts = {
      maxFrameBytes: 8 * 1024 * 1024,
      maxMessageBytes: 1024 * 1024,
      maxInFlightBytes: 16 * 1024 * 1024,
      produceDelayMs: 0,
      autoDeliver: true,
      deliverBatch: 100,
      ...opts,
    };
    wss.on('connection', (ws) => {
      const conn = new FakeConn(this.conns.length, ws);
      this.conns.push(conn);
      ws.on('message', (data: Buffer) => {
        const frame = decodeFrame(new Uint8Array(data)) as Frame;
        // Copy byte strings we keep: decoded views alias ws's buffer.
        if (frame.records instanceof Uint8Array) frame.records = new Uint8Array(frame.records);
        const rf = { frame, conn: conn.index, at: Date.now() };
        this.received.push(rf);
        this.waiters = this.waiters.filter((w) => (w.match(rf) ? (w.resolve(rf), false) : true));
        void this.onFrame(frame, conn);
      });
      ws.on('close', () => {
        for (const s of conn.subs.values()) this.subs.delete(s.sub);
      });
    });
  }

  static async start(opts: FakeBrokerOptions = {}): Promise<FakeBroker> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    return new FakeBroker(wss, opts);
  }

  get url(): string {
    const addr = this.wss.address();
    if (addr === null || typeof addr === 'string') throw new Error('unexpected address');
    return `ws://127.0.0.1:${addr.port}`;
  }

  frames(op: string): Frame[] {
    return this.received.filter((r) => r.frame.op === op).map((r) => r.frame);
  }

  /** Resolve with the first received frame (past or future) matching `match`. */
  waitFor(match: (f: Frame) => boolean, timeoutMs = 3000): Promise<ReceivedFrame> {
    const seen = this.received.find((r) => match(r.frame));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`fake broker: no matching frame within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        match: (r) => match(r.frame),
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
      });
    });
  }

  createTopic(name: string, partitions: number): void {
    if (!this.topics.has(name)) this.topics.set(name, { partitions, logs: Array.from({ length: partitions }, () => []), rr: 0 });
  }

  /** Stored record bytes of one partition (for assertions). */
  log(topic: string, partition: number): Uint8Array[] {
    return this.topics.get(topic)?.logs[partition] ?? [];
  }

  /** Append records directly (as if another producer wrote them). */
  append(topic: string, partition: number, batch: Uint8Array): void {
    const t = this.topics.get(topic)!;
    const index = new RecordIndex();
    const n = scanBatch(batch, index, { maxRecordBytes: 1 << 30, maxRecords: 1 << 20 });
    for (let i = 0; i < n; i++) this.store(t, partition, batch.subarray(index.start[i]!, index.start[i]! + index.size[i]!));
    this.pumpAll();
  }

  sendAssign(sub: FakeSub, partitions: Array<[number, number]>, generation = sub.generation + 1): void {
    sub.generation = generation;
    sub.position = new Map(partitions);
    sub.credit = new Map(partitions.map(([p]) => [p, sub.credits]));
    sub.conn.send({ op: 'assign', sub: sub.sub, generation, partitions });
    this.pump(sub);
  }

  sendRevoke(sub: FakeSub): void {
    sub.conn.send({ op: 'revoke', sub: sub.sub, generation: sub.generation });
  }

  dropAll(): void {
    for (const c of this.conns) c.drop();
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.drop();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  // ------------------------------------------------------------------------------------ frames

  private async onFrame(frame: Frame, conn: FakeConn): Promise<void> {
    let reply: Reply;
    const isProduce = frame.op === 'produce';
    const bytes = isProduce && frame.records instanceof Uint8Array ? frame.records.length : 0;
    if (isProduce) {
      this.unansweredProduceBytes += bytes;
      this.unansweredProduceFrames++;
      this.maxUnansweredProduceBytes = Math.max(this.maxUnansweredProduceBytes, this.unansweredProduceBytes);
      this.maxUnansweredProduceFrames = Math.max(this.maxUnansweredProduceFrames, this.unansweredProduceFrames);
    }
    const done = (): void => {
      if (isProduce) {
        this.unansweredProduceBytes -= bytes;
        this.unansweredProduceFrames--;
      }
    };
    try {
      reply = this.hook ? await this.hook(frame, conn) : undefined;
      if (reply === undefined) {
        if (isProduce && this.opts.produceDelayMs > 0) await new Promise((r) => setTimeout(r, this.opts.produceDelayMs));
        reply = this.defaultReply(frame, conn);
      }
    } catch (err) {
      reply = { error: { code: 'INTERNAL', message: String(err) } };
    }
    if (reply === undefined) return;
    if (reply === 'ignore') {
      // An unanswered produce stays counted: that is what the broker's budget sees.
      return;
    }
    done();
    if (reply === 'drop') {
      conn.drop();
      return;
    }
    if (frame.id === undefined && 'result' in reply) return; // credit/revoked: no answer
    if ('result' in reply) conn.send({ op: 'result', id: frame.id, ...reply.result });
    else {
      const e = reply.error;
      conn.send({
        op: 'error',
        ...(frame.id !== undefined ? { id: frame.id } : {}),
        code: e.code,
        message: e.message ?? e.code,
        retryable: e.retryable ?? ['PARTITION_UNAVAILABLE', 'THROTTLED', 'STORAGE_FULL', 'SHUTTING_DOWN'].includes(e.code),
        ...(e.details ? { details: e.details } : {}),
      });
    }
    if (frame.op === 'subscribe' && 'result' in reply) {
      const sub = this.subs.get(reply.result.sub as number);
      if (sub) this.initialAssign(sub, frame);
    }
  }

  private defaultReply(f: Frame, conn: FakeConn): Reply {
    switch (f.op) {
      case 'hello':
        return {
          result: {
            version: 1,
            broker: 'fake',
            maxFrameBytes: this.opts.maxFrameBytes,
            maxMessageBytes: this.opts.maxMessageBytes,
            maxInFlightBytes: this.opts.maxInFlightBytes,
            fsync: 'never',
          },
        };
      case 'ping':
        return { result: {} };
      case 'create_topic': {
        const name = f.topic as string;
        const n = f.partitions as number;
        const t = this.topics.get(name);
        if (t && t.partitions !== n) return { error: { code: 'TOPIC_EXISTS' } };
        this.createTopic(name, n);
        return { result: { topic: name, partitions: n, created: !t } };
      }
      case 'list_topics':
        return { result: { topics: [...this.topics].map(([topic, t]) => ({ topic, partitions: t.partitions })) } };
      case 'describe_topic': {
        const t = this.topics.get(f.topic as string);
        if (!t) return { error: { code: 'TOPIC_NOT_FOUND' } };
        return {
          result: {
            topic: f.topic,
            partitions: t.partitions,
            offsets: t.logs.map((log, partition) => ({ partition, start: 0, end: log.length, host: 'gateway' })),
          },
        };
      }
      case 'produce':
        return this.produce(f);
      case 'fetch': {
        const t = this.topics.get(f.topic as string);
        if (!t) return { error: { code: 'TOPIC_NOT_FOUND' } };
        const log = t.logs[f.partition as number];
        if (!log) return { error: { code: 'PARTITION_NOT_FOUND' } };
        const offset = f.offset as number;
        const slice = log.slice(offset, offset + ((f.maxRecords as number | undefined) ?? 10_000));
        return { result: { topic: f.topic, partition: f.partition, records: concat(slice), count: slice.length, next: offset + slice.length, end: log.length } };
      }
      case 'subscribe': {
        const t = this.topics.get(f.topic as string);
        if (!t) return { error: { code: 'TOPIC_NOT_FOUND' } };
        const sub: FakeSub = {
          sub: this.nextSub++,
          conn,
          topic: f.topic as string,
          group: f.group as string | undefined,
          credits: f.credits as number,
          position: new Map(),
          credit: new Map(),
          delivered: new Map(),
          generation: 0,
        };
        this.subs.set(sub.sub, sub);
        conn.subs.set(sub.sub, sub);
        return { result: { sub: sub.sub } };
      }
      case 'credit': {
        const sub = this.subs.get(f.sub as number);
        if (!sub) return { error: { code: 'UNKNOWN_SUBSCRIPTION' } };
        const p = f.partition as number;
        if (sub.credit.has(p)) sub.credit.set(p, sub.credit.get(p)! + (f.credits as number));
        this.pump(sub);
        return { result: {} };
      }
      case 'commit': {
        const sub = this.subs.get(f.sub as number);
        if (!sub) return { error: { code: 'UNKNOWN_SUBSCRIPTION' } };
        for (const [p, next] of f.offsets as Array<[number, number]>) this.committed.set(`${sub.group}/${sub.topic}/${p}`, next);
        return { result: {} };
      }
      case 'revoked':
        return { result: {} };
      case 'unsubscribe': {
        const sub = this.subs.get(f.sub as number);
        if (!sub) return { error: { code: 'UNKNOWN_SUBSCRIPTION' } };
        this.subs.delete(sub.sub);
        conn.subs.delete(sub.sub);
        return { result: {} };
      }
      default:
        return { error: { code: 'UNKNOWN_OP' } };
    }
  }

  private produce(f: Frame): Reply {
    const t = this.topics.get(f.topic as string);
    if (!t) return { error: { code: 'TOPIC_NOT_FOUND' } };
    const batch = f.records as Uint8Array;
    const index = new RecordIndex();
    const n = scanBatch(batch, index, { maxRecordBytes: this.opts.maxMessageBytes, maxRecords: 100_000 });
    const forced = f.partition as number | undefined;
    const unkeyed = t.rr++ % t.partitions;
    const route: number[] = [];
    for (let i = 0; i < n; i++) {
      const kl = index.keyLength[i]!;
      const ks = index.keyStart[i]!;
      route.push(forced ?? (kl >= 0 ? partitionForKey(batch, ks, ks + kl, t.partitions) : unkeyed));
    }
    const parts = new Map<number, [number, number, number]>();
    for (let i = 0; i < n; i++) {
      const p = route[i]!;
      if (!parts.has(p)) parts.set(p, [p, t.logs[p]!.length, 0]);
      parts.get(p)![2]++;
      this.store(t, p, batch.subarray(index.start[i]!, index.start[i]! + index.size[i]!));
    }
    this.pumpAll();
    const result: Record<string, unknown> = { parts: [...parts.values()] };
    if (parts.size > 1) {
      const r = new Uint8Array(2 * n);
      route.forEach((p, i) => {
        r[2 * i] = p & 0xff;
        r[2 * i + 1] = p >>> 8;
      });
      result.route = r;
    }
    return { result };
  }

  private store(t: Topic, p: number, record: Uint8Array): void {
    const copy = new Uint8Array(record);
    stampRecord(copy, 0, t.logs[p]!.length, Date.now());
    t.logs[p]!.push(copy);
  }

  private initialAssign(sub: FakeSub, f: Frame): void {
    const t = this.topics.get(sub.topic)!;
    const from = f.from as unknown;
    const partitions: Array<[number, number]> = [];
    for (let p = 0; p < t.partitions; p++) {
      const committed = sub.group !== undefined ? this.committed.get(`${sub.group}/${sub.topic}/${p}`) : undefined;
      let start = t.logs[p]!.length;
      if (committed !== undefined) start = committed;
      else if (from === 'earliest') start = 0;
      else if (typeof from === 'object' && from !== null) {
        const o = from as { offset?: number; offsets?: Record<string, number>; timestamp?: number };
        if (typeof o.offset === 'number') start = o.offset;
        else if (o.offsets && typeof o.offsets[String(p)] === 'number') start = o.offsets[String(p)]!;
        else if (typeof o.timestamp === 'number') start = 0;
      }
      partitions.push([p, start]);
    }
    this.sendAssign(sub, partitions, 1);
  }

  private pumpAll(): void {
    for (const sub of this.subs.values()) this.pump(sub);
  }

  /** Deliver as far as credit allows (never more records than the partition's credit). */
  pump(sub: FakeSub): void {
    if (!this.opts.autoDeliver) return;
    const t = this.topics.get(sub.topic)!;
    for (const [p, pos] of sub.position) {
      const log = t.logs[p]!;
      let at = pos;
      for (;;) {
        const credit = sub.credit.get(p) ?? 0;
        const n = Math.min(credit, log.length - at, this.opts.deliverBatch);
        if (n <= 0) break;
        const recs = log.slice(at, at + n);
        sub.conn.send({ op: 'deliver', sub: sub.sub, topic: sub.topic, partition: p, records: concat(recs), count: n, next: at + n });
        at += n;
        sub.credit.set(p, credit - n);
        sub.delivered.set(p, (sub.delivered.get(p) ?? 0) + n);
      }
      sub.position.set(p, at);
    }
  }
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll until `check` is true (or throw after timeoutMs). */
export async function until(check: () => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
