import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog, auditLine, redact, type AuditDetails, type AuditEvent } from '../../src/security/audit.js';
import { tmpDir } from '../support/tmp-dir.js';

let tmp: { dir: string; cleanup(): void };
let file: string;
beforeEach(() => {
  tmp = tmpDir('weir-audit-');
  file = path.join(tmp.dir, 'logs', 'audit.log');
});
afterEach(() => tmp.cleanup());

const lines = (f: string): Record<string, unknown>[] =>
  fs
    .readFileSync(f, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

const T0 = Date.UTC(2025, 0, 2, 3, 4, 5, 678);

describe('audit log', () => {
  it('appends one JSON line per event, with time, principal, address, action, resource, outcome, code and details', () => {
    const log = new AuditLog({ file, now: () => T0 });
    log.write({ principal: null, address: '10.0.0.7', action: 'authenticate', outcome: 'failed', code: 'UNAUTHORIZED', details: { reason: 'signature', source: 'jwt' } });
    log.write({ principal: 'alice', address: '10.0.0.7', action: 'consume', resource: 'topic:rooms.43.x', outcome: 'denied', code: 'FORBIDDEN' });
    log.write({ principal: 'ops', address: '::1', action: 'alter', resource: 'topic:orders', outcome: 'ok', details: { config: { ttlMs: 1000, deadLetterTopic: null } } });
    log.write({ principal: 'ops', address: '::1', action: 'txn', resource: 'txn:billing', outcome: 'ok', details: { txn: 't-1', decision: 'rollback' } });
    log.write({ principal: 'ops', address: '::1', action: 'reset', resource: 'group:g', outcome: 'ok', details: { partition: 3, offset: 42 } });
    log.close();
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(lines(file)).toEqual([
      { time: '2025-01-02T03:04:05.678Z', principal: null, address: '10.0.0.7', action: 'authenticate', outcome: 'failed', code: 'UNAUTHORIZED', details: { reason: 'signature', source: 'jwt' } },
      { time: '2025-01-02T03:04:05.678Z', principal: 'alice', address: '10.0.0.7', action: 'consume', resource: 'topic:rooms.43.x', outcome: 'denied', code: 'FORBIDDEN' },
      { time: '2025-01-02T03:04:05.678Z', principal: 'ops', address: '::1', action: 'alter', resource: 'topic:orders', outcome: 'ok', details: { config: { ttlMs: 1000, deadLetterTopic: null } } },
      { time: '2025-01-02T03:04:05.678Z', principal: 'ops', address: '::1', action: 'txn', resource: 'txn:billing', outcome: 'ok', details: { txn: 't-1', decision: 'rollback' } },
      { time: '2025-01-02T03:04:05.678Z', principal: 'ops', address: '::1', action: 'reset', resource: 'group:g', outcome: 'ok', details: { partition: 3, offset: 42 } },
    ]);
  });

  it('appends to an existing file after a restart', () => {
    const a = new AuditLog({ file });
    a.write({ principal: 'a', address: 'x', action: 'create', resource: 'topic:t', outcome: 'ok' });
    a.close();
    const b = new AuditLog({ file });
    b.write({ principal: 'b', address: 'x', action: 'delete', resource: 'topic:t', outcome: 'ok' });
    b.flush();
    b.close();
    expect(lines(file).map((l) => l['principal'])).toEqual(['a', 'b']);
  });

  it('rotates by size, keeping the newest events in audit.log, .1 … .keep', () => {
    const log = new AuditLog({ file, maxBytes: 1024, keep: 3 });
    const n = 200;
    for (let i = 0; i < n; i++) log.write({ principal: 'p', address: 'a', action: 'produce', resource: 'topic:t', outcome: 'denied', details: { count: i } });
    log.close();
    const files = fs.readdirSync(path.dirname(file)).sort();
    expect(files).toEqual(['audit.log', 'audit.log.1', 'audit.log.2', 'audit.log.3']);
    for (const f of files) expect(fs.statSync(path.join(path.dirname(file), f)).size).toBeLessThanOrEqual(1024);
    // Oldest first: .3, .2, .1, then the live file, in one unbroken sequence ending with the last event.
    const seq = ['audit.log.3', 'audit.log.2', 'audit.log.1', 'audit.log'].flatMap((f) => lines(path.join(path.dirname(file), f)).map((l) => (l['details'] as { count: number }).count));
    expect(seq[seq.length - 1]).toBe(n - 1);
    expect(seq).toEqual(Array.from({ length: seq.length }, (_, i) => n - seq.length + i));
    // A rotated file was filled up to less than one line short of maxBytes.
    const longest = Math.max(...fs.readFileSync(file, 'utf8').split('\n').map((l) => l.length + 1));
    for (const f of files.slice(1)) expect(fs.statSync(path.join(path.dirname(file), f)).size).toBeGreaterThan(1024 - longest);
  });

  it('never writes a secret: no field for one, unknown fields dropped, tokens and key secrets redacted', () => {
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz';
    const apiKey = `weir_0123456789abcdef_${'S'.repeat(43)}`;
    // @ts-expect-error an event has no field for a password
    const typed: AuditEvent = { principal: 'a', address: 'x', action: 'authenticate', outcome: 'failed', password: 'hunter2' };
    // @ts-expect-error nor do its details
    const typedDetails: AuditDetails = { token: jwt };
    const log = new AuditLog({ file });
    log.write(typed);
    log.write({ principal: 'a', address: 'x', action: 'authenticate', outcome: 'failed', details: typedDetails });
    log.write({
      principal: 'a',
      address: 'x',
      action: 'authenticate',
      outcome: 'failed',
      details: { reason: `bad token ${jwt} or key ${apiKey}`, config: { secret: apiKey } },
    });
    log.close();
    const text = fs.readFileSync(file, 'utf8');
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('password');
    expect(text).not.toContain(jwt);
    expect(text).not.toContain('eyJzdWIi');
    expect(text).not.toContain('S'.repeat(43));
    expect(text).toContain('weir_0123456789abcdef_[redacted]');
    expect(lines(file)).toHaveLength(3);
  });

  it('bounds each string', () => {
    const line = JSON.parse(auditLine({ principal: 'p'.repeat(5000), address: 'a', action: 'connect', outcome: 'denied' }, 0));
    expect(line.principal.length).toBeLessThanOrEqual(1025);
    expect(redact('plain text')).toBe('plain text');
  });

  it('a failed write drops the event, reports it and does not throw; the log goes on', () => {
    const errors: unknown[] = [];
    const log = new AuditLog({ file, maxBytes: 1024, keep: 2, onError: (e) => errors.push(e) });
    const event: AuditEvent = { principal: 'p', address: 'a', action: 'produce', resource: 'topic:t', outcome: 'denied' };
    while (fs.statSync(file).size < 900) log.write(event);
    fs.rmSync(file); // the next rotation cannot rename it
    for (let i = 0; i < 20; i++) log.write(event);
    expect(errors.length).toBe(1);
    expect(log.droppedEvents).toBe(1);
    expect(lines(file).length).toBeGreaterThan(0);
    log.close();
    log.write(event);
    expect(log.droppedEvents).toBe(2);
  });

  it('refuses nonsense options', () => {
    expect(() => new AuditLog({ file, maxBytes: 10 })).toThrow(RangeError);
    expect(() => new AuditLog({ file, keep: 0 })).toThrow(RangeError);
  });
});
