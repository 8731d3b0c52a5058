/**
 * The HTTP front door (docs/protocol.md, "HTTP"): plain HTTP routes on the same uWebSockets.js app,
 * and port, as the WebSocket gateway. It uses the broker core only; today that is `GET /healthz`,
 * and a 404 for any other request that is not a WebSocket upgrade.
 */
import type { HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { BrokerCore } from '../core/broker-core.js';

/** What the HTTP routes need of the core. */
export type HttpCore = Pick<BrokerCore, 'health'>;

/** Register the HTTP routes on `app`, after the WebSocket route (so they get what it does not upgrade). */
export function mountHttpRoutes(app: TemplatedApp, core: HttpCore): void {
  app.get('/healthz', (res) => healthz(res, core));
  app.any('/*', (res) => {
    res.cork(() => res.writeStatus('404 Not Found').end('not found; the WebSocket endpoint is /\n'));
  });
}

/** 200 while every partition is up, 503 while some is not or the broker is stopping. */
function healthz(res: HttpResponse, core: HttpCore): void {
  const h = core.health();
  const body: Record<string, unknown> = { status: h.status, partitions: h.partitions };
  // Why each partition that is not up is not: given up (failed) or restarting, with its last error.
  if (h.unavailable.length > 0) body.unavailable = h.unavailable;
  const text = JSON.stringify(body);
  res.cork(() => {
    res.writeStatus(h.ok ? '200 OK' : '503 Service Unavailable').writeHeader('content-type', 'application/json').end(text);
  });
}
