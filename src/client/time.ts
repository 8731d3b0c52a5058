/**
 * The SDK side of delayed messages and TTL (docs/time.md): a message's deliverAt / delay / ttl /
 * expiresAt become the reserved weir- headers, validated here so a bad value fails the call.
 */
import { Header, MAX_TIME_MS } from '../protocol/headers.js';
import { badRequest } from './errors.js';
import type { ProduceMessage } from './types.js';

/** `m` itself when it has no time field, else a copy whose headers carry them. */
export function withTimeHeaders(m: ProduceMessage): ProduceMessage {
  if (m === null || typeof m !== 'object') return m;
  if (m.deliverAt === undefined && m.delay === undefined && m.ttl === undefined && m.expiresAt === undefined) return m;
  if (m.deliverAt !== undefined && m.delay !== undefined) throw badRequest('give deliverAt or delay, not both', 'delay');
  const headers: Record<string, string | Uint8Array> = { ...m.headers };
  if (m.deliverAt !== undefined) headers[Header.DELIVER_AT] = time(m.deliverAt, 'deliverAt');
  if (m.delay !== undefined) headers[Header.DELAY] = time(m.delay, 'delay');
  if (m.ttl !== undefined) headers[Header.TTL] = time(m.ttl, 'ttl');
  if (m.expiresAt !== undefined) headers[Header.EXPIRES_AT] = time(m.expiresAt, 'expiresAt');
  return { key: m.key, value: m.value, headers };
}

/** True when the message carries a delivery time (it goes to the schedule log). */
export function isScheduled(m: ProduceMessage): boolean {
  const h = m?.headers;
  return h !== undefined && h !== null && (h[Header.DELIVER_AT] !== undefined || h[Header.DELAY] !== undefined);
}

function time(v: unknown, field: string): string {
  const ms = v instanceof Date ? v.getTime() : v;
  if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 0 || ms > MAX_TIME_MS) {
    throw badRequest(`${field} must be a non-negative integer of milliseconds${field === 'deliverAt' || field === 'expiresAt' ? ' since the epoch (or a Date)' : ''}`, field);
  }
  return String(ms);
}

