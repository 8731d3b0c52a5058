/**
 * The audit log: who tried what, from where, and what came of it, for authentication failures,
 * denials and every administrative action. One JSON object per line,
 * `{time, principal, address, action, resource?, outcome, code?, details?}`, appended to a file
 * (mode 0600) that is rotated by size: `audit.log` → `audit.log.1` → … → `audit.log.<keep>`.
 *
 * Off the hot path (a few events per connection or admin request), so each event is one
 * synchronous append: no buffer to lose at a crash, nothing to flush at exit.
 *
 * Secrets never reach the file: an event has no field for a password, a token or a key, only the
 * fields below are copied (whatever else a caller's object carries is dropped), and strings that
 * look like a token or an API key's secret are redacted anyway.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { WeirCode } from '../protocol/error-codes.js';
import type { Action } from './permissions.js';
import type { PrincipalSource } from './principal.js';

export type AuditAction = Action | 'authenticate' | 'connect';

/** `ok`: done; `denied`: refused by a permission or a limit; `failed`: authentication failed. */
export type AuditOutcome = 'ok' | 'denied' | 'failed';

/** What an event may add. Closed on purpose: there is no place for a secret. */
export interface AuditDetails {
  /** Why a refusal (a token refusal's reason, a limit's scope…). */
  readonly reason?: string;
  /** How the principal authenticated, or tried to. */
  readonly source?: PrincipalSource;
  readonly partition?: number;
  readonly offset?: number;
  readonly count?: number;
  /** A transaction decided by an admin. */
  readonly txn?: string;
  readonly decision?: 'commit' | 'rollback';
  /** A topic's changed configuration (names → values). */
  readonly config?: Readonly<Record<string, string | number | boolean | null>>;
}

export interface AuditEvent {
  /** The principal's name; null before authentication. */
  readonly principal: string | null;
  /** The client's address. */
  readonly address: string;
  readonly action: AuditAction;
  /** permissions.ts resourceLabel: `topic:orders`, `group:g`, `broker`. */
  readonly resource?: string;
  readonly outcome: AuditOutcome;
  readonly code?: WeirCode;
  readonly details?: AuditDetails;
}

export interface AuditLogOptions {
  /** The log file, e.g. `<data>/audit.log`; its directory is created. */
  readonly file: string;
  /** Rotate before a write would take the file past this. Default 64 MiB. */
  readonly maxBytes?: number;
  /** Rotated files kept (`.1` … `.keep`). Default 5. */
  readonly keep?: number;
  /** The clock (ms since the epoch). Default Date.now. */
  readonly now?: () => number;
  /** Called when an event could not be written (it is dropped and counted). */
  readonly onError?: (error: unknown) => void;
}

const MAX_STRING = 1024;
const JWT_LIKE = /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g;
const API_KEY_SECRET = /(weir_[0-9a-f]{16}_)[A-Za-z0-9_-]+/g;

/** A string as it may be written: tokens and key secrets redacted, length bounded. */
export function redact(text: string): string {
  const clean = text.replace(JWT_LIKE, '[redacted token]').replace(API_KEY_SECRET, '$1[redacted]');
  return clean.length > MAX_STRING ? `${clean.slice(0, MAX_STRING)}…` : clean;
}

function cleanDetails(d: AuditDetails): Record<string, unknown> | undefined {
  const out: Record<string, unknown> = {};
  if (typeof d.reason === 'string') out['reason'] = redact(d.reason);
  if (typeof d.source === 'string') out['source'] = redact(d.source);
  for (const key of ['partition', 'offset', 'count'] as const) if (typeof d[key] === 'number') out[key] = d[key];
  if (typeof d.txn === 'string') out['txn'] = redact(d.txn);
  if (d.decision === 'commit' || d.decision === 'rollback') out['decision'] = d.decision;
  if (typeof d.config === 'object' && d.config !== null) {
    const config: Record<string, string | number | boolean | null> = {};
    for (const [k, v] of Object.entries(d.config)) {
      if (v === null || typeof v === 'number' || typeof v === 'boolean') config[redact(k)] = v;
      else if (typeof v === 'string') config[redact(k)] = redact(v);
    }
    out['config'] = config;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** The line written for an event (with its newline). */
export function auditLine(event: AuditEvent, timeMs: number): string {
  const line: Record<string, unknown> = {
    time: new Date(timeMs).toISOString(),
    principal: typeof event.principal === 'string' ? redact(event.principal) : null,
    address: redact(String(event.address)),
    action: redact(String(event.action)),
  };
  if (typeof event.resource === 'string') line['resource'] = redact(event.resource);
  line['outcome'] = redact(String(event.outcome));
  if (typeof event.code === 'string') line['code'] = redact(event.code);
  const details = typeof event.details === 'object' && event.details !== null ? cleanDetails(event.details) : undefined;
  if (details !== undefined) line['details'] = details;
  return `${JSON.stringify(line)}\n`;
}

export class AuditLog {
  private fd: number;
  private size: number;
  private dropped = 0;
  private closed = false;
  private readonly maxBytes: number;
  private readonly keep: number;
  private readonly now: () => number;

  constructor(private readonly options: AuditLogOptions) {
    this.maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
    this.keep = options.keep ?? 5;
    if (!(this.maxBytes >= 1024)) throw new RangeError('audit maxBytes must be at least 1024');
    if (!(Number.isInteger(this.keep) && this.keep >= 1 && this.keep <= 1000)) throw new RangeError('audit keep must be 1-1000');
    this.now = options.now ?? Date.now;
    fs.mkdirSync(path.dirname(options.file), { recursive: true });
    this.fd = this.openFile();
    this.size = fs.fstatSync(this.fd).size;
  }

  /** Appends one event (rotating first when the file would grow past maxBytes). Never throws. */
  write(event: AuditEvent): void {
    if (this.closed) {
      this.dropped++;
      return;
    }
    try {
      const line = Buffer.from(auditLine(event, this.now()));
      if (this.fd < 0) this.reopen();
      if (this.size > 0 && this.size + line.length > this.maxBytes) this.rotate();
      fs.writeSync(this.fd, line);
      this.size += line.length;
    } catch (e) {
      this.dropped++;
      this.options.onError?.(e);
    }
  }

  /** Events that could not be written. */
  get droppedEvents(): number {
    return this.dropped;
  }

  /** Makes what was written durable (fdatasync). */
  flush(): void {
    if (!this.closed && this.fd >= 0) fs.fdatasyncSync(this.fd);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.fd >= 0) fs.closeSync(this.fd);
  }

  private openFile(): number {
    const fd = fs.openSync(this.options.file, 'a', 0o600);
    fs.fchmodSync(fd, 0o600);
    return fd;
  }

  private reopen(): void {
    this.fd = this.openFile();
    this.size = fs.fstatSync(this.fd).size;
  }

  private rotate(): void {
    const file = this.options.file;
    // Never keep a closed descriptor: its number may be reused by another file.
    const fd = this.fd;
    this.fd = -1;
    fs.closeSync(fd);
    try {
      fs.rmSync(`${file}.${this.keep}`, { force: true });
      for (let i = this.keep - 1; i >= 1; i--) {
        if (fs.existsSync(`${file}.${i}`)) fs.renameSync(`${file}.${i}`, `${file}.${i + 1}`);
      }
      fs.renameSync(file, `${file}.1`);
    } finally {
      this.reopen();
    }
  }
}
