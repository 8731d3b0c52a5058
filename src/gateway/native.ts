/**
 * uWebSockets.js, native or nothing. The packaged loader silently falls back to a slow pure-JS
 * server when its binary does not match this Node (ABI), so check what we got and refuse to start.
 */
import { createRequire } from 'node:module';
import type * as Uws from 'uWebSockets.js';
import { WeirError } from '../common/errors.js';
import { WeirCode } from '../protocol/error-codes.js';

export type UwsModule = typeof Uws;

const require = createRequire(import.meta.url);

export function loadNativeUws(): UwsModule {
  const mod = require('uWebSockets.js') as UwsModule & Record<string, unknown>;
  // The native addon exports SSLApp/H3App; the JS fallback only App.
  if (typeof mod.SSLApp !== 'function' || typeof mod.H3App !== 'function') {
    throw new WeirError(
      WeirCode.NATIVE_UWS_MISSING,
      `uWebSockets.js loaded its slow JavaScript fallback instead of the native binary for ` +
        `${process.platform}-${process.arch} Node ABI ${process.versions.modules} (Node ${process.version}). ` +
        `weir refuses to run on it. Use a Node version the installed package ships a binary for ` +
        `(uws_${process.platform}_${process.arch}_<abi>.node under node_modules/uWebSockets.js/binaries), ` +
        `or reinstall dependencies with \`npm ci\`.`,
    );
  }
  return mod;
}

/** uSockets' LIBUS_LISTEN_EXCLUSIVE_PORT (ListenOptions in uWebSockets.js's index.d.ts). */
const LIBUS_LISTEN_EXCLUSIVE_PORT = 1;

/** The overload uWS.js has and its index.d.ts lacks (host, port and options). */
type ListenWithOptions = (host: string, port: number, options: number, cb: (socket: Uws.us_listen_socket | false) => void) => Uws.TemplatedApp;

/**
 * `app.listen` without SO_REUSEPORT, which uSockets sets by default: with it a second broker on
 * the port listens too and the kernel splits connections between the two. Resolves with the listen
 * socket, or false when the port is taken (or `host` is not an address of this machine).
 */
export function listenExclusive(app: Uws.TemplatedApp, host: string, port: number): Promise<Uws.us_listen_socket | false> {
  return new Promise((resolve) => {
    (app.listen as unknown as ListenWithOptions).call(app, host, port, LIBUS_LISTEN_EXCLUSIVE_PORT, resolve);
  });
}

/**
 * listenExclusive, settled before it returns (uSockets listens synchronously and uWS.js calls back
 * at once): for swapping one listen socket for another within a turn.
 */
export function listenExclusiveNow(app: Uws.TemplatedApp, host: string, port: number): Uws.us_listen_socket | false {
  let result: Uws.us_listen_socket | false | undefined;
  (app.listen as unknown as ListenWithOptions).call(app, host, port, LIBUS_LISTEN_EXCLUSIVE_PORT, (socket) => {
    result = socket;
  });
  if (result === undefined) throw new Error('uWebSockets.js did not listen synchronously');
  return result;
}

export function listenFailed(host: string, port: number): WeirError {
  return new WeirError(WeirCode.LISTEN_FAILED, `LISTEN_FAILED: cannot listen on ${host}:${port}: the port is in use (another broker?) or ${host} is not an address of this machine`, {
    details: { host, port },
  });
}

/**
 * Throw LISTEN_FAILED unless `host:port` can be listened on now: Broker.start asks before it
 * touches its data directory, so a broker started on a taken port writes nothing. The gateway's
 * own exclusive listen, later, still settles a race with another process starting meanwhile.
 */
export async function checkPortFree(host: string, port: number): Promise<void> {
  const uws = loadNativeUws();
  const socket = await listenExclusive(uws.App(), host, port);
  if (socket === false) throw listenFailed(host, port);
  uws.us_listen_socket_close(socket);
}
