/**
 * How long a topic name the data directory can hold. A topic is a directory,
 * `<data>/topics/<topic>/<partition>/`, and the broker derives more topics from it: its delayed
 * messages live in `__delay.<topic>` (the longest derived directory name) and its dead letters in
 * `<topic>.dlq` (a topic of its own, so held to the same limit; a topic whose `.dlq` name would be
 * over it has no default dead-letter topic). Group names never become file names.
 *
 *   longest topic name = min(249, NAME_MAX − len("__delay."), what the data directory's path leaves of PATH_MAX)
 *
 * which is 247 on the usual file systems (NAME_MAX 255: ext4, xfs, btrfs, tmpfs). NAME_MAX is
 * probed once in the data directory (eCryptfs, for one, allows 143).
 */
import fs from 'node:fs';
import path from 'node:path';

/** Where a topic's delayed messages wait (the time feature, src/features/scheduler/): `__delay.<topic>`. */
export const SCHEDULE_TOPIC_PREFIX = '__delay.';
/** The half messages of every open transaction (src/features/transactions/). */
export const HALF_TOPIC = '__txn_half';

/** Kafka's limit, kept as the ceiling. */
export const MAX_TOPIC_NAME = 249;
/** Linux's NAME_MAX on the usual file systems: the probe's upper bound and its answer when it cannot tell. */
const DEFAULT_NAME_MAX = 255;
const PATH_MAX = 4096;
/**
 * Bytes of a partition file's path beyond `<data>/topics/<derived topic name>`: `/<partition ≤ 1023>/`
 * plus its longest file name (a 20-digit segment name with `.index`, or a temporary file).
 */
const PARTITION_PATH_BYTES = 64;

export interface TopicNameLimits {
  /** The data directory's NAME_MAX, in bytes (topic names are ASCII: bytes = characters). */
  nameMax: number;
  /** The longest topic name a client may create. */
  maxTopic: number;
  /** Why it is that: said in INVALID_TOPIC_NAME messages. */
  reason: string;
}

export function topicNameLimits(dataDir: string, nameMax = probeNameMax(dataDir)): TopicNameLimits {
  const byName = nameMax - SCHEDULE_TOPIC_PREFIX.length;
  const byPath = PATH_MAX - 1 - Buffer.byteLength(path.join(path.resolve(dataDir), 'topics/')) - SCHEDULE_TOPIC_PREFIX.length - PARTITION_PATH_BYTES;
  const maxTopic = Math.max(1, Math.min(MAX_TOPIC_NAME, byName, byPath));
  const reason =
    maxTopic === MAX_TOPIC_NAME
      ? `topic names are at most ${MAX_TOPIC_NAME} characters`
      : byName <= byPath
        ? `the data directory takes file names of up to ${nameMax} bytes, and the broker keeps a topic's delayed messages in the topic "${SCHEDULE_TOPIC_PREFIX}<topic>"`
        : `the data directory's path (${dataDir}) leaves room for no longer one within PATH_MAX (${PATH_MAX} bytes)`;
  return { nameMax, maxTopic, reason };
}

/** `<topic>.dlq` when that is a name the data directory can hold, else null (no default dead-letter topic). */
export function defaultDeadLetterTopic(topic: string, maxTopic: number): string | null {
  const dlq = `${topic}.dlq`;
  return dlq.length <= maxTopic ? dlq : null;
}

/**
 * The longest file name `dir` takes: a directory of that name is made and removed (once, at start).
 * DEFAULT_NAME_MAX when it cannot tell (a read-only directory, say: nothing will be created there anyway).
 */
export function probeNameMax(dir: string): number {
  const fits = (n: number): boolean | null => {
    const probe = path.join(dir, `.name-max-probe-${process.pid}-`.padEnd(n, 'x'));
    try {
      fs.mkdirSync(probe);
      fs.rmdirSync(probe);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return code === 'ENAMETOOLONG' ? false : code === 'EEXIST' ? true : null;
    }
  };
  const first = fits(DEFAULT_NAME_MAX);
  if (first !== false) return DEFAULT_NAME_MAX;
  let lo = 32; // every file system takes the broker's own fixed names
  let hi = DEFAULT_NAME_MAX - 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(mid) === false) hi = mid - 1;
    else lo = mid;
  }
  return lo;
}
