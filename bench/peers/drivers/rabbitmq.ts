/**
 * RabbitMQ through its usual Node client (`amqplib`), shared by the quorum and classic drivers.
 *
 * Mapping: one weir topic with N partitions = N durable queues `<topic>.<p>` (RabbitMQ's natural
 * unit of ordering and parallelism; each queue is its own Erlang process), declared with
 * `x-queue-type: quorum` or `classic`. Messages go through the default exchange straight to their
 * queue (`sendToQueue`) as persistent messages (delivery_mode 2).
 *
 * Produce: a ConfirmChannel (publisher confirms); a batch is `count` publishes whose confirm
 * callbacks are counted down, so unconfirmed publishes are bounded by the load generator's
 * maxInFlightBatches × batchSize. RabbitMQ may confirm several at once (multiple=true).
 *
 * Consume: one channel per consumer with `basic.qos` prefetch (per consumer, default 1 000) and a
 * consumer on each of the N queues; manual acks, sent in batches with `multiple=true` every
 * `ackEvery` messages (default 200) and at least every 20 ms: cheap like weir's offset commits,
 * and it keeps the prefetch window (RabbitMQ's flow control) in force, which no-ack would not.
 * Members of a group are competing consumers on the same queues. In queue mode
 * (`workload.consumeMode: 'queue'`) the prefetch is the workload's and every message is acked on its
 * own (multiple=false), like weir's queue consumers. `fromBeginning` has no meaning for
 * a queue: a consumer gets whatever is in it.
 *
 * Config: `{ url: 'amqp://guest:guest@127.0.0.1:PORT', queueType: 'quorum' | 'classic' }`.
 */
import amqp from 'amqplib';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { Driver, DriverConfig, DriverSubscribeOptions, DriverSubscription, MessageListener, ProduceBatch } from '../../e2e/driver.js';
import type { Workload } from '../../e2e/workload.js';
import { countdown, messageView, Partitioner, safeName } from './partitioning.js';

export interface RabbitDriverConfig {
  url: string;
  queueType: 'quorum' | 'classic';
  prefetch?: number;
  ackEvery?: number;
}

export function createRabbitDriver(config: DriverConfig, workload: Workload, queueType: 'quorum' | 'classic'): Driver {
  const c = { ...(config as unknown as RabbitDriverConfig), queueType };
  if (typeof c.url !== 'string') throw new Error('rabbitmq driver: config.url is required');
  return new RabbitDriver(c, workload);
}

const ACK_FLUSH_MS = 20;

class RabbitDriver implements Driver {
  readonly name: string;
  private model: ChannelModel | null = null;
  private confirm: ConfirmChannel | null = null;
  private readonly partitioner: Partitioner;
  private readonly channels = new Set<Channel>();
  private readonly timers = new Set<ReturnType<typeof setInterval>>();

  constructor(
    private readonly config: RabbitDriverConfig,
    private readonly workload: Workload,
  ) {
    this.name = `rabbitmq-${config.queueType}`;
    this.partitioner = new Partitioner(workload.partitionsPerTopic);
  }

  async connect(): Promise<void> {
    this.model = await amqp.connect(this.config.url, { noDelay: true });
    this.model.on('error', () => undefined); // surfaced through the failing operation instead
  }

  private get conn(): ChannelModel {
    if (!this.model) throw new Error('rabbitmq driver: connect() first');
    return this.model;
  }

  private queueName(topic: string, p: number): string {
    return `${safeName(topic)}.${p}`;
  }

  private queueArgs(): Record<string, unknown> {
    return { 'x-queue-type': this.config.queueType };
  }

  async createTopic(topic: string, partitions: number): Promise<void> {
    const ch = await this.conn.createChannel();
    try {
      for (let p = 0; p < partitions; p++) {
        await ch.assertQueue(this.queueName(topic, p), { durable: true, autoDelete: false, exclusive: false, arguments: this.queueArgs() });
      }
    } finally {
      await ch.close();
    }
  }

  async produce(topic: string, batch: ProduceBatch): Promise<void> {
    if (!this.confirm) {
      this.confirm = await this.conn.createConfirmChannel();
      this.confirm.on('error', () => undefined);
    }
    const ch = this.confirm;
    const parts = this.partitioner.assign(batch);
    const cd = countdown(batch.count);
    const cb = (err: unknown): void => (err ? cd.fail(err instanceof Error ? err : new Error(`nack: ${String(err)}`)) : cd.ok());
    const single = typeof parts === 'number' ? this.queueName(topic, parts) : null;
    for (let i = 0; i < batch.count; i++) {
      const q = single ?? this.queueName(topic, (parts as number[])[i]!);
      ch.sendToQueue(q, messageView(batch, i), { persistent: true }, cb);
    }
    await cd.done;
  }

  async subscribe(topic: string, _options: DriverSubscribeOptions, onMessage: MessageListener): Promise<DriverSubscription> {
    const ch = await this.conn.createChannel();
    ch.on('error', () => undefined);
    this.channels.add(ch);
    // Queue mode: the workload's prefetch and one ack per message (multiple=false), as weir's queue
    // consumers do; log mode: a large prefetch and cumulative acks.
    const queueMode = this.workload.consumeMode === 'queue';
    const prefetch = queueMode ? this.workload.prefetch : (this.config.prefetch ?? 1000);
    const ackEvery = queueMode ? 1 : Math.max(1, Math.min(this.config.ackEvery ?? 200, prefetch >> 1));
    await ch.prefetch(prefetch, false);
    let last: ConsumeMessage | null = null;
    let pending = 0;
    const flush = (): void => {
      if (last !== null) {
        ch.ack(last, true);
        last = null;
        pending = 0;
      }
    };
    const tags: string[] = [];
    for (let p = 0; p < this.workload.partitionsPerTopic; p++) {
      const r = await ch.consume(
        this.queueName(topic, p),
        (msg) => {
          if (msg === null) return; // cancelled by the server
          onMessage(msg.content);
          if (queueMode) {
            ch.ack(msg, false);
            return;
          }
          last = msg;
          if (++pending >= ackEvery) flush();
        },
        { noAck: false },
      );
      tags.push(r.consumerTag);
    }
    const timer = setInterval(flush, ACK_FLUSH_MS);
    this.timers.add(timer);
    return {
      close: async () => {
        clearInterval(timer);
        this.timers.delete(timer);
        for (const t of tags) await ch.cancel(t).catch(() => undefined);
        flush();
        this.channels.delete(ch);
        await ch.close().catch(() => undefined);
      },
    };
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers.clear();
    for (const ch of this.channels) await ch.close().catch(() => undefined);
    this.channels.clear();
    if (this.confirm) await this.confirm.close().catch(() => undefined);
    this.confirm = null;
    const m = this.model;
    this.model = null;
    if (m) await m.close().catch(() => undefined);
  }

  destroy(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers.clear();
    const m = this.model;
    this.model = null;
    // amqplib has no destroy(): close without waiting.
    void m?.close().catch(() => undefined);
  }
}
