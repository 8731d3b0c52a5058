/**
 * The SDK in a real browser: bundled for the browser (no Node built-ins), loaded by headless
 * Chromium, talking to a real broker through the browser's own WebSocket.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../support/broker.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

let tb: TestBroker;
let server: http.Server;
let pageUrl = '';
let browser: Browser | undefined;

beforeAll(async () => {
  if (!CHROMIUM) return;
  tb = await startTestBroker();
  const bundle = await build({
    entryPoints: [path.join(root, 'src/client/index.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    write: false,
    logLevel: 'silent',
  });
  const js = bundle.outputFiles[0]!.text;
  // The browser side runs as the page's own module script (kept out of vitest's transform).
  const html = `<!doctype html><meta charset="utf-8"><title>weir</title><body>
<script type="module">
import { connect } from '/weir.js';
const brokerUrl = new URL(location.href).searchParams.get('broker');
try {
  const client = await connect(brokerUrl);
  await client.createTopic('browser.events', { partitions: 2 });
  const acks = await client.produce('browser.events', [
    { key: 'user-1', value: 'hello from the browser', headers: { source: 'chromium' } },
    { key: 'user-2', value: new Uint8Array([0, 1, 2, 250, 255]) },
    { key: 'user-1', value: 'second' },
  ]);
  const got = [];
  const sub = await client.subscribe('browser.events', { group: 'browser-group', from: 'earliest' }, async (m) => {
    got.push({ key: m.key, value: [...m.value], headers: m.headers, offset: m.offset, partition: m.partition });
  });
  const deadline = Date.now() + 10000;
  while (got.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await sub.close();
  await client.close();
  window.weirResult = { acks, got, nativeWebSocket: typeof WebSocket === 'function' };
} catch (err) {
  window.weirResult = { error: String(err && err.stack || err) };
}
</script></body>`;
  server = http.createServer((req, res) => {
    if (req.url === '/weir.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(js);
    else res.writeHead(200, { 'content-type': 'text/html' }).end(html);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  pageUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

afterAll(async () => {
  await browser?.close();
  server?.close();
  await tb?.stop();
});

it.skipIf(!CHROMIUM)('produces and consumes from headless Chromium over its native WebSocket', async () => {
  const page = await browser!.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${pageUrl}?broker=${encodeURIComponent(tb.url)}`);
  await page.waitForFunction(() => (window as unknown as { weirResult?: unknown }).weirResult !== undefined, undefined, { timeout: 20_000 });
  type Got = { key: string | null; value: number[]; headers: Record<string, string>; offset: number; partition: number };
  const result = (await page.evaluate(() => (window as unknown as { weirResult: unknown }).weirResult)) as {
    error?: string; acks: Array<{ partition: number; offset: number }>; got: Got[]; nativeWebSocket: boolean;
  };
  expect(result.error).toBeUndefined();
  expect(errors).toEqual([]);
  expect(result.nativeWebSocket).toBe(true);
  expect(result.acks).toHaveLength(3);
  expect(result.got).toHaveLength(3);
  const text = (v: number[]) => new TextDecoder().decode(new Uint8Array(v));
  const user1 = result.got.filter((m) => m.key === 'user-1');
  expect(user1.map((m) => text(m.value))).toEqual(['hello from the browser', 'second']);
  expect(user1[0]!.headers).toEqual({ source: 'chromium' });
  expect(result.got.find((m) => m.key === 'user-2')!.value).toEqual([0, 1, 2, 250, 255]);
  for (const [i, a] of result.acks.entries()) {
    const m = result.got.find((g) => g.partition === a.partition && g.offset === a.offset);
    expect(m, `ack ${i}`).toBeDefined();
  }
});
