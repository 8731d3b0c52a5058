/**
 * Registry of weir's named `diagnostics_channel` channels (after undici `lib/core/diagnostics.js`).
 * Publishers check `channel.hasSubscribers` before building a message. Subscribe with
 * `diagnostics_channel.subscribe(name, fn)` or `channels.x.subscribe(fn)`.
 *
 * Message shapes (all plain objects; `reason`/`error` are live Error objects, not plain ones):
 *
 * - `weir:child:start`          `{ supervisor, id, kind: 'initial'|'dynamic'|'restart', handle }`
 *                               published by a Supervisor after a child's `start()` resolved.
 * - `weir:child:exit`           `{ supervisor, id, normal, reason, requested }`
 *                               every child exit seen by a Supervisor; `requested` = the supervisor
 *                               had asked it to stop (close/terminate/strategy), not a crash.
 * - `weir:supervisor:restart`   `{ supervisor, id, ids, delayMs, restartsInPeriod, reason }`
 *                               a restart was scheduled for failed child `id`; `ids` = the children
 *                               that will be started (strategy set), after `delayMs` of backoff;
 *                               `reason` = why `id` failed (its exit reason or its start error).
 * - `weir:supervisor:escalate`  `{ supervisor, id, intensity, period, error, reason }`
 *                               restart intensity exceeded; the supervisor stops its children and
 *                               exits abnormally with `error` (SUPERVISOR_ESCALATED); `reason` = why
 *                               child `id` failed last (also `error.cause`).
 * - `weir:partition:restart`    `{ topic, partition, reason }` owned by the broker: a partition's actor
 *                               was replaced by a fresh one; `reason` = `{ code, message }` of why the
 *                               old one died (errno or innermost error code), or null.
 * - `weir:partition:move`       `{ topic, from, to, ms }` a topic's partition actors moved between
 *                               the gateway's thread and worker threads (`actorHost: 'auto'`, or
 *                               Broker.moveTopic); `to` = where they run now, `ms` = how long it took.
 * - `weir:wal:truncated`        owned by the WAL module.
 * - `weir:wal:write-failed`     `{ topic, partition, dir, code, message, records }` a group commit
 *                               failed (STORAGE_FULL: disk full; STORAGE_ERROR) and was rolled back:
 *                               its `records` were refused, none acknowledged.
 * - `weir:wal:damage`           `{ topic, partition, dir, ...DamagedRange }` (src/log/damage.ts) a damaged region of a
 *                               segment was found (by recovery or a read) and recorded: `kind`,
 *                               `segment`, `position`, `bytes`, lost offsets [`from`, `to`),
 *                               `reason`, `detectedBy`. Published on the thread that runs the log;
 *                               a partition thread forwards it to the gateway's thread.
 * - `weir:txn:error`           `{ txn, op, error }` owned by the transactions feature (apply, timeout,
 *                               check, compact, sync failures; retried).
 * - `weir:wal:sync-failed`      `{ dir, segment, error }` the background fdatasync of a sealed
 *                               segment failed; the recovery point stops advancing. Also a failed
 *                               page-cache drop-behind (its sync or posix_fadvise): drop-behind
 *                               stops for that log; `error.syscall` says which.
 * - `weir:gateway:backpressure` owned by the gateway.
 * - `weir:gateway:slow-consumer` `{ conn, bufferedBytes, overMs }` the gateway closed a connection
 *                               that stayed over its buffered-bytes bound for slowConsumerCloseMs.
 * - `weir:scheduler:fired-log-failed` `{ file, topic, operation, error, pending }` a write, sync or
 *                               compaction of a scheduler's fired log failed; its marks stay
 *                               pending and are retried (src/features/scheduler/fired-log.ts).
 * - `weir:journal:sync`         `{ file }` a side journal (group offsets, queue journal, fired log,
 *                               transaction log, producer-state snapshot) was fdatasynced
 *                               (src/journal/io.ts). Per thread: a snapshot written on a
 *                               partition worker is published there.
 * - `weir:journal:skipped`      `{ file, skippedLines, positions, truncatedBytes }` replay of a journal
 *                               skipped damaged entries (`positions`: byte offsets of the first
 *                               ones) and cut a torn last entry (src/journal/journal.ts).
 * - `weir:partition:failed`     `{ topic, partition, code, message, failures, answer }` the broker
 *                               gave up on a partition: its actor failed `failures` times in the
 *                               restart period (or failed to start when the broker started); `code`
 *                               and `message` say why (errno or innermost error code); requests to it
 *                               are answered with code `answer` until it is started again, one
 *                               restart period later.
 * - `weir:tls:reload`           `{ ok, trigger, certFile, certificate? , error? }` the gateway loaded
 *                               its TLS files again (`trigger`: 'signal', 'files' changed, or a
 *                               'call'): `ok` with the new `certificate` (subject, serialNumber,
 *                               fingerprint256, validTo), which new connections get; else `error`,
 *                               and the previous certificate is still served.
 */
import diagnostics_channel from 'node:diagnostics_channel';

export const channels = Object.freeze({
  childStart: diagnostics_channel.channel('weir:child:start'),
  childExit: diagnostics_channel.channel('weir:child:exit'),
  supervisorRestart: diagnostics_channel.channel('weir:supervisor:restart'),
  supervisorEscalate: diagnostics_channel.channel('weir:supervisor:escalate'),
  partitionRestart: diagnostics_channel.channel('weir:partition:restart'),
  partitionMove: diagnostics_channel.channel('weir:partition:move'),
  walTruncated: diagnostics_channel.channel('weir:wal:truncated'),
  walDamage: diagnostics_channel.channel('weir:wal:damage'),
  walWriteFailed: diagnostics_channel.channel('weir:wal:write-failed'),
  walSyncFailed: diagnostics_channel.channel('weir:wal:sync-failed'),
  txnError: diagnostics_channel.channel('weir:txn:error'),
  gatewayBackpressure: diagnostics_channel.channel('weir:gateway:backpressure'),
  schedulerFiredLogFailed: diagnostics_channel.channel('weir:scheduler:fired-log-failed'),
  journalSync: diagnostics_channel.channel('weir:journal:sync'),
  journalSkipped: diagnostics_channel.channel('weir:journal:skipped'),
  gatewaySlowConsumer: diagnostics_channel.channel('weir:gateway:slow-consumer'),
  partitionFailed: diagnostics_channel.channel('weir:partition:failed'),
  tlsReload: diagnostics_channel.channel('weir:tls:reload'),
});

export type ChannelName = keyof typeof channels;
