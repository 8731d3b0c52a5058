/**
 * Open one partition actor where it will run (its worker thread, or the gateway's thread): recover
 * its log, rebuild its idempotent producers' state, and wire a PartitionCore to its two rings. The
 * host decides how the core is woken, how it waits for output space and where its rings come from
 * (`ports`).
 */
import { PartitionLog, type PartitionStore } from '../log/index.js';
import { PartitionCore, type PartitionPorts } from './core.js';
import { ProducerStateStore } from './producer-state-store.js';
import type { PartitionLogSlot, SlotReady } from './protocol.js';

export interface HostedPartition {
  log: PartitionStore;
  /** The core's ring ends and wake-ups, as the host gave them. */
  ports: PartitionPorts;
  core: PartitionCore;
}

/** What the gateway learns when a hosted partition opened: its offsets and what recovery cut. */
export function slotReady(log: PartitionStore): SlotReady {
  return { start: log.logStartOffset, end: log.durableOffset, truncatedBytes: log.recovery.truncatedBytes, truncatedAtOffset: log.recovery.truncatedAtOffset, damage: log.recovery.damage };
}

/**
 * Open the partition, then release its buffers and fds at once (PartitionCore.releaseIdle): it is
 * idle until its first request, and a broker opening thousands of partitions must not hold them all.
 * `ports.output` is not touched here (a host that allocates rings on demand allocates none):
 * `outputCapacity` is its ring's size.
 */
export function openHostedPartition(slot: PartitionLogSlot, ports: PartitionPorts, outputCapacity: number): HostedPartition {
  const log = PartitionLog.open({
    dir: slot.dir,
    topic: slot.topic,
    partition: slot.partition,
    segmentBytes: slot.log.segmentBytes,
    indexIntervalBytes: slot.log.indexIntervalBytes,
    fsync: slot.log.fsync,
    ...(slot.log.retentionBytes !== undefined ? { retentionBytes: slot.log.retentionBytes } : {}),
    ...(slot.log.retentionMs !== undefined ? { retentionMs: slot.log.retentionMs } : {}),
    ...(slot.log.segmentMs !== undefined ? { segmentMs: slot.log.segmentMs } : {}),
    ...(slot.log.pageCacheBytes !== undefined ? { pageCacheBytes: slot.log.pageCacheBytes } : {}),
    ...(slot.log.handedOver === true ? { handedOver: true } : {}),
  });
  try {
    // Exactly-once append: rebuild which idempotent batches this partition holds (snapshot + replay).
    const snapshots = new ProducerStateStore(slot.dir, undefined, slot.log.fsync);
    const { table } = snapshots.recover(log);
    const core = new PartitionCore(
      log,
      ports,
      {
        maxGroupBytes: 4 << 20,
        maxFetchBytes: Math.floor(outputCapacity / 4),
        retentionCheckMs: 5_000,
        ...(slot.idleReleaseMs !== undefined ? { idleReleaseMs: slot.idleReleaseMs } : {}),
      },
      table,
      snapshots,
    );
    core.releaseIdle();
    return { log, ports, core };
  } catch (err) {
    log.destroy();
    throw err;
  }
}
