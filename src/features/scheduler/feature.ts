/**
 * The time feature's wiring: delayed/scheduled messages and message expiry at produce.
 *
 * The control interceptor (it only sees produce batches with `weir-` headers) validates the time
 * headers, sends batches of scheduled messages (weir-delay / weir-deliver-at) to the schedule topic
 * `__delay.<topic>` and everything else on to the topic. One TopicScheduler per schedule topic
 * delivers them when due; their progress lives in `<dataDir>/scheduler/<sha256 of the schedule
 * topic's name>.fired.journal` (a topic name can be longer than a file name may be; the file holds it).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { WeirError } from '../../common/errors.js';
import { ErrorCode } from '../../protocol/codes.js';
import type { ControlInterceptor, Feature, FeatureContext, FeatureHost } from '../../core/feature-host.js';
import type { Topic } from '../../core/topics/registry.js';
import { FiredLog, firedJournalPath } from './fired-log.js';
import { DEFAULT_SCHEDULER_OPTIONS, SCHEDULE_TOPIC_PREFIX, TopicScheduler, scheduleTopicOf, type SchedulerOptions } from './scheduler.js';
import { TimeKind, classifyProduced, concatRecords, rewriteRecord } from '../../protocol/time-headers.js';
import { Header, headerInteger } from '../../protocol/headers.js';
import type { RecordIndex } from '../../protocol/record.js';

export interface TimeFeature extends Feature {
  /** The scheduler of a topic's delayed messages, if it has any (tests, diagnostics). */
  scheduler(topic: string): TopicScheduler | undefined;
}

export async function installTime(ctx: FeatureContext, options: Partial<SchedulerOptions> = {}): Promise<TimeFeature> {
  const { host } = ctx;
  const dir = path.join(ctx.dataDir, 'scheduler');
  const opts: SchedulerOptions = { ...DEFAULT_SCHEDULER_OPTIONS, ...options };
  const schedulers = new Map<string, TopicScheduler>();
  const starting = new Map<string, Promise<TopicScheduler>>();
  const logs: FiredLog[] = [];
  let closed = false;

  const start = async (schedule: Topic, target: Topic): Promise<TopicScheduler> => {
    const legacy = firedLogPath(dir, schedule.name);
    const log = new FiredLog(firedJournalPath(legacy), schedule.partitions, ctx.fsync, schedule.name, legacy);
    logs.push(log);
    const s = new TopicScheduler(host, schedule, target, log, opts);
    schedulers.set(target.name, s);
    await s.start();
    return s;
  };

  /** The scheduler of `target`, creating its schedule topic on first use. */
  const schedulerFor = (target: Topic): Promise<TopicScheduler> => {
    const existing = schedulers.get(target.name);
    if (existing) return Promise.resolve(existing);
    let p = starting.get(target.name);
    if (!p) {
      p = (async () => {
        if (closed) throw new WeirError(ErrorCode.SHUTTING_DOWN, 'broker is stopping; retry', { retryable: true });
        // deadLetterTopic null: the default `__delay.<topic>.dlq` is a reserved name that topics.json
        // would refuse on the next start (the scheduler dead-letters into the target's own DLQ).
        const schedule = await host.ensureTopic(scheduleTopicOf(target.name), target.partitions, { deadLetterTopic: null }, true);
        return start(schedule, target);
      })();
      starting.set(target.name, p);
      p.catch(() => starting.delete(target.name));
    }
    return p;
  };

  // Rebuild: every schedule topic on disk gets its scheduler back, indexed before we serve.
  const boot: Array<Promise<TopicScheduler>> = [];
  for (const t of [...host.topics.all()]) {
    if (!t.name.startsWith(SCHEDULE_TOPIC_PREFIX)) continue;
    const target = host.topics.get(t.name.slice(SCHEDULE_TOPIC_PREFIX.length));
    if (target) boot.push(start(t, target));
  }
  await Promise.all(boot);

  host.addControlInterceptor(timeInterceptor(host, schedulerFor));

  return {
    name: 'time',
    scheduler: (topic) => schedulers.get(topic),
    async close() {
      closed = true;
      await Promise.all([...schedulers.values()].map((s) => s.close()));
      await Promise.all(logs.map((log) => log.close()));
    },
  };
}

/**
 * The produce side: validate time headers (BAD_REQUEST), divert batches of scheduled messages to
 * the schedule log, pass the rest to `next` (the next interceptor of the chain, or the topic).
 * A batch must not mix scheduled and immediate messages (the answer's parts are offsets in one
 * log); the SDK sends scheduled messages in their own requests.
 */
export function timeInterceptor(host: FeatureHost, schedulerFor: (target: Topic) => Promise<TopicScheduler>): ControlInterceptor {
  return (req, next) => {
    const { topic, records, index, forced, outcome } = req;
    let scheduled = 0;
    for (let i = 0; i < index.count; i++) if (classifyProduced(records, index.start[i]!, i) === TimeKind.SCHEDULED) scheduled++;
    if (scheduled === 0) {
      next(req);
      return;
    }
    if (scheduled !== index.count) {
      throw new WeirError(ErrorCode.BAD_REQUEST, `a produce request must not mix scheduled messages (weir-delay / weir-deliver-at) with immediate ones (${scheduled} of ${index.count} are scheduled): send them in separate requests`, {
        details: { field: 'records', scheduled, count: index.count },
      });
    }
    if (topic.internal) throw new WeirError(ErrorCode.BAD_REQUEST, 'internal topics take no delayed messages', { details: { field: 'topic' } });
    // The frame's bytes are only valid during this callback: keep a copy for the schedule log, with
    // each weir-delay made absolute now (a weir-deliver-at next to it), so the due time counts from
    // when the broker received the message, not from when the schedule log appended it.
    const copy = withAbsoluteDelays(records, index, Date.now());
    schedulerFor(topic)
      .then(async (s) => {
        const answer = await host.append(s.schedule, copy, forced);
        // Indexed from the acknowledgement: nothing polls the schedule log once it was read at start.
        try {
          s.indexAppended(copy, answer.parts, answer.route);
        } catch (err) {
          // Stored and acknowledged: failing the produce now would make the client store it twice.
          console.error('weir scheduler: indexing an acknowledged delayed message failed (it is delivered after a restart)', err);
        }
        return answer;
      })
      .then(
        ({ parts, route }) => outcome.settled(false, parts, route),
        (err: unknown) => {
          outcome.failed(
            WeirError.isWeirError(err) ? err : new WeirError(ErrorCode.INTERNAL, `delayed produce failed: ${(err as Error)?.message ?? String(err)}`),
          );
          outcome.settled(true, [], undefined);
        },
      );
  };
}

/** A copy of the batch in which every record with weir-delay also has weir-deliver-at = now + delay. */
export function withAbsoluteDelays(records: Uint8Array, index: RecordIndex, now: number): Uint8Array {
  let anyDelay = false;
  for (let i = 0; i < index.count && !anyDelay; i++) if (headerInteger(records, index.start[i]!, Header.DELAY) !== null) anyDelay = true;
  if (!anyDelay) return records.slice();
  const parts: Uint8Array[] = [];
  for (let i = 0; i < index.count; i++) {
    const at = index.start[i]!;
    const delay = headerInteger(records, at, Header.DELAY);
    parts.push(delay === null ? records.slice(at, at + index.size[i]!) : rewriteRecord(records, at, NO_HEADERS, [[Header.DELIVER_AT, String(now + delay)]]));
  }
  return concatRecords(parts);
}
const NO_HEADERS: ReadonlySet<string> = new Set();

/**
 * The fired log of a schedule topic: named by a hash of the topic (names are up to 249 bytes,
 * more than a file name may be with its prefix and suffix). A log under the old name
 * (`<schedule topic>.fired`, from before the hash) is moved to the new one.
 */
export function firedLogPath(dir: string, scheduleTopic: string): string {
  const file = path.join(dir, `${createHash('sha256').update(scheduleTopic).digest('hex').slice(0, 40)}.fired`);
  const legacy = path.join(dir, `${scheduleTopic}.fired`);
  if (Buffer.byteLength(path.basename(legacy)) <= 255 && !fs.existsSync(file) && fs.existsSync(legacy)) fs.renameSync(legacy, file);
  return file;
}
