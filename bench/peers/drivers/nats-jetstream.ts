/**
 * NATS JetStream through its usual Node client (`nats`, nats.js v2).
 *
 * Mapping: one weir topic = one JetStream stream named after the topic, file storage, 1 replica,
 * limits retention, with one subject per partition (`<topic>.<p>`). A stream is JetStream's unit of
 * ordering and storage (one log), so its N subjects play the part of weir's N partitions for
 * routing only; the stream itself is a single log.
 *
 * Produce: `js.publish()` per message, each awaiting its PubAck (the ack comes after the message is
 * stored, see servers/nats.ts for when that includes an fsync). A batch is `count` concurrent
 * publishes, so the window of unacknowledged publishes is bounded by the load generator's
 * maxInFlightBatches × batchSize. The connection sets `noAsyncTraces: true` (a documented client
 * option): otherwise every request captures a stack trace, which costs more than the publish.
 * Config `publish: 'async'` switches to the PublishAsync pattern (see NatsDriverConfig).
 *
 * Consume: a durable PULL consumer per subscription (shared by the members of a group), AckPolicy
 * None (log-like: the server advances the consumer's position as it delivers, no per-message ack,
 * like weir's offset-based consumers), consumed with `consumer.consume()` and a 10 000-message
 * buffer. Config: `{ servers: 'nats://127.0.0.1:PORT' }`.
 */
import {
  AckPolicy, connect, createInbox, DeliverPolicy, DiscardPolicy, RetentionPolicy, StorageType,
  type ConsumerMessages, type JetStreamClient, type JetStreamManager, type NatsConnection,
} from 'nats';
import type { Driver, DriverConfig, DriverSubscribeOptions, DriverSubscription, MessageListener, ProduceBatch } from '../../e2e/driver.js';
import type { Workload } from '../../e2e/workload.js';
import { countdown, Partitioner, safeName } from './partitioning.js';

export interface NatsDriverConfig {
  servers: string;
  /**
   * 'js' (default): `js.publish()` per message, the client's JetStream API.
   * 'async': core `nc.publish()` with a reply subject per message and ONE wildcard subscription
   * collecting the PubAcks (what nats.go calls PublishAsync; nats.js v2 has no such call): the same
   * protocol and the same PubAck per message, without js.publish's per-request bookkeeping.
   */
  publish?: 'js' | 'async';
  /** Messages the pull consumer keeps requested ahead (default 10 000). */
  pullBuffer?: number;
}

export function createDriver(config: DriverConfig, workload: Workload): Driver {
  const c = config as unknown as NatsDriverConfig;
  if (typeof c.servers !== 'string') throw new Error('nats-jetstream driver: config.servers is required');
  return new NatsJetStreamDriver(c, workload);
}

/** JetStream API error code for "stream name already in use" / "consumer already exists". */
const STREAM_NAME_IN_USE = 10058;

class NatsJetStreamDriver implements Driver {
  readonly name: string;
  private nc: NatsConnection | null = null;
  private js: JetStreamClient | null = null;
  private jsm: JetStreamManager | null = null;
  private readonly partitioner: Partitioner;
  private readonly subs = new Set<ConsumerMessages>();
  /** publish: 'async': reply-subject prefix, next token, and the batch waiting for each token. */
  private ackPrefix = '';
  private nextToken = 1;
  private readonly pendingAcks = new Map<number, { ok: () => void; fail: (e: unknown) => void }>();

  constructor(
    private readonly config: NatsDriverConfig,
    workload: Workload,
  ) {
    this.partitioner = new Partitioner(workload.partitionsPerTopic);
    this.name = config.publish === 'async' ? 'nats-jetstream (async publish)' : 'nats-jetstream';
  }

  async connect(): Promise<void> {
    this.nc = await connect({
      servers: this.config.servers,
      name: 'weir-peer-bench',
      maxReconnectAttempts: 0,
      pingInterval: 30_000,
      noAsyncTraces: true,
    });
    this.js = this.nc.jetstream({ timeout: 60_000 });
    this.jsm = await this.nc.jetstreamManager({ timeout: 60_000 });
    if (this.config.publish === 'async') {
      this.ackPrefix = `${createInbox()}.`;
      const dec = new TextDecoder();
      this.nc.subscribe(`${this.ackPrefix}*`, {
        callback: (err, m) => {
          if (err) {
            for (const p of this.pendingAcks.values()) p.fail(err);
            this.pendingAcks.clear();
            return;
          }
          const token = Number(m.subject.slice(this.ackPrefix.length));
          const p = this.pendingAcks.get(token);
          if (!p) return;
          this.pendingAcks.delete(token);
          // A PubAck is {"stream":…,"seq":…} or {"error":{"code":…,"description":…}}.
          const ack = JSON.parse(dec.decode(m.data)) as { error?: { code: number; description: string } };
          if (ack.error) p.fail(new Error(`PubAck error ${ack.error.code}: ${ack.error.description}`));
          else p.ok();
        },
      });
    }
  }

  private get m(): JetStreamManager {
    if (!this.jsm) throw new Error('nats-jetstream driver: connect() first');
    return this.jsm;
  }

  async createTopic(topic: string, partitions: number): Promise<void> {
    const name = safeName(topic);
    const cfg = {
      name,
      subjects: [`${name}.*`],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      num_replicas: 1,
      max_msgs: -1,
      max_bytes: -1,
      max_age: 0,
    };
    try {
      await this.m.streams.add(cfg);
    } catch (e) {
      if ((e as { api_error?: { err_code?: number } }).api_error?.err_code !== STREAM_NAME_IN_USE) throw e;
    }
    void partitions; // subjects <name>.0 … <name>.<partitions-1>, all matched by `<name>.*`
  }

  async produce(topic: string, batch: ProduceBatch): Promise<void> {
    const js = this.js;
    if (!js) throw new Error('nats-jetstream driver: connect() first');
    const name = safeName(topic);
    const parts = this.partitioner.assign(batch);
    const cd = countdown(batch.count);
    const { values, size } = batch;
    if (this.config.publish === 'async') {
      const nc = this.nc!;
      for (let i = 0; i < batch.count; i++) {
        const p = typeof parts === 'number' ? parts : parts[i]!;
        const token = this.nextToken++;
        this.pendingAcks.set(token, cd);
        nc.publish(`${name}.${p}`, values.subarray(i * size, (i + 1) * size), { reply: `${this.ackPrefix}${token}` });
      }
      await cd.done;
      return;
    }
    for (let i = 0; i < batch.count; i++) {
      const p = typeof parts === 'number' ? parts : parts[i]!;
      js.publish(`${name}.${p}`, values.subarray(i * size, (i + 1) * size)).then(cd.ok, cd.fail);
    }
    await cd.done;
  }

  async subscribe(topic: string, options: DriverSubscribeOptions, onMessage: MessageListener): Promise<DriverSubscription> {
    const js = this.js;
    if (!js) throw new Error('nats-jetstream driver: connect() first');
    const stream = safeName(topic);
    const durable = safeName(options.subscription);
    try {
      await this.m.consumers.add(stream, {
        durable_name: durable,
        ack_policy: AckPolicy.None,
        deliver_policy: options.fromBeginning ? DeliverPolicy.All : DeliverPolicy.New,
        max_ack_pending: -1,
      });
    } catch (e) {
      // Another member of the group created it first: that is the same consumer.
      const info = await this.m.consumers.info(stream, durable).catch(() => null);
      if (!info) throw e;
    }
    const consumer = await js.consumers.get(stream, durable);
    const msgs = await consumer.consume({
      max_messages: this.config.pullBuffer ?? 10_000,
      callback: (m) => onMessage(m.data),
    });
    this.subs.add(msgs);
    return {
      close: async () => {
        this.subs.delete(msgs);
        await msgs.close();
      },
    };
  }

  async close(): Promise<void> {
    for (const s of this.subs) await s.close().catch(() => undefined);
    this.subs.clear();
    const nc = this.nc;
    this.nc = null;
    if (nc) await nc.drain().catch(() => nc.close());
  }

  destroy(): void {
    const nc = this.nc;
    this.nc = null;
    void nc?.close();
  }
}
