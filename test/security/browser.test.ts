/**
 * A browser against a broker with TLS, JSON Web Tokens and an Origin allowlist: headless Chromium
 * loads a page served over https (certificates made at test time), and the SDK bundled for the
 * browser connects over `wss://` with a token allowing `rooms.42.*` only (docs/security.md's chat
 * room). It receives the room's messages, is refused `rooms.43.x` with FORBIDDEN, and its pattern
 * subscription `rooms.#` sees only the room's topics, also those created later. A page of an origin
 * not allowed cannot open a WebSocket to the broker at all.
 */
import { createHash, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { SignJWT } from 'jose';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type WeirClient } from '../../src/client/index.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { SUPERUSER, writeJwtSecret } from '../support/security.js';
import { issueCert, makeTestCa } from '../support/tls-certs.js';
import { tmpDir } from '../support/tmp-dir.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ISSUER = 'https://app.example.com';
const AUDIENCE = 'weir';

const tmp = tmpDir('weir-browser-security-');
let tb: TestBroker;
let admin: WeirClient;
let caPem: Buffer;
let secret: Uint8Array;
let servers: https.Server[] = [];
/** The page's origin, allowed by the broker; and another origin, not allowed. */
let allowedOrigin = '';
let otherOrigin = '';
let browser: Browser | undefined;

/** A token as docs/security.md's backend mints it for a member of chat room `room`. */
function chatRoomToken(sub: string, room: string): Promise<string> {
  return new SignJWT({ weir: { allow: [{ allow: ['describe', 'consume'], topics: [`rooms.${room}.*`] }, { allow: ['produce'], topics: [`rooms.${room}.messages`] }] } })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(secret);
}

/** An https server on 127.0.0.1 serving the page and the SDK bundle; resolves with its origin. */
async function servePage(cert: { certFile: string; keyFile: string }, js: string): Promise<string> {
  const html = `<!doctype html><meta charset="utf-8"><title>weir</title><body>
<script type="module">
import { connect } from '/weir.js';
window.weirConnect = connect;
window.weirLoaded = true;
</script></body>`;
  const server = https.createServer({ cert: fs.readFileSync(cert.certFile), key: fs.readFileSync(cert.keyFile) }, (req, res) => {
    if (req.url === '/weir.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(js);
    else res.writeHead(200, { 'content-type': 'text/html' }).end(html);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `https://127.0.0.1:${(server.address() as { port: number }).port}`;
}

beforeAll(async () => {
  if (!CHROMIUM) return;
  const ca = makeTestCa(tmp.dir);
  const cert = issueCert(ca, 'server');
  caPem = fs.readFileSync(ca.certFile);
  const jwt = writeJwtSecret(tmp.dir);
  secret = jwt.secret;

  const bundle = await build({ entryPoints: [path.join(root, 'src/client/index.ts')], bundle: true, format: 'esm', platform: 'browser', write: false, logLevel: 'silent' });
  const js = bundle.outputFiles[0]!.text;
  allowedOrigin = await servePage(cert, js);
  otherOrigin = await servePage(cert, js);

  tb = await startTestBroker({
    tls: { certFile: cert.certFile, keyFile: cert.keyFile, watch: false },
    allowedOrigins: [allowedOrigin],
    security: { jwt: { secretFile: jwt.file, issuer: ISSUER, audience: AUDIENCE } },
  });
  // The backend's side: an administrator (a token with every permission), from Node, trusting the CA.
  const adminToken = await new SignJWT({ weir: { allow: [SUPERUSER] } }).setProtectedHeader({ alg: 'HS256' }).setSubject('backend').setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime('10m').sign(secret);
  admin = await connect(tb.url, { token: adminToken, tls: { ca: caPem }, reconnect: false });
  for (const t of ['rooms.42.a', 'rooms.42.b', 'rooms.43.x']) await admin.createTopic(t, { partitions: 2 });

  // Chromium trusts exactly the broker's certificate (by its public key), as if the test CA were installed.
  const spki = new X509Certificate(fs.readFileSync(cert.certFile)).publicKey.export({ type: 'spki', format: 'der' });
  const spkiHash = createHash('sha256').update(spki).digest('base64');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--ignore-certificate-errors-spki-list=${spkiHash}`,
    ],
  });
});

afterAll(async () => {
  await browser?.close();
  for (const s of servers) s.close();
  servers = [];
  await admin?.close().catch(() => undefined);
  await tb?.stop();
  tmp.cleanup();
});

async function openPage(origin: string): Promise<Page> {
  const page = await browser!.newPage();
  await page.goto(`${origin}/`);
  await page.waitForFunction('window.weirLoaded === true', undefined, { timeout: 20_000 });
  return page;
}

interface PageState {
  error?: string;
  direct: Array<{ topic: string; value: string }>;
  pattern: Array<{ topic: string; value: string }>;
  refused?: { code: string; retryable: boolean; details: unknown };
  patternTopics: string[];
}

const state = (page: Page): Promise<PageState> => page.evaluate('window.weirState') as Promise<PageState>;

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(!CHROMIUM)('Chromium over wss:// with a chat-room token', () => {
  it('receives rooms.42.*, is refused rooms.43.x with FORBIDDEN, and its pattern rooms.# sees only rooms.42.*', async () => {
    const page = await openPage(allowedOrigin);
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    const token = await chatRoomToken('user-7', '42');
    // The page's own code, as a string (kept out of vitest's transform).
    await page.evaluate(`(async () => {
      const state = { direct: [], pattern: [], patternTopics: [] };
      window.weirState = state;
      const text = (m) => ({ topic: m.topic, value: new TextDecoder().decode(m.value) });
      try {
        const client = await window.weirConnect(${JSON.stringify(tb.url)}, { token: ${JSON.stringify(token)}, reconnect: false });
        window.weirClient = client;
        for (const t of ['rooms.42.a', 'rooms.42.b']) await client.subscribe(t, { from: 'earliest' }, (m) => { state.direct.push(text(m)); });
        try {
          await client.subscribe('rooms.43.x', { from: 'earliest' }, () => { state.direct.push({ topic: 'rooms.43.x', value: 'delivered!' }); });
          state.refused = { code: 'none' };
        } catch (e) {
          state.refused = { code: e.code, retryable: e.retryable, details: e.details };
        }
        const p = await client.subscribe({ pattern: 'rooms.#' }, { from: 'earliest' }, (m) => { state.pattern.push(text(m)); });
        p.on('topic', ({ topic }) => { state.patternTopics.push(topic); });
        state.ready = true;
      } catch (e) {
        state.error = String(e && e.stack || e);
      }
    })()`);
    let s = await state(page);
    expect(s.error).toBeUndefined();
    expect(s.refused).toMatchObject({ code: 'FORBIDDEN', retryable: false, details: { action: 'consume', resource: 'topic:rooms.43.x' } });

    // The backend produces to the room, to another room, and makes topics of both rooms later.
    await admin.produce('rooms.42.a', [{ key: 'k1', value: 'a1' }, { key: 'k2', value: 'a2' }]);
    await admin.produce('rooms.42.b', [{ value: 'b1' }]);
    await admin.produce('rooms.43.x', [{ value: 'x1' }, { value: 'x2' }]);
    await admin.createTopic('rooms.42.later', { partitions: 1 });
    await admin.createTopic('rooms.43.later', { partitions: 1 });
    // A topic created later is matched when the broker announces it; produce once the page has it.
    await until(async () => (await state(page)).patternTopics.includes('rooms.42.later'), 'the pattern subscription to announce rooms.42.later');
    await admin.produce('rooms.42.later', [{ value: 'later1' }]);
    await admin.produce('rooms.43.later', [{ value: 'other-later' }]);
    await admin.produce('rooms.43.x', [{ value: 'x3' }]);

    await until(async () => {
      const now = await state(page);
      return now.direct.length >= 3 && now.pattern.length >= 4;
    }, 'the page to receive the room\'s messages');
    // Time for anything not meant for the page to arrive, if it were going to.
    await admin.produce('rooms.42.b', [{ value: 'b2' }]);
    await until(async () => (await state(page)).pattern.some((m) => m.value === 'b2'), 'the last message');
    await new Promise((r) => setTimeout(r, 300));

    s = await state(page);
    const sorted = (ms: Array<{ topic: string; value: string }>): string[] => ms.map((m) => `${m.topic}:${m.value}`).sort();
    expect(sorted(s.direct)).toEqual(['rooms.42.a:a1', 'rooms.42.a:a2', 'rooms.42.b:b1', 'rooms.42.b:b2']);
    expect(sorted(s.pattern)).toEqual(['rooms.42.a:a1', 'rooms.42.a:a2', 'rooms.42.b:b1', 'rooms.42.b:b2', 'rooms.42.later:later1']);
    expect([...s.patternTopics].sort()).toEqual(['rooms.42.a', 'rooms.42.b', 'rooms.42.later']);
    expect(pageErrors).toEqual([]);
    // The denial was counted.
    expect(tb.broker.core.securityStats().forbidden).toBe(1);
    await page.evaluate('window.weirClient.close()');
    await page.close();
  });

  it('a page of an origin not allowed cannot open a WebSocket to the broker (403 at the upgrade)', async () => {
    const page = await openPage(otherOrigin);
    const token = await chatRoomToken('user-7', '42');
    const result = (await page.evaluate(`(async () => {
      const socket = await new Promise((resolve) => {
        const ws = new WebSocket(${JSON.stringify(tb.url)});
        ws.onopen = () => { resolve({ opened: true }); ws.close(); };
        ws.onclose = (e) => resolve({ opened: false, code: e.code });
      });
      let sdk;
      try {
        const client = await window.weirConnect(${JSON.stringify(tb.url)}, { token: ${JSON.stringify(token)}, reconnect: false });
        await client.close();
        sdk = { connected: true };
      } catch (e) {
        sdk = { connected: false, code: e.code };
      }
      return { socket, sdk };
    })()`)) as { socket: { opened: boolean; code?: number }; sdk: { connected: boolean; code?: string } };
    expect(result.socket).toEqual({ opened: false, code: 1006 });
    expect(result.sdk).toMatchObject({ connected: false, code: 'CONNECTION_CLOSED' });
    await page.close();

    // What the browser was answered: 403, for that origin; the allowed origin is let through.
    const upgrade = (origin: string): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = https.request({
          host: '127.0.0.1',
          port: tb.broker.port,
          ca: caPem,
          headers: { Connection: 'Upgrade', Upgrade: 'websocket', Origin: origin, 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' },
        });
        req.on('upgrade', (res, socket) => {
          socket.destroy();
          resolve(res.statusCode ?? 0);
        });
        req.on('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
    expect(await upgrade(otherOrigin)).toBe(403);
    expect(await upgrade(allowedOrigin)).toBe(101);
  });
});
