/**
 * Topics and their partition actors. Metadata lives in `<data>/topics.json` (rewritten atomically:
 * temp file, fsync, rename, fsync the directory); each partition's log in
 * `<data>/topics/<topic>/<partition>/`. Partition actors are children of the partition supervisor;
 * when it restarts one, `replace` swaps the new handle in.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode } from '../../protocol/codes.js';
import { INTERNAL_TOPIC_PREFIX, topicNameProblem, type TopicConfig, type TopicInfo } from '../../protocol/frames.js';
import { WeirError } from '../../common/errors.js';
import { writeFileAtomic } from '../../common/atomic-file.js';
import { storageFailure } from '../../common/storage-failure.js';
import type { PartitionRef } from '../../partition/ref.js';
import { resolveTopicConfig, topicConfigToWire, type ResolvedTopicConfig } from './config.js';
import { topicNameLimits, type TopicNameLimits } from './names.js';

/** A topic as stored in topics.json. */
export interface StoredTopic extends TopicInfo {
  config?: TopicConfig;
  /** Some record with `weir-` headers was stored in the topic (see Topic.hasControlRecords). */
  controlRecords?: true;
}

export const MAX_PARTITIONS = 1024;

export interface Topic {
  readonly name: string;
  readonly partitions: number;
  /** Current handle per partition (replaced on restart). */
  readonly actors: PartitionRef[];
  /** Round-robin cursor for unkeyed batches (sticky per request). */
  nextSticky: number;
  /** Messaging settings with defaults filled in; replaced (not mutated) by alter. */
  config: ResolvedTopicConfig;
  /** Named with the reserved `__` prefix: created by the broker, hidden from list_topics. */
  readonly internal: boolean;
  /**
   * Some record with `weir-` headers (ATTR_CONTROL) was ever stored in the topic: only then (or
   * with a ttlMs) do deliveries look for expired records. Set once (markControlRecords), durable.
   */
  hasControlRecords: boolean;
}

export type TopicListener = (topic: Topic) => void;

/** A partition that is not up: given up by the broker (`failed`) or being restarted, and its last error. */
export interface UnavailablePartition {
  topic: string;
  partition: number;
  state: 'failed' | 'restarting';
  code: string | null;
  message: string | null;
}

export interface PartitionLauncher {
  /** Start the actors of a topic's partitions under supervision; resolves when all serve. */
  startPartitions(topic: string, partitions: number): Promise<PartitionRef[]>;
  /** Stop and forget them again (a create that could not be made durable). */
  stopPartitions(topic: string): Promise<void>;
}

export class TopicRegistry {
  private readonly topics = new Map<string, Topic>();
  private readonly file: string;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly configs = new Map<string, ResolvedTopicConfig>();
  private readonly withControlRecords = new Set<string>();
  private readonly createdListeners: TopicListener[] = [];

  /** How long a topic name this data directory holds (every name derived from it included). */
  readonly limits: TopicNameLimits;
  /**
   * What stored() could not take as it was (an entry it skipped, a setting it reset), one line
   * each: the broker serves the rest, and `weir start` prints these.
   */
  readonly loadProblems: string[] = [];

  constructor(private readonly dataDir: string) {
    this.file = path.join(dataDir, 'topics.json');
    this.limits = topicNameLimits(dataDir);
  }

  /**
   * Topic definitions stored on disk (read before partition actors exist). An entry that cannot be
   * used is skipped, and a setting that is no longer valid (a dead-letter topic name longer than
   * this data directory holds, stored by an older broker) is reset, each with a line in
   * loadProblems: one bad entry must not keep the broker from serving the others.
   */
  stored(): StoredTopic[] {
    this.loadProblems.length = 0; // read again when the partition supervisor restarts
    if (!fs.existsSync(this.file)) return [];
    let parsed: { topics?: unknown };
    try {
      parsed = JSON.parse(fs.readFileSync(this.file, 'utf8')) as { topics?: unknown };
    } catch (err) {
      throw new WeirError(ErrorCode.STORAGE_ERROR, `cannot read the topic list ${this.file}: ${(err as Error).message}`, { cause: err });
    }
    const out: StoredTopic[] = [];
    const seen = new Set<string>();
    for (const t of Array.isArray(parsed.topics) ? (parsed.topics as unknown[]) : []) {
      const e = t as Partial<StoredTopic> | null;
      const name = typeof e?.topic === 'string' ? e.topic : null;
      if (e === null || typeof e !== 'object' || name === null || !/^[A-Za-z0-9._-]+$/.test(name) || name === '.' || name === '..' || seen.has(name)
        || !Number.isInteger(e.partitions) || e.partitions! < 1 || e.partitions! > MAX_PARTITIONS) {
        this.loadProblems.push(`${this.file}: skipped an entry that is not a topic (${JSON.stringify(t)?.slice(0, 80)})`);
        continue;
      }
      seen.add(name);
      this.configs.set(name, this.storedConfig(name, e.config));
      if (e.controlRecords === true) this.withControlRecords.add(name);
      out.push(e as StoredTopic);
    }
    return out;
  }

  private storedConfig(name: string, raw: unknown): ResolvedTopicConfig {
    try {
      return resolveTopicConfig(name, raw, undefined, this.limits.maxTopic);
    } catch (err) {
      const problem = `topic ${name}: its stored settings are refused (${(err as Error).message})`;
      const dlq = (raw as { deadLetterTopic?: unknown } | null)?.deadLetterTopic;
      if (typeof raw === 'object' && raw !== null && dlq !== undefined && dlq !== null) {
        try {
          const config = resolveTopicConfig(name, { ...raw, deadLetterTopic: null }, undefined, this.limits.maxTopic);
          this.loadProblems.push(`${problem}: serving it without a dead-letter topic (rejected and exhausted messages are dropped) until alter_topic sets one`);
          return config;
        } catch {
          // not only the dead-letter topic: the defaults, below
        }
      }
      this.loadProblems.push(`${problem}: serving it with the default settings`);
      return resolveTopicConfig(name, undefined, undefined, this.limits.maxTopic);
    }
  }

  /** Partitions that are not up, and why (/healthz, and `weir start` at start). */
  unavailable(): UnavailablePartition[] {
    const down: UnavailablePartition[] = [];
    for (const t of this.topics.values()) {
      for (const [partition, a] of t.actors.entries()) {
        if (a.available) continue;
        const why = a.failure ?? a.lastError;
        down.push({ topic: t.name, partition, state: a.failure ? 'failed' : 'restarting', code: why?.code ?? null, message: why?.message ?? null });
      }
    }
    return down;
  }

  /** Called for every topic created from now on (not for those adopted at boot). */
  onCreated(listener: TopicListener): void {
    this.createdListeners.push(listener);
  }

  partitionDir(topic: string, partition: number): string {
    return path.join(this.dataDir, 'topics', topic, String(partition));
  }

  /**
   * Register started actors: at boot, and again when the partition supervisor itself was restarted.
   * An existing Topic is updated in place, because subscriptions and requests hold on to it.
   */
  adopt(name: string, actors: PartitionRef[]): Topic {
    const existing = this.topics.get(name);
    if (existing && existing.partitions === actors.length) {
      existing.actors.splice(0, actors.length, ...actors);
      return existing;
    }
    const config = this.configs.get(name) ?? resolveTopicConfig(name, undefined, undefined, this.limits.maxTopic);
    this.configs.set(name, config);
    const t: Topic = {
      name,
      partitions: actors.length,
      actors,
      nextSticky: 0,
      config,
      internal: name.startsWith(INTERNAL_TOPIC_PREFIX),
      hasControlRecords: this.withControlRecords.has(name),
    };
    this.topics.set(name, t);
    return t;
  }

  get(name: string): Topic | undefined {
    return this.topics.get(name);
  }

  /** Topics clients see (internal ones excluded). */
  list(): TopicInfo[] {
    const out: TopicInfo[] = [];
    for (const t of this.topics.values()) if (!t.internal) out.push({ topic: t.name, partitions: t.partitions });
    return out;
  }

  all(): IterableIterator<Topic> {
    return this.topics.values();
  }

  replace(name: string, partition: number, actor: PartitionRef): void {
    const t = this.topics.get(name);
    if (t) t.actors[partition] = actor;
  }

  /**
   * Create a topic (serialized: concurrent creates of one name see one winner). `config` applies
   * only when the topic is created; an existing topic keeps its settings (use alter).
   * `internal` allows the reserved `__` prefix: for the broker's own topics, never for clients.
   */
  create(name: string, partitions: number, launcher: PartitionLauncher, config?: unknown, options: { internal?: boolean } = {}): Promise<{ topic: Topic; created: boolean }> {
    const run = async (): Promise<{ topic: Topic; created: boolean }> => {
      const { nameMax, maxTopic, reason } = this.limits;
      // An internal name (`__delay.<topic>`) is derived from a topic held to maxTopic: it only has to be a file name.
      const problem = options.internal && typeof name === 'string' && name.startsWith(INTERNAL_TOPIC_PREFIX) ? topicNameProblem(name.slice(INTERNAL_TOPIC_PREFIX.length), nameMax - INTERNAL_TOPIC_PREFIX.length) : topicNameProblem(name, maxTopic);
      if (problem) {
        const why = typeof name === 'string' && name.length > maxTopic ? ` (${reason})` : '';
        throw new WeirError(ErrorCode.INVALID_TOPIC_NAME, `${problem}${why}: ${JSON.stringify(String(name).slice(0, 60))}`, { details: { maxLength: maxTopic } });
      }
      if (!Number.isInteger(partitions) || partitions < 1 || partitions > MAX_PARTITIONS) {
        throw new WeirError(ErrorCode.INVALID_PARTITIONS, `partitions must be an integer from 1 to ${MAX_PARTITIONS}, got ${String(partitions)}`);
      }
      const existing = this.topics.get(name);
      if (existing) {
        if (existing.partitions === partitions) return { topic: existing, created: false };
        throw new WeirError(ErrorCode.TOPIC_EXISTS, `topic ${name} exists with ${existing.partitions} partitions, not ${partitions}`, { details: { partitions: existing.partitions } });
      }
      this.configs.set(name, resolveTopicConfig(name, config, undefined, this.limits.maxTopic));
      const actors = await launcher.startPartitions(name, partitions);
      const topic = this.adopt(name, actors);
      try {
        this.persist();
      } catch (err) {
        // Not half-created: forget it and stop its partitions, so the same create works later.
        this.topics.delete(name);
        this.configs.delete(name);
        await launcher.stopPartitions(name);
        throw storageFailure(`cannot create topic ${name}: writing ${this.file}`, err, (f) => new WeirError(ErrorCode.STORAGE_ERROR, `cannot create topic ${name}: writing ${this.file}: ${f.message}`, { cause: err }));
      }
      for (const l of this.createdListeners) l(topic);
      return { topic, created: true };
    };
    return this.serialize(run);
  }

  /** Change some settings of a topic; the rest keep their value. Durable before it resolves. */
  alter(name: string, config: unknown): Promise<Topic> {
    return this.serialize(async () => {
      const topic = this.topics.get(name);
      if (!topic) throw topicNotFound(String(name));
      topic.config = resolveTopicConfig(name, config, topic.config, this.limits.maxTopic);
      this.configs.set(name, topic.config);
      this.persist();
      return topic;
    });
  }

  /**
   * Record (durably, before the records are appended: a crash must not forget it) that `topic`
   * now holds records with `weir-` headers. Once per topic ever; throws if topics.json cannot be
   * written (the produce fails and is retried, so no such record is stored unflagged).
   */
  markControlRecords(topic: Topic): void {
    if (topic.hasControlRecords) return;
    this.withControlRecords.add(topic.name);
    try {
      this.persist();
    } catch (err) {
      this.withControlRecords.delete(topic.name);
      throw err;
    }
    topic.hasControlRecords = true;
  }

  private serialize<T>(run: () => Promise<T>): Promise<T> {
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private persist(): void {
    fs.mkdirSync(this.dataDir, { recursive: true });
    const topics: StoredTopic[] = [...this.topics.values()].map((t) => {
      const stored: StoredTopic = { topic: t.name, partitions: t.partitions, config: topicConfigToWire(t.config) };
      if (this.withControlRecords.has(t.name)) stored.controlRecords = true;
      return stored;
    });
    writeFileAtomic(this.file, JSON.stringify({ version: 1, topics }, null, 2), { durable: true });
  }
}

/** TOPIC_NOT_FOUND for the topic `name` (quoted, cut to 60 characters: it comes from a request). */
export function topicNotFound(name: string): WeirError {
  return new WeirError(ErrorCode.TOPIC_NOT_FOUND, `topic ${JSON.stringify(name.slice(0, 60))} does not exist`);
}
