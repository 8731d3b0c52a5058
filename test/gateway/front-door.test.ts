/**
 * What the gateway refuses at the WebSocket upgrade, before any WebSocket (or session) exists: a
 * browser page of an origin not allowed (403), and an address over its connection limit (429).
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { connect } from '../../src/client/index.js';
import { parseAllowedOrigins } from '../../src/gateway/origin.js';
import { brokerFixture, startTestBroker } from '../support/broker.js';
import { tmpDir } from '../support/tmp-dir.js';

const fx = brokerFixture();

/** A data directory path that does not exist (a refused start must not create it). */
function unusedDataDir(): string {
  const tmp = tmpDir('weir-front-door-');
  fx.defer(tmp.cleanup);
  return path.join(tmp.dir, 'data');
}

/** A WebSocket upgrade request by hand; resolves with the status line and body of the answer. */
function upgrade(port: number, headers: Record<string, string> = {}): Promise<{ status: string; body: string; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      const extra = Object.entries(headers)
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('');
      socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`);
    });
    let text = '';
    const onData = (d: Buffer): void => {
      text += d.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      const status = text.slice(0, text.indexOf('\r\n'));
      const body = text.slice(end + 4);
      // A refusal's body comes with it (or right after); a 101 has none.
      if (status.includes(' 101 ') || body.endsWith('\n')) {
        socket.off('data', onData);
        resolve({ status, body, socket });
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

async function until(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('Origin allowlist', () => {
  it('refuses (403) an upgrade from a page of another origin, before any WebSocket exists; lets in the allowed origin and clients that send none', async () => {
    fx.tb = await startTestBroker({ allowedOrigins: ['https://app.example', 'http://localhost:8080'] });
    const port = fx.tb.broker.port;

    const evil = await upgrade(port, { Origin: 'http://evil.example' });
    expect(evil.status).toBe('HTTP/1.1 403 Forbidden');
    expect(evil.body).toContain('FORBIDDEN: this broker does not accept WebSocket connections from pages of origin http://evil.example');
    evil.socket.destroy();
    expect(fx.tb.broker.gatewayStats().connections).toBe(0);

    for (const origin of ['https://app.example', 'http://localhost:8080', 'null']) {
      const r = await upgrade(port, { Origin: origin });
      expect(r.status, origin).toBe(origin === 'null' ? 'HTTP/1.1 403 Forbidden' : 'HTTP/1.1 101 Switching Protocols');
      r.socket.destroy();
    }
    // A look-alike is not the origin: scheme and port count.
    for (const origin of ['http://app.example', 'https://app.example:8443', 'https://app.example.evil.example']) {
      const r = await upgrade(port, { Origin: origin });
      expect(r.status, origin).toBe('HTTP/1.1 403 Forbidden');
      r.socket.destroy();
    }
    // Non-browser clients (no Origin): the SDK in Node.
    const client = await fx.client(fx.tb.url, { reconnect: false });
    expect(await client.listTopics()).toEqual([]);
  });

  it('allows every origin when no allowlist is set (as before)', async () => {
    fx.tb = await startTestBroker();
    const r = await upgrade(fx.tb.broker.port, { Origin: 'http://evil.example' });
    expect(r.status).toBe('HTTP/1.1 101 Switching Protocols');
    r.socket.destroy();
  });

  it('takes origins as scheme://host[:port] only, ignoring case and default ports; anything else is BAD_CONFIG, refused before the broker starts', async () => {
    expect([...parseAllowedOrigins(['HTTPS://App.Example:443', 'http://localhost:8080/'])]).toEqual(['https://app.example', 'http://localhost:8080']);
    for (const bad of ['app.example', 'https://app.example/chat', 'https://app.example?x=1', 'https://user@app.example', 'file:///tmp/x', '*']) {
      expect(() => parseAllowedOrigins([bad]), bad).toThrow(expect.objectContaining({ code: 'BAD_CONFIG', message: expect.stringContaining(`--allowed-origin ${JSON.stringify(bad)} is not an origin`) as unknown }));
    }
    const dataDir = unusedDataDir();
    await expect(startTestBroker({ dataDir, allowedOrigins: ['https://app.example/chat'] })).rejects.toMatchObject({ code: 'BAD_CONFIG' });
    expect(fs.existsSync(dataDir)).toBe(false);
  });
});

describe('connections per address', () => {
  it('takes a limit of at least 1 (BAD_CONFIG otherwise)', async () => {
    const dataDir = unusedDataDir();
    for (const bad of [0, -1, 1.5]) {
      await expect(startTestBroker({ dataDir, gateway: { maxConnectionsPerAddress: bad } }), String(bad)).rejects.toMatchObject({ code: 'BAD_CONFIG', message: expect.stringContaining('--max-connections-per-ip') as unknown });
    }
    expect(fs.existsSync(dataDir)).toBe(false);
  });

  it('refuses (429, TOO_MANY_CONNECTIONS) an upgrade over the limit, and admits again once one closes', async () => {
    fx.tb = await startTestBroker({ gateway: { maxConnectionsPerAddress: 3 } });
    const port = fx.tb.broker.port;
    const open: WebSocket[] = [];
    for (let i = 0; i < 3; i++) {
      const ws = new WebSocket(`ws://127.0.0.1:${port}`);
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      open.push(ws);
    }
    const refused = await upgrade(port);
    expect(refused.status).toBe('HTTP/1.1 429 Too Many Requests');
    expect(refused.body).toContain('TOO_MANY_CONNECTIONS: at most 3 connections per address');
    refused.socket.destroy();
    // The SDK's error says so too.
    await expect(connect(fx.tb.url, { reconnect: false })).rejects.toMatchObject({ code: 'CONNECTION_CLOSED', message: expect.stringContaining('429') as unknown });
    expect(fx.tb.broker.gatewayStats().connections).toBe(3);

    // Refusals hold nothing: after one close, exactly one more gets in.
    open.pop()!.close();
    await until(() => fx.tb!.broker.gatewayStats().connections === 2);
    const admitted = await upgrade(port);
    expect(admitted.status).toBe('HTTP/1.1 101 Switching Protocols');
    const again = await upgrade(port);
    expect(again.status).toBe('HTTP/1.1 429 Too Many Requests');
    again.socket.destroy();
    admitted.socket.destroy();
    for (const ws of open) ws.close();
    await until(() => fx.tb!.broker.gatewayStats().connections === 0);
    const client = await fx.client(fx.tb.url, { reconnect: false });
    expect(await client.listTopics()).toEqual([]);
  });
});
