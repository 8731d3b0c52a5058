/**
 * Exactly-once append (idempotent producers), installed with the gateway: the `init_producer` op
 * hands out producer ids (ids.ts) bound to the asking connection with a secret, and moves an id to
 * a new connection for a client that presents its secret (a reclaim: the epoch goes up, the old
 * connection is fenced). The core asks the producer guard, per idempotent produce, whether the
 * connection holds the id it names (registry.ts); bindings survive restarts (bindings-log.ts). The
 * rest lives where the data is: the core stamps idempotent batches (src/core/producer-batch.ts)
 * and each partition actor deduplicates them (src/partition/producer-state.ts). See
 * docs/exactly-once.md.
 */
import path from 'node:path';
import type { Feature, FeatureContext, Session } from '../../core/feature-host.js';
import { badRequest } from '../../common/errors.js';
import { ProducerIds } from './ids.js';
import { BindingLog } from './bindings-log.js';
import { ProducerRegistry, SECRET_BYTES, hashSecret, newSecret, type BindingEntry } from './registry.js';

export const PRODUCERS_DIR = 'producers';
/** Expire idle ids and write the bindings' last-use times this often. */
const MAINTENANCE_MS = 3_600_000;

export async function installProducers(ctx: FeatureContext): Promise<Feature> {
  const dir = path.join(ctx.dataDir, PRODUCERS_DIR);
  const ids = new ProducerIds(dir);
  const registry = new ProducerRegistry(); // MAX_PRODUCER_IDS, PRODUCER_ID_EXPIRY_MS
  const log = await BindingLog.open(dir, ctx.fsync, (entries) => {
    registry.load(entries, Date.now());
    return registry.entries();
  });
  let lastRewriteAt = Date.now();
  let compacting: Promise<void> | null = null;
  const compact = (): Promise<void> => {
    if (compacting) return compacting;
    lastRewriteAt = Date.now();
    const p = log.rewrite(() => registry.entries()).catch((err: unknown) => {
      console.error(`weir producers: rewriting ${log.file} failed: ${(err as Error).message}`);
    });
    compacting = p.finally(() => (compacting = null));
    return compacting;
  };
  const write = async (entry: BindingEntry): Promise<void> => {
    await log.append(entry);
    if (log.linesSinceRewrite > Math.max(1024, 2 * registry.size)) void compact();
  };

  ctx.host.setProducerGuard((conn, producerId, epoch) => {
    if (producerId >= ids.highWater) {
      // An invented id could collide with one handed out later, and share its sequence state.
      throw badRequest('producerId', `producer id ${producerId} was not handed out by init_producer on this broker: call init_producer`);
    }
    registry.check(conn.id, producerId, epoch, Date.now());
  });

  ctx.host.registerOp({
    // An id grants nothing by itself (a produce under it needs `produce` on its topic); it is bound to the principal that obtained it.
    op: 'init_producer', requestId: 'required', whenStopping: 'serve', access: 'session',
    handler: async (conn, id, f) => {
      if (f.producerId === undefined && f.secret === undefined) {
        const producerId = ids.allocate();
        const secret = newSecret();
        const entry = registry.create(producerId, hashSecret(secret), conn.id, Date.now(), ownerOf(conn));
        try {
          await write(entry);
        } catch (err) {
          registry.forget(producerId); // never answered: the id is burnt, not handed out
          throw err;
        }
        ctx.host.send(conn, { op: 'result', id, producerId, epoch: 0, secret });
        return;
      }
      // A reclaim: the client presents the secret it got with the id.
      const { producerId, secret } = f;
      if (typeof producerId !== 'number' || !Number.isSafeInteger(producerId) || producerId < 0) {
        throw badRequest('producerId', '"producerId" must be a non-negative integer (from init_producer), with its "secret"');
      }
      if (!(secret instanceof Uint8Array) || secret.length !== SECRET_BYTES) {
        throw badRequest('secret', `"secret" must be the ${SECRET_BYTES}-byte string init_producer answered with producer id ${producerId}`);
      }
      if (producerId >= ids.highWater) throw badRequest('producerId', `producer id ${producerId} was not handed out by init_producer on this broker`);
      // Hash now: `secret` views the socket's message buffer, which is gone after this turn.
      const entry = registry.reclaim(producerId, hashSecret(secret), conn.id, Date.now(), ownerOf(conn));
      await write(entry);
      ctx.host.send(conn, { op: 'result', id, producerId, epoch: entry.e });
    },
  });

  const maintenance = setInterval(() => {
    if (registry.sweep(Date.now()) > 0 || registry.usedSince(lastRewriteAt)) void compact();
  }, MAINTENANCE_MS);
  maintenance.unref();

  return {
    name: 'producers',
    close: async () => {
      clearInterval(maintenance);
      // Keep the bindings' last-use times (idle expiry counts from them after the restart).
      if (registry.usedSince(lastRewriteAt)) await compact();
      else await compacting;
      await log.close();
    },
  };
}

/** The principal a producer id is bound to: none on a broker without authentication (every session is the same open principal). */
function ownerOf(conn: Session): string | undefined {
  const p = conn.principal;
  return p === null || p.source === 'anonymous' ? undefined : p.name;
}
