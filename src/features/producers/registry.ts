/**
 * Who may use a producer id (pure: no IO, the clock is passed in). Kafka's model, shaped to weir:
 *
 * - `init_producer` hands out an id *bound to the connection that asked*, at epoch 0, with a random
 *   secret that only that client learns (the registry keeps its SHA-256, never the secret).
 * - A produce naming the id is accepted only from the connection holding it (and, when the request
 *   carries `epoch`, only at the current epoch). Anyone else is refused before the batch reaches
 *   the partition: ids are sequential, so without this any connection could send a batch under
 *   another producer's id and next sequence, and the owner's real batch would then be taken for a
 *   resend of it (acknowledged, never stored).
 * - The client reclaims its id on a new connection (after a reconnect, a broker restart) by
 *   presenting the secret: the epoch goes up by one and the binding moves; the old connection is
 *   fenced (PRODUCER_FENCED) from then on.
 * - A connection that closes releases nothing: its client will reclaim. Bindings carry no
 *   connection across a restart (holder 0 until reclaimed).
 * - An id also belongs to the principal that obtained it (its name, kept with the binding): a
 *   reclaim by another principal is refused even with the secret.
 *
 * Bounded: at most `maxIds` bindings (the least recently used ones are forgotten first, in batches
 * of 1/16 when full) and none unused for `expiryMs` (Kafka's producer-id expiration); a forgotten id
 * answers PRODUCER_ID_NOT_OWNED. "Used" is an init, a reclaim or an accepted produce.
 */
import crypto from 'node:crypto';
import { WeirError, badRequest } from '../../common/errors.js';
import { ErrorCode } from '../../protocol/codes.js';

/** Bytes of a producer secret (random, from init_producer). */
export const SECRET_BYTES = 32;
/** Default: ids unused this long are forgotten (as Kafka's transactional.id.expiration.ms, 7 days). */
export const PRODUCER_ID_EXPIRY_MS = 7 * 24 * 3600 * 1000;
/** Default: the most producer ids a broker tracks at once. */
export const MAX_PRODUCER_IDS = 100_000;

/** A binding as the log stores it: id, epoch, hex SHA-256 of the secret, last use (ms), owning principal (absent: any). */
export interface BindingEntry {
  p: number;
  e: number;
  h: string;
  t: number;
  o?: string;
}

interface Binding {
  epoch: number;
  hash: Buffer;
  lastUsed: number;
  /** FeatureHost connection id holding the id at `epoch`; 0: none (after a restart, until reclaimed). */
  holder: number;
  /** The connection that held the epoch before: its batches are answered PRODUCER_FENCED. */
  fenced: number;
  /** The name of the principal that obtained the id (undefined: a binding from before principals). */
  owner: string | undefined;
}

export function hashSecret(secret: Uint8Array): Buffer {
  return crypto.createHash('sha256').update(secret).digest();
}

export function newSecret(): Buffer {
  return crypto.randomBytes(SECRET_BYTES);
}

export interface RegistryLimits {
  maxIds: number;
  expiryMs: number;
}

export class ProducerRegistry {
  private readonly bindings = new Map<number, Binding>();

  constructor(private readonly limits: RegistryLimits = { maxIds: MAX_PRODUCER_IDS, expiryMs: PRODUCER_ID_EXPIRY_MS }) {}

  get size(): number {
    return this.bindings.size;
  }

  /** Replay persisted bindings (a later entry for an id replaces an earlier one); drops expired ones, keeps the cap. */
  load(entries: Iterable<BindingEntry>, now: number): void {
    for (const e of entries) {
      if (!validEntry(e)) continue;
      this.bindings.set(e.p, { epoch: e.e, hash: Buffer.from(e.h, 'hex'), lastUsed: e.t, holder: 0, fenced: 0, owner: e.o });
    }
    this.sweep(now);
    if (this.bindings.size > this.limits.maxIds) this.evict(this.bindings.size - this.limits.maxIds);
  }

  /** Bind a freshly allocated id to connection `conn` of principal `owner` at epoch 0. Forgets old ids first when full. */
  create(producerId: number, secretHash: Buffer, conn: number, now: number, owner?: string): BindingEntry {
    if (this.bindings.size >= this.limits.maxIds) {
      this.sweep(now);
      if (this.bindings.size >= this.limits.maxIds) this.evict(Math.max(1, this.limits.maxIds >>> 4));
    }
    const b: Binding = { epoch: 0, hash: secretHash, lastUsed: now, holder: conn, fenced: 0, owner };
    this.bindings.set(producerId, b);
    return toEntry(producerId, b);
  }

  /** Undo `create` (its binding could not be written: the client never learns the id). */
  forget(producerId: number): void {
    this.bindings.delete(producerId);
  }

  /**
   * Move `producerId` to connection `conn` at the next epoch, for a client of principal `principal`
   * presenting the secret whose hash is `secretHash`. Throws PRODUCER_ID_NOT_OWNED (unknown id,
   * another secret, or another principal than the one that obtained it).
   */
  reclaim(producerId: number, secretHash: Buffer, conn: number, now: number, principal?: string): BindingEntry {
    const b = this.bindings.get(producerId);
    if (b === undefined) {
      throw notOwned(producerId, `producer id ${producerId} is not known to this broker (unused for ${Math.round(this.limits.expiryMs / 3_600_000)} h, beyond the ${this.limits.maxIds} ids it tracks, or its binding was not yet synced at a crash): call init_producer without producerId for a new one`, 'unknown');
    }
    // Constant time: the comparison must not tell an attacker how much of a guess was right.
    if (secretHash.length !== b.hash.length || !crypto.timingSafeEqual(secretHash, b.hash)) {
      throw notOwned(producerId, `the secret does not match producer id ${producerId}: only the client that obtained it can reclaim it`, 'secret');
    }
    if (b.owner !== undefined && b.owner !== principal) {
      throw notOwned(producerId, `producer id ${producerId} belongs to another principal: only the principal that obtained it can reclaim it`, 'principal');
    }
    if (b.holder !== conn) b.fenced = b.holder;
    b.holder = conn;
    b.epoch++;
    b.lastUsed = now;
    return toEntry(producerId, b);
  }

  /**
   * May connection `conn` send a batch under `producerId` (at `epoch`, when the request names one)?
   * Throws PRODUCER_FENCED, PRODUCER_ID_NOT_OWNED or BAD_REQUEST (an epoch never handed out);
   * nothing else. The hot path: one Map lookup and two compares.
   */
  check(conn: number, producerId: number, epoch: number | undefined, now: number): void {
    const b = this.bindings.get(producerId);
    if (b !== undefined && b.holder === conn && (epoch === undefined || epoch === b.epoch)) {
      b.lastUsed = now;
      return;
    }
    if (b === undefined) {
      throw notOwned(producerId, `producer id ${producerId} is not held by this connection (it is not known to this broker: forgotten, or never handed out to you); nothing was written`, 'unknown');
    }
    if ((epoch !== undefined && epoch < b.epoch) || (b.holder !== conn && b.fenced === conn)) {
      throw new WeirError(ErrorCode.PRODUCER_FENCED,
        `producer id ${producerId} was reclaimed at epoch ${b.epoch}${epoch !== undefined ? ` (this batch: epoch ${epoch})` : ''}: this producer is fenced; nothing was written`,
        { details: { producerId, epoch: b.epoch } });
    }
    if (b.holder !== conn) {
      throw notOwned(producerId, `producer id ${producerId} is not held by this connection: get your own with init_producer, or reclaim this one with its secret (init_producer with producerId and secret); nothing was written`, 'not-holder');
    }
    throw badRequest('epoch', `epoch ${String(epoch)} was never handed out for producer id ${producerId} (current: ${b.epoch})`);
  }

  /** Forget ids unused for expiryMs. Returns how many. */
  sweep(now: number): number {
    const before = now - this.limits.expiryMs;
    let n = 0;
    for (const [id, b] of this.bindings) {
      if (b.lastUsed < before) {
        this.bindings.delete(id);
        n++;
      }
    }
    return n;
  }

  /** Whether some binding was used after `since` (its last use is not in the log yet). */
  usedSince(since: number): boolean {
    for (const b of this.bindings.values()) if (b.lastUsed > since) return true;
    return false;
  }

  entries(): BindingEntry[] {
    const out: BindingEntry[] = [];
    for (const [id, b] of this.bindings) out.push(toEntry(id, b));
    return out;
  }

  /** Forget the `count` least recently used ids. */
  private evict(count: number): void {
    const oldest = [...this.bindings].sort((a, b) => a[1].lastUsed - b[1].lastUsed).slice(0, count);
    for (const [id] of oldest) this.bindings.delete(id);
  }
}

function notOwned(producerId: number, message: string, reason: 'unknown' | 'secret' | 'not-holder' | 'principal'): WeirError {
  return new WeirError(ErrorCode.PRODUCER_ID_NOT_OWNED, message, { details: { producerId, reason } });
}

function toEntry(p: number, b: Binding): BindingEntry {
  return b.owner === undefined ? { p, e: b.epoch, h: b.hash.toString('hex'), t: b.lastUsed } : { p, e: b.epoch, h: b.hash.toString('hex'), t: b.lastUsed, o: b.owner };
}

function validEntry(e: unknown): e is BindingEntry {
  if (typeof e !== 'object' || e === null) return false;
  const o = e as Record<string, unknown>;
  return Number.isSafeInteger(o.p) && (o.p as number) >= 0
    && Number.isSafeInteger(o.e) && (o.e as number) >= 0
    && typeof o.h === 'string' && /^[0-9a-f]{64}$/.test(o.h)
    && typeof o.t === 'number' && Number.isFinite(o.t)
    && (o.o === undefined || (typeof o.o === 'string' && o.o.length <= 256));
}
