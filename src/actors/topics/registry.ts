/**
 * Topics and their partition actors. Metadata lives in `<data>/topics.json` (rewritten atomically:
 * temp file, fsync, rename, fsync the directory); each partition's log in
 * `<data>/topics/<topic>/<partition>/`. Partition actors are children of the partition supervisor;
 * when it restarts one, `replace` swaps the new handle in.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode } from '../../protocol/codes.js';
import { topicNameProblem, type TopicInfo } from '../../protocol/frames.js';
import { WeirError } from '../../common/errors.js';
import type { PartitionActor } from '../partition/handle.js';

export const MAX_PARTITIONS = 1024;

export interface Topic {
  readonly name: string;
  readonly partitions: number;
  /** Current handle per partition (replaced on restart). */
  readonly actors: PartitionActor[];
  /** Round-robin cursor for unkeyed batches (sticky per request). */
  nextSticky: number;
}

export interface PartitionHost {
  /** Start the actors of a topic's partitions under supervision; resolves when all serve. */
  startPartitions(topic: string, partitions: number): Promise<PartitionActor[]>;
}

export class TopicRegistry {
  private readonly topics = new Map<string, Topic>();
  private readonly file: string;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly dataDir: string) {
    this.file = path.join(dataDir, 'topics.json');
  }

  /** Topic definitions stored on disk (read before partition actors exist). */
  stored(): TopicInfo[] {
    if (!fs.existsSync(this.file)) return [];
    const parsed = JSON.parse(fs.readFileSync(this.file, 'utf8')) as { topics: TopicInfo[] };
    return parsed.topics;
  }

  partitionDir(topic: string, partition: number): string {
    return path.join(this.dataDir, 'topics', topic, String(partition));
  }

  /**
   * Register started actors: at boot, and again when the partition supervisor itself was restarted.
   * An existing Topic is updated in place, because subscriptions and requests hold on to it.
   */
  adopt(name: string, actors: PartitionActor[]): Topic {
    const existing = this.topics.get(name);
    if (existing && existing.partitions === actors.length) {
      existing.actors.splice(0, actors.length, ...actors);
      return existing;
    }
    const t: Topic = { name, partitions: actors.length, actors, nextSticky: 0 };
    this.topics.set(name, t);
    return t;
  }

  get(name: string): Topic | undefined {
    return this.topics.get(name);
  }

  list(): TopicInfo[] {
    return [...this.topics.values()].map((t) => ({ topic: t.name, partitions: t.partitions }));
  }

  all(): IterableIterator<Topic> {
    return this.topics.values();
  }

  replace(name: string, partition: number, actor: PartitionActor): void {
    const t = this.topics.get(name);
    if (t) t.actors[partition] = actor;
  }

  /** Create a topic (serialized: concurrent creates of one name see one winner). */
  create(name: string, partitions: number, host: PartitionHost): Promise<{ topic: Topic; created: boolean }> {
    const run = async (): Promise<{ topic: Topic; created: boolean }> => {
      const problem = topicNameProblem(name);
      if (problem) throw new WeirError(ErrorCode.INVALID_TOPIC_NAME, `${problem}: ${JSON.stringify(String(name).slice(0, 60))}`);
      if (!Number.isInteger(partitions) || partitions < 1 || partitions > MAX_PARTITIONS) {
        throw new WeirError(ErrorCode.INVALID_PARTITIONS, `partitions must be an integer from 1 to ${MAX_PARTITIONS}, got ${String(partitions)}`);
      }
      const existing = this.topics.get(name);
      if (existing) {
        if (existing.partitions === partitions) return { topic: existing, created: false };
        throw new WeirError(ErrorCode.TOPIC_EXISTS, `topic ${name} exists with ${existing.partitions} partitions, not ${partitions}`, { details: { partitions: existing.partitions } });
      }
      const actors = await host.startPartitions(name, partitions);
      const topic = this.adopt(name, actors);
      this.persist();
      return { topic, created: true };
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private persist(): void {
    fs.mkdirSync(this.dataDir, { recursive: true });
    const tmp = this.file + '.tmp';
    fs.writeFileSync(tmp, JSON.stringify({ version: 1, topics: this.list() }, null, 2));
    const fd = fs.openSync(tmp, 'r');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, this.file);
    const dfd = fs.openSync(this.dataDir, 'r');
    fs.fsyncSync(dfd);
    fs.closeSync(dfd);
  }
}
