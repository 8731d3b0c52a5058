/**
 * The HTTP front door (src/http/routes.ts) on a real broker's port, beside the WebSocket gateway:
 * GET /healthz as docs/protocol.md ("HTTP") describes it, and a 404 for anything else.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { RawClient } from '../support/raw-client.js';

let tb: TestBroker;
let http: string;

beforeAll(async () => {
  tb = await startTestBroker();
  http = tb.url.replace('ws:', 'http:');
  const c = await RawClient.connect(tb.url);
  expect(await c.request({ op: 'create_topic', topic: 'orders', partitions: 4 })).toMatchObject({ op: 'result' });
  c.close();
});
afterAll(async () => {
  await tb?.stop();
});

it('answers GET /healthz with 200 and every partition up', async () => {
  const res = await fetch(`${http}/healthz`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('application/json');
  expect(await res.text()).toBe('{"status":"ok","partitions":{"up":4,"total":4}}');
});

it('answers any other HTTP request with 404 and where the WebSocket endpoint is', async () => {
  for (const [method, url] of [['GET', '/metrics'], ['GET', '/'], ['POST', '/healthz']] as const) {
    const res = await fetch(`${http}${url}`, { method });
    expect(res.status, `${method} ${url}`).toBe(404);
    expect(await res.text()).toBe('not found; the WebSocket endpoint is /\n');
  }
});

it('answers /healthz with 503 "stopping" once the broker stops accepting', async () => {
  tb.broker.core.stopAccepting();
  const res = await fetch(`${http}/healthz`);
  expect(res.status).toBe(503);
  expect(await res.json()).toEqual({ status: 'stopping', partitions: { up: 4, total: 4 } });
});
