/**
 * The weir Driver, on the SDK. One produce() call per batch: the SDK's own coalescing is set so a
 * batch is exactly one frame (lingerMs 0, batchMessages = the workload's batch size, batchBytes
 * large enough for a whole batch). Consumers join one group per topic with a large credit window,
 * or, with `workload.consumeMode: 'queue'`, one queue group (prefetch from the workload, auto-ack).
 *
 * Config (DriverSpec.config): `url` (required), `credits` (per-partition credit window, default 10 000),
 * `checkCrcs` (the SDK's CRC check of received records; default on), `token` and `ca` (`--secure`).
 */
import { connect, type ProduceMessage, type QueueSubscription, type Subscription, type WeirClient } from '../../../src/client/index.js';
import { readStamp, within } from '../clock.js';
import type { Driver, DriverConfig, DriverSubscribeOptions, DriverSubscription, MessageListener, ProduceBatch } from '../driver.js';
import type { Workload } from '../workload.js';

export interface WeirDriverConfig {
  url: string;
  credits?: number;
  /** ClientOptions.checkCrcs (default: the SDK's, on). */
  checkCrcs?: boolean;
  /** ClientOptions.token (a broker that requires authentication: `--secure`). */
  token?: string;
  /** The CA certificate (PEM) a `wss://` broker's certificate is checked against (ClientOptions.tls.ca). */
  ca?: string;
}

const RECORD_OVERHEAD = 36;
const MAX_FRAME_BATCH_BYTES = 4 * 1024 * 1024;

export function createDriver(config: DriverConfig, workload: Workload): Driver {
  const c = config as unknown as WeirDriverConfig;
  if (typeof c.url !== 'string') throw new Error('weir driver: config.url is required');
  return new WeirDriver(c, workload);
}

const settledVoid = (): void => undefined;

/** How long subscribe() waits for the group's first assignment before delivery may start. */
const ASSIGN_WAIT_MS = 5_000;

class WeirDriver implements Driver {
  readonly name = 'weir';
  private client: WeirClient | null = null;
  private readonly subs = new Set<Subscription | QueueSubscription>();

  constructor(
    private readonly config: WeirDriverConfig,
    private readonly workload: Workload,
  ) {}

  async connect(): Promise<void> {
    const w = this.workload;
    const keyBytes = w.keyDistribution === 'none' ? 0 : 12;
    const batchBytes = Math.min(MAX_FRAME_BATCH_BYTES, Math.max(256 * 1024, w.batchSize * (w.messageSize + RECORD_OVERHEAD + keyBytes)));
    this.client = await connect(this.config.url, {
      clientName: 'weir-e2e-bench',
      lingerMs: 0,
      batchMessages: w.batchSize,
      batchBytes,
      // The load generator bounds batches in flight itself; this only must not be the tighter limit.
      maxInFlightRequests: Math.max(32, w.maxInFlightBatches * 2),
      maxQueuedBytes: 256 * 1024 * 1024,
      requestTimeoutMs: 60_000,
      ...(this.config.checkCrcs !== undefined ? { checkCrcs: this.config.checkCrcs } : {}),
      ...(this.config.token !== undefined ? { token: this.config.token } : {}),
      ...(this.config.ca !== undefined ? { tls: { ca: this.config.ca } } : {}),
    });
  }

  private get c(): WeirClient {
    if (!this.client) throw new Error('weir driver: connect() first');
    return this.client;
  }

  async createTopic(topic: string, partitions: number): Promise<void> {
    await this.c.createTopic(topic, { partitions });
  }

  // Not async: a suspended async function would keep `messages` (an object and a view per
  // message) alive until the answer, and the young-generation GC would copy and promote them.
  produce(topic: string, batch: ProduceBatch): Promise<void> {
    const { values, size, count, keys } = batch;
    const messages = new Array<ProduceMessage>(count);
    const delayed = this.workload.delayMs > 0;
    for (let i = 0; i < count; i++) {
      const value = values.subarray(i * size, (i + 1) * size);
      messages[i] = { key: keys === null ? null : keys[i]!, value };
      // The stamp is the due time (see ProducerLoop): deliver then.
      if (delayed) messages[i]!.deliverAt = Math.ceil(readStamp(value));
    }
    return this.c.produce(topic, messages).then(settledVoid);
  }

  async subscribe(topic: string, options: DriverSubscribeOptions, onMessage: MessageListener): Promise<DriverSubscription> {
    if (this.workload.consumeMode === 'queue') {
      const q = await this.c.subscribe(
        topic,
        { mode: 'queue', group: options.subscription, from: options.fromBeginning ? 'earliest' : 'latest', prefetch: this.workload.prefetch },
        (m) => onMessage(m.value), // resolves: acked
      );
      this.subs.add(q);
      return {
        close: async () => {
          this.subs.delete(q);
          await q.close();
        },
      };
    }
    let assigned!: () => void;
    const firstAssign = new Promise<void>((resolve) => (assigned = resolve));
    const sub = await this.c.subscribe(
      topic,
      { group: options.subscription, from: options.fromBeginning ? 'earliest' : 'latest', credits: this.config.credits ?? 10_000 },
      (m) => onMessage(m.value),
    );
    this.subs.add(sub);
    // The first `assign` may have been handled before subscribe() resolved; a group member may also
    // get an empty assignment (more members than partitions). Either way, wait a bounded time.
    const off = sub.on('assign', () => assigned());
    if (sub.assignment().length === 0) {
      await within(firstAssign, ASSIGN_WAIT_MS);
    }
    off();
    return {
      close: async () => {
        this.subs.delete(sub);
        await sub.close();
      },
    };
  }

  async close(): Promise<void> {
    const client = this.client;
    if (!client) return;
    await Promise.all([...this.subs].map((s) => s.close()));
    this.subs.clear();
    await client.close();
    this.client = null;
  }

  destroy(): void {
    this.client?.destroy();
    this.client = null;
  }
}
