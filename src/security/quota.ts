/**
 * Quotas for sharing one broker between tenants.
 *
 * - Byte rates per principal, produce and consume apart (Kafka-style): every request is charged
 *   to a token bucket after it arrived, and the answer is how long the caller must hold that
 *   principal back (delay its answer, pause its deliveries, or answer THROTTLED with that
 *   retry-after). Nothing is ever buffered here: a principal over its rate runs into debt, and
 *   waiting out the debt brings its rate to the quota. Buckets are per principal name, shared by all
 *   of its connections; a full bucket equals a new one, so idle buckets are dropped (`sweep`).
 * - Tenants: a tenant owns the topics whose names start with its prefix (a whole word or more,
 *   ending in `.`), with an optional topic count and storage size; `Tenants` checks a topic
 *   creation or an append against them (QUOTA_EXCEEDED).
 *
 * Pure: the caller passes the time and the current usage.
 */
import { WeirError } from '../common/errors.js';
import { WeirCode } from '../protocol/error-codes.js';
import { INTERNAL_TOPIC_PREFIX } from '../protocol/frames.js';
import { tenantNameProblem } from './principal.js';

export interface ByteRate {
  readonly bytesPerSec: number;
  /** Bytes that may pass at once after an idle time. Default: one second's worth. */
  readonly burstBytes?: number;
}

/**
 * A token bucket that may go into debt: `charge` always takes the bytes (they have arrived) and
 * answers the wait that pays the debt back.
 */
export class TokenBucket {
  private tokens: number;
  private lastMs: number;
  readonly capacity: number;

  constructor(
    readonly rate: ByteRate,
    nowMs: number,
  ) {
    if (!(rate.bytesPerSec > 0 && Number.isFinite(rate.bytesPerSec))) throw new RangeError('bytesPerSec must be a positive number');
    this.capacity = rate.burstBytes ?? rate.bytesPerSec;
    if (!(this.capacity > 0)) throw new RangeError('burstBytes must be positive');
    this.tokens = this.capacity;
    this.lastMs = nowMs;
  }

  /** Takes `bytes`; returns the milliseconds to wait before the next request (0: within the quota). */
  charge(bytes: number, nowMs: number): number {
    this.refill(nowMs);
    this.tokens -= bytes;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.rate.bytesPerSec);
  }

  /** The wait a request now would be told, without charging anything. */
  delayMs(nowMs: number): number {
    this.refill(nowMs);
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.rate.bytesPerSec);
  }

  /** Full again: forgetting this bucket changes nothing. */
  isFull(nowMs: number): boolean {
    this.refill(nowMs);
    return this.tokens >= this.capacity;
  }

  private refill(nowMs: number): void {
    // A clock that steps back refills nothing.
    if (nowMs > this.lastMs) {
      this.tokens = Math.min(this.capacity, this.tokens + ((nowMs - this.lastMs) * this.rate.bytesPerSec) / 1000);
      this.lastMs = nowMs;
    }
  }
}

export type QuotaDirection = 'produce' | 'consume';

export interface PrincipalByteRates {
  readonly produce?: ByteRate;
  readonly consume?: ByteRate;
}

export interface ByteRateQuotasOptions {
  /** The rates of a principal (by name, with its roles), or undefined: no quota. Asked once per bucket made. */
  readonly ratesOf: (principal: string, roles: readonly string[]) => PrincipalByteRates | undefined;
}

export class ByteRateQuotas {
  private readonly buckets: Record<QuotaDirection, Map<string, TokenBucket>> = { produce: new Map(), consume: new Map() };

  constructor(private readonly options: ByteRateQuotasOptions) {}

  /** Charges `bytes` produced by `principal`; the milliseconds to hold it back (0: within quota). */
  chargeProduce(principal: string, bytes: number, nowMs: number, roles: readonly string[] = []): number {
    return this.charge('produce', principal, bytes, nowMs, roles);
  }

  /** Charges `bytes` delivered to (or fetched by) `principal`. */
  chargeConsume(principal: string, bytes: number, nowMs: number, roles: readonly string[] = []): number {
    return this.charge('consume', principal, bytes, nowMs, roles);
  }

  /** `roles`: the principal's, for its rates when its bucket is made (a principal's bucket is one, whatever roles its connections have). */
  charge(direction: QuotaDirection, principal: string, bytes: number, nowMs: number, roles: readonly string[] = []): number {
    const buckets = this.buckets[direction];
    let bucket = buckets.get(principal);
    if (bucket === undefined) {
      const rate = this.options.ratesOf(principal, roles)?.[direction];
      if (rate === undefined) return 0;
      bucket = new TokenBucket(rate, nowMs);
      buckets.set(principal, bucket);
    }
    return bucket.charge(bytes, nowMs);
  }

  /** Drops buckets that are full again (a new one would start full); returns how many. */
  sweep(nowMs: number): number {
    let dropped = 0;
    for (const buckets of Object.values(this.buckets)) {
      for (const [name, bucket] of buckets) {
        if (bucket.isFull(nowMs)) {
          buckets.delete(name);
          dropped++;
        }
      }
    }
    return dropped;
  }

  /** Buckets held (principals recently charged). */
  get size(): number {
    return this.buckets.produce.size + this.buckets.consume.size;
  }
}

export interface TenantConfig {
  readonly name: string;
  /** The topic-name prefix the tenant owns, ending in `.` (e.g. `acme.`). */
  readonly prefix: string;
  readonly maxTopics?: number;
  readonly maxStorageBytes?: number;
}

export type TenantQuota = 'topics' | 'storageBytes';

export interface TenantQuotaRefusal {
  readonly tenant: string;
  readonly quota: TenantQuota;
  readonly limit: number;
}

/** QUOTA_EXCEEDED with `details.tenant`, `details.quota`, `details.limit`. */
export function quotaExceeded(refusal: TenantQuotaRefusal): WeirError {
  const what = refusal.quota === 'topics' ? `${refusal.limit} topics` : `${refusal.limit} bytes of storage`;
  return new WeirError(WeirCode.QUOTA_EXCEEDED, `tenant ${refusal.tenant} is at its quota of ${what}`, {
    details: { tenant: refusal.tenant, quota: refusal.quota, limit: refusal.limit },
  });
}

const PREFIX = /^[A-Za-z0-9._-]{1,200}\.$/;

export class Tenants {
  private readonly list: readonly TenantConfig[];

  constructor(tenants: readonly TenantConfig[]) {
    const names = new Set<string>();
    for (const t of tenants) {
      const nameProblem = tenantNameProblem(t.name);
      if (nameProblem !== null) throw badConfig(nameProblem);
      if (names.has(t.name)) throw badConfig(`tenant ${t.name} appears twice`);
      names.add(t.name);
      if (typeof t.prefix !== 'string' || !PREFIX.test(t.prefix) || t.prefix.startsWith(INTERNAL_TOPIC_PREFIX)) {
        throw badConfig(`tenant ${t.name}: a prefix is topic-name characters ending in "." (e.g. "acme."), not starting with "__"`);
      }
      for (const [key, v] of [['maxTopics', t.maxTopics], ['maxStorageBytes', t.maxStorageBytes]] as const) {
        if (v !== undefined && !(Number.isSafeInteger(v) && v >= 0)) throw badConfig(`tenant ${t.name}: ${key} must be a non-negative integer`);
      }
    }
    for (const a of tenants) {
      for (const b of tenants) {
        if (a !== b && b.prefix.startsWith(a.prefix)) throw badConfig(`tenants ${a.name} and ${b.name} overlap: "${b.prefix}" is inside "${a.prefix}"`);
      }
    }
    this.list = tenants.map((t) => ({ ...t }));
  }

  /** The configuration's tenant list; throws BAD_CONFIG. */
  static parse(value: unknown): Tenants {
    if (!Array.isArray(value)) throw badConfig('tenants must be a list');
    for (const t of value) {
      if (typeof t !== 'object' || t === null) throw badConfig('a tenant must be an object');
      for (const key of Object.keys(t)) {
        if (!['name', 'prefix', 'maxTopics', 'maxStorageBytes'].includes(key)) throw badConfig(`unknown tenant field ${JSON.stringify(key)}`);
      }
    }
    return new Tenants(value as TenantConfig[]);
  }

  get all(): readonly TenantConfig[] {
    return this.list;
  }

  byName(name: string): TenantConfig | undefined {
    return this.list.find((t) => t.name === name);
  }

  /** The tenant that owns `topic`, if any. */
  ofTopic(topic: string): TenantConfig | undefined {
    return this.list.find((t) => topic.startsWith(t.prefix));
  }

  /**
   * May `topic` be created, given the topics that exist? A refusal when its tenant already has
   * `maxTopics` topics (re-creating an existing topic is not a new one).
   */
  checkCreateTopic(topic: string, existingTopics: Iterable<string>): TenantQuotaRefusal | null {
    const tenant = this.ofTopic(topic);
    if (tenant === undefined || tenant.maxTopics === undefined) return null;
    let count = 0;
    for (const t of existingTopics) {
      if (t === topic) return null;
      if (t.startsWith(tenant.prefix)) count++;
    }
    return count >= tenant.maxTopics ? { tenant: tenant.name, quota: 'topics', limit: tenant.maxTopics } : null;
  }

  /**
   * May `incomingBytes` be appended to `topic`, when its tenant's topics hold `tenantUsedBytes`?
   */
  checkStorage(topic: string, tenantUsedBytes: number, incomingBytes: number): TenantQuotaRefusal | null {
    const tenant = this.ofTopic(topic);
    if (tenant === undefined || tenant.maxStorageBytes === undefined) return null;
    return tenantUsedBytes + incomingBytes > tenant.maxStorageBytes ? { tenant: tenant.name, quota: 'storageBytes', limit: tenant.maxStorageBytes } : null;
  }
}

function badConfig(message: string): WeirError {
  return new WeirError(WeirCode.BAD_CONFIG, `tenants: ${message}`);
}
