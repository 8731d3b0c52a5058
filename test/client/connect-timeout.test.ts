/**
 * connect() to a server that accepts the TCP connection but never answers the WebSocket upgrade:
 * the connect timeout rejects connect() with CONNECTION_CLOSED (docs/client.md) and the process
 * goes on. (`ws` emits 'error' when a socket still connecting is closed; with no listener left
 * that error was thrown and killed the client's process.) The client runs in a child process
 * (the built SDK, so `npm run build` first): an uncaught error there cannot take the test runner down.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let server: net.Server | null = null;
const sockets = new Set<net.Socket>();
afterEach(async () => {
  for (const s of sockets) s.destroy();
  sockets.clear();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = null;
});

it('rejects connect() with CONNECTION_CLOSED when the upgrade never completes, and the process keeps running', async () => {
  // Accepts, reads and drops whatever arrives: the upgrade request is never answered.
  server = net.createServer((s) => {
    sockets.add(s);
    s.on('data', () => undefined);
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;

  const script = `
    import { connect } from ${JSON.stringify(path.join(root, 'dist/src/client/index.js'))};
    try {
      await connect('ws://127.0.0.1:${port}', { connectTimeoutMs: 300, reconnect: false });
      console.log('CONNECTED');
    } catch (err) {
      console.log('REJECTED ' + err.code + ' retryable=' + err.retryable);
    }
    // Long enough for an 'error' emitted after close() to surface.
    await new Promise((r) => setTimeout(r, 500));
    console.log('ALIVE');
  `;
  const proc = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));

  expect(out).toContain('REJECTED CONNECTION_CLOSED');
  expect(out).toContain('ALIVE');
  expect(code, out).toBe(0);
});
