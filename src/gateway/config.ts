import type { CoreConfig } from '../core/broker-core.js';
import type { TlsFiles } from './tls.js';

/** Gateway limits and their defaults (the broker's CLI and startBroker options fill these); the core's among them. */
export interface GatewayConfig extends CoreConfig {
  host: string;
  port: number;
  /** Frames above this close the connection with 1009. */
  maxFrameBytes: number;
  /** Largest single record (header + key + value + headers). */
  maxMessageBytes: number;
  /** Unanswered produce bytes per connection. */
  maxInFlightBytes: number;
  maxRecordsPerBatch: number;
  /**
   * A connection's bound on unsent bytes (uWS's buffer plus frames queued this turn): deliveries
   * stop above it (resumed on drain), and `fetch` answers THROTTLED. At most one frame past it.
   */
  maxBufferedBytes: number;
  /** Close (1008, `SLOW_CONSUMER`) a connection that stays over maxBufferedBytes this long. */
  slowConsumerCloseMs: number;
  /**
   * uWS's own limit per socket (maxBackpressure; a send past it closes the socket): a backstop for
   * frames outside the bound above, e.g. answers a client requests without reading them.
   * Default: 4 × maxBufferedBytes.
   */
  maxBackpressureBytes?: number;
  /** Largest DATA answer a partition returns for one fetch. */
  maxFetchBytes: number;
  /** How long a subscription's fetch waits at the partition for new data. */
  longPollMs: number;
  idleTimeoutSec: number;
  /** Serve `wss://` with these files (reloaded on change); plain `ws://` without. */
  tls?: TlsFiles;
  /** Watch the TLS files and reload them when they change (else only Gateway.reloadTls does). Default true. */
  watchTls?: boolean;
  /** When set, a WebSocket upgrade whose `Origin` is not one of these is refused (403); one without `Origin` is not. */
  allowedOrigins?: readonly string[];
  /** Live WebSocket connections per client address (IPv6: per /64); more are refused at upgrade (429). Default 100. */
  maxConnectionsPerAddress?: number;
  /** A token shared by every client, sent in `hello` (BrokerOptions.security.token: the broker authenticates with it). */
  token?: string;
  /** Shown in hello: the fsync policy acknowledgements follow. */
  fsyncLabel: string;
}

export const defaultGatewayConfig: GatewayConfig = {
  host: '127.0.0.1',
  port: 7070,
  maxFrameBytes: 8 * 1024 * 1024,
  maxMessageBytes: 1024 * 1024,
  maxInFlightBytes: 32 * 1024 * 1024,
  maxRecordsPerBatch: 100_000,
  maxBufferedBytes: 4 * 1024 * 1024,
  slowConsumerCloseMs: 30_000,
  maxFetchBytes: 1024 * 1024,
  longPollMs: 500,
  maxSubscriptionsPerConnection: 1000,
  maxInFlightRequestsPerConnection: 10_000,
  idleTimeoutSec: 120,
  fsyncLabel: 'never',
};
