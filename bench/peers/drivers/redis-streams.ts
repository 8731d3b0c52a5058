/**
 * Redis Streams through its usual Node client (`ioredis`).
 *
 * Mapping: one weir topic with N partitions = N stream keys `<topic>:<p>` (a stream is Redis'
 * unit of ordering; all keys live in one single-threaded server either way). No trimming (MAXLEN),
 * like a log with size-unbounded retention for the run.
 *
 * Produce: a batch is one pipeline of `count` `XADD key * v <payload>` commands, sent together and
 * resolved when every reply arrived (Redis replies after appending to the AOF buffer; with
 * `appendfsync always` after the fsync, see servers/redis.ts).
 *
 * Consume: a consumer group per subscription (`XGROUP CREATE … MKSTREAM`, from `0` or `$`), read
 * with `XREADGROUP GROUP g c COUNT n BLOCK 100 NOACK STREAMS k0 … kN-1 > … >`. NOACK = log-like
 * consumption: no pending-entries list, no XACK round trips, like weir's offset-based consumers.
 * Members of a group share the entries. RESP2 is requested explicitly (ioredis 6 defaults to RESP3)
 * so the reply shape is `[[key, [[id, [field, value]], …]], …]`.
 *
 * Config: `{ host: '127.0.0.1', port: PORT, readCount?: 1000 }`.
 */
import { Redis } from 'ioredis';
import type { Driver, DriverConfig, DriverSubscribeOptions, DriverSubscription, MessageListener, ProduceBatch } from '../../e2e/driver.js';
import type { Workload } from '../../e2e/workload.js';
import { messageView, Partitioner, safeName } from './partitioning.js';

export interface RedisDriverConfig {
  host: string;
  port: number;
  /** COUNT per stream per XREADGROUP (default 1000). */
  readCount?: number;
}

export function createDriver(config: DriverConfig, workload: Workload): Driver {
  const c = config as unknown as RedisDriverConfig;
  if (typeof c.host !== 'string' || typeof c.port !== 'number') throw new Error('redis-streams driver: config.host and config.port are required');
  return new RedisStreamsDriver(c, workload);
}

const BLOCK_MS = 100;
const FIELD = Buffer.from('v');

type StreamReply = Array<[Buffer, Array<[Buffer, Buffer[] | null]>]> | null;

class RedisStreamsDriver implements Driver {
  readonly name = 'redis-streams';
  private redis: Redis | null = null;
  private readonly partitioner: Partitioner;
  private readonly loops = new Set<{ stop: () => Promise<void> }>();

  constructor(
    private readonly config: RedisDriverConfig,
    private readonly workload: Workload,
  ) {
    this.partitioner = new Partitioner(workload.partitionsPerTopic);
  }

  private newConnection(): Redis {
    return new Redis({
      host: this.config.host,
      port: this.config.port,
      lazyConnect: true,
      protocol: 2,
      enableAutoPipelining: false,
      enableOfflineQueue: true,
      maxRetriesPerRequest: 1,
      connectionName: 'weir-peer-bench',
    });
  }

  async connect(): Promise<void> {
    this.redis = this.newConnection();
    await this.redis.connect();
  }

  private get r(): Redis {
    if (!this.redis) throw new Error('redis-streams driver: connect() first');
    return this.redis;
  }

  private key(topic: string, p: number): string {
    return `${safeName(topic)}:${p}`;
  }

  async createTopic(topic: string, partitions: number): Promise<void> {
    // Streams are created by the first XADD or XGROUP CREATE … MKSTREAM; record the shape only.
    await this.r.set(`${safeName(topic)}:partitions`, String(partitions));
  }

  async produce(topic: string, batch: ProduceBatch): Promise<void> {
    const parts = this.partitioner.assign(batch);
    const pipe = this.r.pipeline();
    const single = typeof parts === 'number' ? this.key(topic, parts) : null;
    for (let i = 0; i < batch.count; i++) {
      const k = single ?? this.key(topic, (parts as number[])[i]!);
      pipe.xadd(k, '*', FIELD, messageView(batch, i));
    }
    const res = await pipe.exec();
    if (res === null) throw new Error('redis pipeline aborted');
    for (const [err] of res) if (err) throw err;
  }

  async subscribe(topic: string, options: DriverSubscribeOptions, onMessage: MessageListener): Promise<DriverSubscription> {
    const n = this.workload.partitionsPerTopic;
    const keys = Array.from({ length: n }, (_, p) => this.key(topic, p));
    const group = safeName(options.subscription);
    for (const k of keys) {
      try {
        await this.r.xgroup('CREATE', k, group, options.fromBeginning ? '0' : '$', 'MKSTREAM');
      } catch (e) {
        if (!String((e as Error).message).includes('BUSYGROUP')) throw e;
      }
    }
    // Blocking reads get their own connection so the driver's connection stays free.
    const conn = this.newConnection();
    await conn.connect();
    const consumerName = `c-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
    const args: Array<string | number> = [
      'GROUP', group, consumerName, 'COUNT', this.config.readCount ?? 1000, 'BLOCK', BLOCK_MS, 'NOACK', 'STREAMS', ...keys, ...keys.map(() => '>'),
    ];
    let running = true;
    const loop = (async () => {
      while (running) {
        let reply: StreamReply;
        try {
          reply = (await conn.callBuffer('XREADGROUP', ...args)) as StreamReply;
        } catch (e) {
          if (!running) break;
          throw e;
        }
        if (reply === null) continue;
        for (const [, entries] of reply) {
          for (const [, fields] of entries) {
            if (fields !== null && fields.length >= 2) onMessage(fields[1]!);
          }
        }
      }
    })();
    loop.catch(() => undefined);
    const handle = {
      stop: async () => {
        running = false;
        await Promise.race([loop.catch(() => undefined), new Promise((r) => setTimeout(r, BLOCK_MS * 5))]);
        conn.disconnect();
      },
    };
    this.loops.add(handle);
    return {
      close: async () => {
        this.loops.delete(handle);
        await handle.stop();
      },
    };
  }

  async close(): Promise<void> {
    for (const l of this.loops) await l.stop();
    this.loops.clear();
    const r = this.redis;
    this.redis = null;
    if (r) await r.quit().catch(() => r.disconnect());
  }

  destroy(): void {
    for (const l of this.loops) void l.stop();
    this.loops.clear();
    this.redis?.disconnect();
    this.redis = null;
  }
}
