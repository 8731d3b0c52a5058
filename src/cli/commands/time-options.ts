/**
 * `weir produce` options of the time feature (docs/time.md):
 * `--delay MS`, `--deliver-at ISO|MS`, `--ttl MS`, `--expires-at ISO|MS`.
 */
import { UsageError } from './common.js';

export const TIME_OPTIONS = {
  delay: { type: 'string' },
  'deliver-at': { type: 'string' },
  ttl: { type: 'string' },
  'expires-at': { type: 'string' },
} as const;

export const TIME_USAGE = '[--delay MS | --deliver-at ISO|MS] [--ttl MS | --expires-at ISO|MS]';

export interface TimeFields {
  delay?: number;
  deliverAt?: number;
  ttl?: number;
  expiresAt?: number;
}

export function timeFields(values: { delay?: string; 'deliver-at'?: string; ttl?: string; 'expires-at'?: string }): TimeFields {
  const out: TimeFields = {};
  if (values.delay !== undefined && values['deliver-at'] !== undefined) throw new UsageError('give --delay or --deliver-at, not both');
  if (values.delay !== undefined) out.delay = millis(values.delay, 'delay');
  if (values['deliver-at'] !== undefined) out.deliverAt = instant(values['deliver-at'], 'deliver-at');
  if (values.ttl !== undefined) out.ttl = millis(values.ttl, 'ttl');
  if (values['expires-at'] !== undefined) out.expiresAt = instant(values['expires-at'], 'expires-at');
  return out;
}

function millis(v: string, name: string): number {
  if (!/^\d{1,15}$/.test(v)) throw new UsageError(`--${name} must be a non-negative integer of milliseconds, got ${JSON.stringify(v)}`);
  return Number(v);
}

/** Milliseconds since the epoch, or an ISO 8601 date-time. */
function instant(v: string, name: string): number {
  if (/^\d{1,15}$/.test(v)) return Number(v);
  const t = /^\d{4}-\d{2}-\d{2}/.test(v) ? Date.parse(v) : NaN;
  if (!Number.isFinite(t) || t < 0) throw new UsageError(`--${name} must be an ISO 8601 time (2026-01-31T12:00:00Z) or milliseconds since the epoch, got ${JSON.stringify(v)}`);
  return t;
}
