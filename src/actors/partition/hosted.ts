/**
 * Open one partition actor where it will run (its worker thread, or the gateway's thread): recover
 * its log, rebuild its idempotent producers' state, and wire a PartitionCore to its two rings. The
 * host decides only how the core is woken and how it waits for output space (`ports`).
 */
import { PartitionLog } from '../../log/index.js';
import { RingReader, RingWriter } from '../../ring/index.js';
import { PartitionCore, type PartitionPorts } from './core.js';
import { ProducerStateStore } from './producer-state-store.js';
import type { PartitionSlotData, SlotReady } from '../../partition-worker/protocol.js';

export interface HostedPartition {
  log: PartitionLog;
  input: RingReader;
  output: RingWriter;
  core: PartitionCore;
}

/** The ring ends the host wires into the core's ports. */
export interface HostedRings {
  input: RingReader;
  output: RingWriter;
}

/** What the gateway learns when a hosted partition opened: its offsets and what recovery cut. */
export function slotReady(log: PartitionLog): SlotReady {
  return { start: log.logStartOffset, end: log.durableOffset, truncatedBytes: log.recovery.truncatedBytes, truncatedAtOffset: log.recovery.truncatedAtOffset, damage: log.recovery.damage };
}

export function openHostedPartition(
  slot: PartitionSlotData,
  ports: (rings: HostedRings) => Omit<PartitionPorts, 'input' | 'output'>,
): HostedPartition {
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
    const input = new RingReader(slot.input);
    const output = new RingWriter(slot.output);
    const core = new PartitionCore(
      log,
      { input, output, ...ports({ input, output }) },
      { maxGroupBytes: 4 << 20, maxFetchBytes: Math.floor(output.capacity / 4), retentionCheckMs: 5_000 },
      table,
      snapshots,
    );
    return { log, input, output, core };
  } catch (err) {
    log.destroy();
    throw err;
  }
}
