/**
 * The WebSocket + CBOR front door (docs/protocol.md): a uWebSockets.js server whose clients are
 * sessions of the broker core. It decodes each binary frame into a map and hands it to the core
 * (BrokerCore.dispatch); what the core sends goes out through each connection's port
 * (connection.ts) at the end of the turn (output.ts). Other front doors that speak HTTP (src/http/)
 * mount their routes on the same app, and port, through `mountHttp`. Everything here runs on the
 * main thread's event loop and never blocks it.
 *
 * At the upgrade, before any WebSocket exists, it refuses a browser page whose `Origin` is not
 * allowed (403) and an address over its connection limit (429). With TLS it serves `wss://`; uWS
 * cannot change an app's certificate, so a reload builds a new app and swaps the listen socket
 * within one turn: new connections get the new certificate, open ones stay on the old app.
 */
import type { TemplatedApp, us_listen_socket } from 'uWebSockets.js';
import { channels } from '../common/diagnostics.js';
import { WeirError } from '../common/errors.js';
import { decodeFrame } from '../protocol/cbor.js';
import { ErrorCode } from '../protocol/codes.js';
import { WeirCode } from '../protocol/error-codes.js';
import type { BrokerCore } from '../core/broker-core.js';
import type { Frame } from '../core/session.js';
import { ConnectionLimits, addressKey, tooManyConnections } from '../security/limits.js';
import type { GatewayConfig } from './config.js';
import { Connection, type ConnData } from './connection.js';
import { listenExclusive, listenExclusiveNow, listenFailed, loadNativeUws } from './native.js';
import { originAllowed, parseAllowedOrigins } from './origin.js';
import { Output } from './output.js';
import { checkTlsFiles, tlsFilesDigest, uwsTlsOptions, watchTlsFiles, type CertificateFacts } from './tls.js';

/** What started a TLS reload. */
export type TlsReloadTrigger = 'signal' | 'files' | 'call';

export type TlsReloadResult = { readonly ok: true; readonly certificate: CertificateFacts } | { readonly ok: false; readonly error: string };

/** Debounce of the TLS files' watch: a renewal writes the certificate and the key one after the other. */
const TLS_WATCH_DEBOUNCE_MS = 200;

export class Gateway {
  private readonly uws = loadNativeUws();
  private listenSocket: us_listen_socket | null = null;
  /** The app new connections reach. */
  private app: TemplatedApp | null = null;
  /**
   * Open connections per app: the current one, and those a TLS reload replaced, which are kept
   * (referenced) until their last connection closes.
   */
  private readonly appConnections = new Map<TemplatedApp, number>();
  private readonly conns = new Set<Connection>();
  private readonly output: Output;
  private readonly allowedOrigins: ReadonlySet<string> | null;
  private readonly limits: ConnectionLimits;
  /** Set by `open`, which uWS calls inside `res.upgrade`: an upgrade that did not open releases its address. */
  private upgradeOpened = false;
  /** The TLS files' contents last loaded (tlsFilesDigest): a watch event without a change reloads nothing. */
  private tlsDigest: string | null = null;
  private stopWatchingTls: (() => void) | null = null;
  port = 0;

  constructor(
    private readonly config: GatewayConfig,
    private readonly core: BrokerCore,
    /** Registers the HTTP routes on the gateway's app, after its WebSocket route. */
    private readonly mountHttp: (app: TemplatedApp) => void,
  ) {
    this.output = new Output(core.turn, (conn) => core.drained(conn.session));
    this.allowedOrigins = config.allowedOrigins === undefined ? null : parseAllowedOrigins(config.allowedOrigins);
    this.limits = new ConnectionLimits(config.maxConnectionsPerAddress === undefined ? {} : { maxPerAddress: config.maxConnectionsPerAddress });
  }

  async listen(): Promise<number> {
    const cfg = this.config;
    if (cfg.tls !== undefined) {
      checkTlsFiles(cfg.tls);
      this.tlsDigest = tlsFilesDigest(cfg.tls);
    }
    const app = this.createApp();
    let socket = await listenExclusive(app, cfg.host, cfg.port);
    if (socket && cfg.tls !== undefined && cfg.port === 0) {
      // A port the kernel picked cannot be bound again while connections accepted on it are open
      // (a TLS reload does): take the picked port by its number instead.
      const picked = this.uws.us_socket_local_port(socket);
      this.uws.us_listen_socket_close(socket);
      socket = listenExclusiveNow(app, cfg.host, picked) || listenExclusiveNow(app, cfg.host, 0);
    }
    if (!socket) throw listenFailed(cfg.host, cfg.port);
    this.listenSocket = socket;
    this.app = app;
    this.port = this.uws.us_socket_local_port(socket);
    if (cfg.tls !== undefined && cfg.watchTls !== false) {
      const files = cfg.tls;
      this.stopWatchingTls = watchTlsFiles(files, TLS_WATCH_DEBOUNCE_MS, () => {
        const digest = tlsFilesDigest(files);
        if (digest !== null && digest !== this.tlsDigest) void this.reloadTls('files');
      });
    }
    return this.port;
  }

  /**
   * Load the TLS files again: new connections get the new certificate, open ones keep theirs. A
   * certificate that does not load is reported (weir:tls:reload) and the old one kept.
   */
  async reloadTls(trigger: TlsReloadTrigger = 'call'): Promise<TlsReloadResult> {
    const files = this.config.tls;
    let result: TlsReloadResult;
    if (files === undefined) result = { ok: false, error: 'the broker serves no TLS (no certificate configured)' };
    else {
      try {
        const digest = tlsFilesDigest(files);
        const certificate = checkTlsFiles(files);
        const next = this.createApp();
        // Connections that arrived while the files loaded wait in the listen socket's backlog, and
        // closing it would reset them: let the event loop accept them first.
        await new Promise((resolve) => setImmediate(resolve));
        if (this.listenSocket === null || this.app === null) throw new Error('the gateway is not listening');
        this.swapApp(next);
        this.tlsDigest = digest;
        result = { ok: true, certificate };
      } catch (err) {
        result = { ok: false, error: err instanceof Error ? err.message : String(err) };
      }
    }
    if (channels.tlsReload.hasSubscribers) channels.tlsReload.publish({ ...result, trigger, certFile: files?.certFile });
    return result;
  }

  /** A new app with the gateway's routes: an SSLApp with the TLS files, else a plain one. */
  private createApp(): TemplatedApp {
    const cfg = this.config;
    let app: TemplatedApp;
    try {
      app = cfg.tls === undefined ? this.uws.App() : this.uws.SSLApp(uwsTlsOptions(cfg.tls));
    } catch (err) {
      // checkTlsFiles passed, yet OpenSSL refused the files (or they changed in between).
      throw new WeirError(WeirCode.BAD_CONFIG, `BAD_CONFIG: the TLS files could not be loaded: ${(err as Error).message}`);
    }
    app.ws<ConnData>('/*', {
      // uWS cuts larger frames with 1006 and no reason; leave headroom so our own check answers 1009.
      maxPayloadLength: cfg.maxFrameBytes * 2 + 1024 * 1024,
      // A backstop only: the core keeps each session within maxBufferedBytes (+ one frame) for
      // deliveries and fetch answers; a send beyond this closes the socket (1006).
      maxBackpressure: cfg.maxBackpressureBytes ?? 4 * cfg.maxBufferedBytes,
      closeOnBackpressureLimit: 1,
      idleTimeout: cfg.idleTimeoutSec,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => {
        if (!originAllowed(this.allowedOrigins, req.getHeader('origin'))) {
          res.cork(() => res.writeStatus('403 Forbidden').end(`${ErrorCode.FORBIDDEN}: this broker does not accept WebSocket connections from pages of origin ${req.getHeader('origin').slice(0, 200)}\n`));
          return;
        }
        const address = addressKey(Buffer.from(res.getRemoteAddressAsText()).toString());
        const refusal = this.limits.admitAddress(address);
        if (refusal !== null) {
          const message = tooManyConnections(refusal).message;
          res.cork(() => res.writeStatus('429 Too Many Requests').end(`${ErrorCode.TOO_MANY_CONNECTIONS}: ${message}\n`));
          return;
        }
        this.upgradeOpened = false;
        res.upgrade<ConnData>(
          { address },
          req.getHeader('sec-websocket-key'),
          req.getHeader('sec-websocket-protocol'),
          req.getHeader('sec-websocket-extensions'),
          context,
        );
        if (!this.upgradeOpened) this.limits.releaseAddress(address);
      },
      open: (ws) => {
        this.upgradeOpened = true;
        this.appConnections.set(app, (this.appConnections.get(app) ?? 0) + 1);
        const conn = new Connection(ws, this.output);
        conn.session = this.core.openSession(conn);
        ws.getUserData().conn = conn;
        this.conns.add(conn);
      },
      message: (ws, message, isBinary) => {
        this.onMessage(ws.getUserData().conn!, message, isBinary);
      },
      drain: (ws) => {
        this.core.drained(ws.getUserData().conn!.session);
      },
      close: (ws) => {
        const data = ws.getUserData();
        const conn = data.conn!;
        conn.closed = true;
        conn.outbox.clear();
        this.conns.delete(conn);
        this.limits.releaseAddress(data.address!);
        const live = this.appConnections.get(app)! - 1;
        if (live > 0 || app === this.app) this.appConnections.set(app, live);
        else this.appConnections.delete(app);
        this.core.closeSession(conn.session);
      },
    });
    this.mountHttp(app);
    return app;
  }

  /**
   * Listen with `next` instead of the current app, within this turn: the listen is exclusive, so
   * the old listen socket closes first and the new one takes the port at once. If the new one cannot
   * (another process took the port in between), the old app listens again.
   */
  private swapApp(next: TemplatedApp): void {
    const host = this.config.host;
    const port = this.port;
    this.uws.us_listen_socket_close(this.listenSocket!);
    this.listenSocket = null;
    const socket = listenExclusiveNow(next, host, port);
    if (socket !== false) {
      this.listenSocket = socket;
      if (!this.appConnections.get(this.app!)) this.appConnections.delete(this.app!);
      this.app = next;
      return;
    }
    const again = listenExclusiveNow(this.app!, host, port);
    if (again !== false) this.listenSocket = again;
    throw listenFailed(host, port);
  }

  /** Stop accepting, let in-flight produce requests finish (bounded), then close every connection. */
  async close(graceMs = 5_000): Promise<void> {
    this.core.stopAccepting();
    this.stopWatchingTls?.();
    this.stopWatchingTls = null;
    if (this.listenSocket) this.uws.us_listen_socket_close(this.listenSocket);
    this.listenSocket = null;
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && this.core.inFlightProduceBytes() > 0) {
      await new Promise((r) => setTimeout(r, 10));
    }
    this.output.flush();
    for (const conn of [...this.conns]) {
      if (!conn.closed) conn.ws.end(1001, 'SHUTTING_DOWN: broker is stopping');
    }
    this.conns.clear();
  }

  /** Memory the gateway holds for its clients right now (tests use it). */
  stats(): { connections: number; bufferedBytes: number; maxConnectionBufferedBytes: number; inFlightProduceBytes: number } {
    let bufferedBytes = 0;
    let max = 0;
    let inFlight = 0;
    for (const c of this.conns) {
      if (c.closed) continue;
      const b = c.unsentBytes();
      bufferedBytes += b;
      if (b > max) max = b;
      inFlight += c.session.inFlightBytes;
    }
    return { connections: this.conns.size, bufferedBytes, maxConnectionBufferedBytes: max, inFlightProduceBytes: inFlight };
  }

  private onMessage(conn: Connection, message: ArrayBuffer, isBinary: boolean): void {
    const session = conn.session;
    if (message.byteLength > this.config.maxFrameBytes) {
      const reason = `${ErrorCode.FRAME_TOO_LARGE}: frame of ${message.byteLength} bytes exceeds the limit of ${this.config.maxFrameBytes}`;
      conn.ws.end(1009, reason);
      return;
    }
    if (!isBinary) {
      this.core.sendError(session, undefined, new WeirError(ErrorCode.BAD_FRAME, 'text frames are not supported: send one CBOR map per binary frame'));
      return;
    }
    let frame: unknown;
    try {
      frame = decodeFrame(new Uint8Array(message));
    } catch (err) {
      this.core.sendError(session, undefined, new WeirError(ErrorCode.BAD_FRAME, `frame is not valid CBOR: ${(err as Error).message}`));
      return;
    }
    if (typeof frame !== 'object' || frame === null || Array.isArray(frame) || frame instanceof Uint8Array) {
      this.core.sendError(session, undefined, new WeirError(ErrorCode.BAD_FRAME, 'frame must be a CBOR map'));
      return;
    }
    const f = frame as Frame;
    const id = typeof f.id === 'number' && Number.isInteger(f.id) && f.id >= 0 ? f.id : undefined;
    if (typeof f.op !== 'string') {
      this.core.sendError(session, id, new WeirError(ErrorCode.BAD_FRAME, 'frame has no string "op"'));
      return;
    }
    // Frames without an id (credit, revoked) are answered, if they fail, with their subscription.
    const sub = id === undefined && typeof f.sub === 'number' ? f.sub : undefined;
    try {
      const maybe = this.core.dispatch(session, f, id);
      if (maybe) maybe.catch((err: unknown) => this.core.sendError(session, id, err, sub));
    } catch (err) {
      this.core.sendError(session, id, err, sub);
    }
  }
}
