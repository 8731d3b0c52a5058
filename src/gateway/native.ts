/**
 * uWebSockets.js, native or nothing. The packaged loader silently falls back to a slow pure-JS
 * server when its binary does not match this Node (ABI), so check what we got and refuse to start.
 */
import { createRequire } from 'node:module';
import type * as Uws from 'uWebSockets.js';
import { WeirError } from '../common/errors.js';

export type UwsModule = typeof Uws;

const require = createRequire(import.meta.url);

export function loadNativeUws(): UwsModule {
  const mod = require('uWebSockets.js') as UwsModule & Record<string, unknown>;
  // The native addon exports SSLApp/H3App; the JS fallback only App.
  if (typeof mod.SSLApp !== 'function' || typeof mod.H3App !== 'function') {
    throw new WeirError(
      'NATIVE_UWS_MISSING',
      `uWebSockets.js loaded its slow JavaScript fallback instead of the native binary for ` +
        `${process.platform}-${process.arch} Node ABI ${process.versions.modules} (Node ${process.version}). ` +
        `weir refuses to run on it. Use a Node version the installed package ships a binary for ` +
        `(uws_${process.platform}_${process.arch}_<abi>.node under node_modules/uWebSockets.js/binaries), ` +
        `or reinstall dependencies with \`npm ci\`.`,
    );
  }
  return mod;
}
