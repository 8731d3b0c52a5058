/**
 * weir start's event lines: each logged channel's message becomes one line with its facts; a burst
 * of failed group commits (a full disk) is one line per partition per 10 s, with a count.
 */
import diagnostics_channel from 'node:diagnostics_channel';
import { afterEach, expect, it } from 'vitest';
import { LOGGED_CHANNELS, formatEvent, logBrokerEvents, type EventLine } from '../../src/cli/event-log.js';

let stop: (() => void) | null = null;
afterEach(() => {
  stop?.();
  stop = null;
});

it('formats each logged event with its facts', () => {
  const at = { topic: 'orders', partition: 3, dir: '/data/topics/orders/3' };
  expect(formatEvent('weir:wal:truncated', { ...at, truncatedBytes: 57, truncatedAtOffset: 1200 })).toEqual({
    level: 'warn',
    text: expect.stringMatching(/^partition orders\/3: recovery cut a torn tail of 57 bytes at offset 1200/),
  });
  expect(formatEvent('weir:wal:damage', { ...at, kind: 'damaged', segment: 1000, position: 4096, bytes: 180, from: 1010, to: 1013, reason: 'CORRUPT', detectedBy: 'read' })!.text).toBe(
    'partition orders/3: damaged data in segment 00000000000000001000.log at byte 4096 (180 bytes, CORRUPT, found by read): 3 record(s) lost, offsets 1010 to 1012; the records around it are served, readers get DATA_LOSS; recorded in /data/topics/orders/3/.weir-damage',
  );
  expect(formatEvent('weir:wal:sync-failed', { ...at, segment: 0, error: { code: 'EIO', message: 'i/o error' } })!.text).toMatch(/segment 0{20}\.log failed: EIO: i\/o error/);
  expect(formatEvent('weir:partition:restart', { topic: 'orders', partition: 3, reason: { code: 'STORAGE_ERROR', message: 'EIO' } })).toMatchObject({ level: 'warn', text: expect.stringContaining('restarted after: STORAGE_ERROR: EIO') });
  expect(formatEvent('weir:partition:failed', { topic: 'orders', partition: 3, code: 'EISDIR', message: 'x', failures: 5, answer: 'STORAGE_ERROR' })!.level).toBe('error');
  expect(formatEvent('weir:supervisor:escalate', { supervisor: 'partitions', intensity: 20, period: 60000, error: new Error('boom') })!.text).toContain('boom');
  const certificate = { subject: 'CN=broker', serialNumber: '1A2B', validTo: 'Jan  1 00:00:00 2030 GMT' };
  expect(formatEvent('weir:tls:reload', { ok: true, trigger: 'signal', certFile: '/etc/weir/cert.pem', certificate })).toEqual({
    level: 'info',
    text: 'TLS certificate reloaded on SIGHUP from /etc/weir/cert.pem (CN=broker, serial 1A2B, valid until Jan  1 00:00:00 2030 GMT); new connections get it',
  });
  expect(formatEvent('weir:tls:reload', { ok: false, trigger: 'files', certFile: '/etc/weir/cert.pem', error: 'BAD_CONFIG: key mismatch' })).toEqual({
    level: 'error',
    text: 'TLS certificate reload as its files changed failed, still serving the previous certificate: BAD_CONFIG: key mismatch',
  });
  for (const c of LOGGED_CHANNELS) expect(formatEvent(c, {}), c).not.toBeNull();
});

it('logs a burst of failed group commits once per partition per 10 s, then with the count held back', () => {
  const lines: EventLine[] = [];
  let t = 0;
  stop = logBrokerEvents((l) => lines.push(l), () => t);
  const ch = diagnostics_channel.channel('weir:wal:write-failed');
  const fail = (partition: number): void => ch.publish({ topic: 'full', partition, dir: '/d', code: 'STORAGE_FULL', message: 'no space', records: 10 });
  for (let i = 0; i < 50; i++) fail(0);
  fail(1);
  expect(lines.map((l) => l.text)).toEqual([expect.stringMatching(/^partition full\/0: disk full: a group commit of 10 record\(s\)/), expect.stringMatching(/^partition full\/1: disk full/)]);
  t = 10_000;
  fail(0);
  expect(lines[2]!.text).toMatch(/\(and 49 more since the last such line\)$/);
});
