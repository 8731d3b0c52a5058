/**
 * The `Origin` allowlist of WebSocket upgrades. Browsers send the page's origin with every
 * upgrade and let any page connect anywhere (WebSockets are not bound by the same-origin policy),
 * so a broker that browsers reach names the pages that may use it. Clients that are not browsers
 * send no `Origin`; the allowlist does not concern them.
 */
import { WeirError } from '../common/errors.js';
import { WeirCode } from '../protocol/error-codes.js';

/** An origin as a browser serializes it (`https://app.example.com`, `http://localhost:8080`); null if the text is not one. */
function serializedOrigin(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  // URL.origin is "null" for schemes without one (file:, data:), as browsers send for opaque origins.
  return url.origin === 'null' ? null : url.origin;
}

/**
 * The allowlist's set, from configured origins (scheme, host and optional port: no path, query or
 * credentials). Case and a default port do not matter. Throws BAD_CONFIG naming a bad entry.
 */
export function parseAllowedOrigins(origins: readonly string[]): ReadonlySet<string> {
  const set = new Set<string>();
  for (const text of origins) {
    const origin = serializedOrigin(text);
    const url = origin === null ? null : new URL(text);
    if (origin === null || url === null || url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
      throw new WeirError(WeirCode.BAD_CONFIG, `BAD_CONFIG: --allowed-origin ${JSON.stringify(text)} is not an origin: give scheme, host and optional port, e.g. https://app.example.com or http://localhost:8080`);
    }
    set.add(origin);
  }
  return set;
}

/** Whether an upgrade with this `Origin` header value ('' when absent) may go on. */
export function originAllowed(allowed: ReadonlySet<string> | null, header: string): boolean {
  if (allowed === null || header === '') return true;
  const origin = serializedOrigin(header);
  return origin !== null && allowed.has(origin);
}
