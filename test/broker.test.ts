/** The broker's option parsing (src/broker.ts): what `weir start` flags become, and the errors a bad one gets. */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Broker, checkPageCacheBytes, isLoopbackHost, parseActorHost, parseFsync, type BrokerOptions } from '../src/broker.js';
import { tmpDir } from './support/tmp-dir.js';

it('parses --fsync: never (the default), always, interval:MS; anything else is BAD_CONFIG', () => {
  expect(parseFsync(undefined)).toEqual({ mode: 'never' });
  expect(parseFsync('always')).toEqual({ mode: 'always' });
  expect(parseFsync('interval:50')).toEqual({ mode: 'interval', intervalMs: 50 });
  expect(() => parseFsync('sometimes')).toThrow(expect.objectContaining({ code: 'BAD_CONFIG', message: expect.stringContaining('never, always or interval:MS') }));
});

it('parses --actor-host: auto (the default), threads or gateway; anything else is BAD_CONFIG', () => {
  expect(parseActorHost(undefined)).toBe('auto');
  expect(parseActorHost('threads')).toBe('threads');
  expect(parseActorHost('gateway')).toBe('gateway');
  expect(parseActorHost('auto')).toBe('auto');
  expect(() => parseActorHost('inline')).toThrow(expect.objectContaining({ code: 'BAD_CONFIG', message: expect.stringContaining('auto, threads or gateway') }));
});

it('checks --page-cache-bytes: unset, 0 (drop-behind off) or a whole number of bytes; anything else is BAD_CONFIG', () => {
  expect(() => checkPageCacheBytes(undefined)).not.toThrow();
  expect(() => checkPageCacheBytes(0)).not.toThrow();
  expect(() => checkPageCacheBytes(64 * 1024 * 1024)).not.toThrow();
  for (const bad of [-1, 1.5, Number.NaN]) {
    expect(() => checkPageCacheBytes(bad)).toThrow(expect.objectContaining({ code: 'BAD_CONFIG', message: expect.stringContaining('--page-cache-bytes') }));
  }
});

describe('safe default: no authentication, this machine only', () => {
  it('refuses (BAD_CONFIG) to listen beyond loopback without authentication, before touching the data directory', async () => {
    const tmp = tmpDir('weir-exposure-');
    try {
      const dataDir = path.join(tmp.dir, 'data');
      for (const host of ['0.0.0.0', '::']) {
        await expect(Broker.start({ dataDir, host, port: 0 })).rejects.toMatchObject({
          code: 'BAD_CONFIG',
          message: expect.stringContaining(`refusing to listen on ${host}, which other machines can reach, without authentication`) as unknown,
        });
      }
      expect(fs.existsSync(dataDir)).toBe(false);
    } finally {
      tmp.cleanup();
    }
  });

  it('listens beyond loopback with insecure, or with authentication configured', async () => {
    const tmp = tmpDir('weir-exposure-');
    try {
      for (const [i, options] of ([{ insecure: true }, { gateway: { token: 's3cret' } }] as BrokerOptions[]).entries()) {
        const broker = await Broker.start({ ...options, dataDir: path.join(tmp.dir, String(i)), host: '0.0.0.0', port: 0 });
        try {
          expect(broker.authenticationRequired).toBe(options.insecure !== true);
          const ws = new WebSocket(`ws://127.0.0.1:${broker.port}`);
          await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
          ws.close();
        } finally {
          await broker.close();
        }
      }
    } finally {
      tmp.cleanup();
    }
  });

  it('takes loopback addresses as this machine only', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '::ffff:127.0.0.1']) expect(isLoopbackHost(host), host).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.1', 'example.com', '::ffff:10.0.0.1']) expect(isLoopbackHost(host), host).toBe(false);
  });
});
