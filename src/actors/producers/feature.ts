/**
 * Exactly-once append (idempotent producers), installed with the gateway: the `init_producer` op
 * hands out producer ids (ids.ts). The rest lives where the data is: the gateway stamps idempotent
 * batches (batch.ts, called from Gateway.produce) and each partition actor deduplicates them
 * (src/actors/partition/producer-state.ts). See docs/exactly-once.md.
 */
import path from 'node:path';
import type { Feature, FeatureContext } from '../../gateway/features.js';
import { WeirError } from '../../common/errors.js';
import { ErrorCode } from '../../protocol/codes.js';
import { ProducerIds } from './ids.js';

export const PRODUCERS_DIR = 'producers';

export function installProducers(ctx: FeatureContext): Feature {
  const ids = new ProducerIds(path.join(ctx.dataDir, PRODUCERS_DIR));
  ctx.gateway.setProducerIdHighWater(() => ids.highWater);
  ctx.gateway.registerOp('init_producer', (conn, id) => {
    if (id === undefined) throw new WeirError(ErrorCode.BAD_REQUEST, '"init_producer" needs a non-negative integer "id"', { details: { field: 'id' } });
    ctx.gateway.send(conn, { op: 'result', id, producerId: ids.allocate() });
  });
  return { name: 'producers', close: () => undefined };
}
