/**
 * The WebSocket + CBOR front door (docs/protocol.md): a uWebSockets.js server whose clients are
 * sessions of the broker core. It decodes each binary frame into a map and hands it to the core
 * (BrokerCore.dispatch); what the core sends goes out through each connection's port
 * (connection.ts) at the end of the turn (output.ts). Other front doors that speak HTTP (src/http/)
 * mount their routes on the same app, and port, through `mountHttp`. Everything here runs on the
 * main thread's event loop and never blocks it.
 */
import type { TemplatedApp, us_listen_socket } from 'uWebSockets.js';
import { WeirError } from '../common/errors.js';
import { decodeFrame } from '../protocol/cbor.js';
import { ErrorCode } from '../protocol/codes.js';
import type { BrokerCore } from '../core/broker-core.js';
import type { Frame } from '../core/session.js';
import type { GatewayConfig } from './config.js';
import { Connection, type ConnData } from './connection.js';
import { listenExclusive, listenFailed, loadNativeUws } from './native.js';
import { Output } from './output.js';

export class Gateway {
  private readonly uws = loadNativeUws();
  private listenSocket: us_listen_socket | null = null;
  private readonly conns = new Set<Connection>();
  private readonly output: Output;
  port = 0;

  constructor(
    private readonly config: GatewayConfig,
    private readonly core: BrokerCore,
    /** Registers the HTTP routes on the gateway's app, after its WebSocket route. */
    private readonly mountHttp: (app: TemplatedApp) => void,
  ) {
    this.output = new Output(core.turn, (conn) => core.drained(conn.session));
  }

  listen(): Promise<number> {
    const cfg = this.config;
    const app = this.uws.App();
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
        res.upgrade<ConnData>(
          {},
          req.getHeader('sec-websocket-key'),
          req.getHeader('sec-websocket-protocol'),
          req.getHeader('sec-websocket-extensions'),
          context,
        );
      },
      open: (ws) => {
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
        const conn = ws.getUserData().conn!;
        conn.closed = true;
        conn.outbox.clear();
        this.conns.delete(conn);
        this.core.closeSession(conn.session);
      },
    });
    this.mountHttp(app);
    return listenExclusive(app, cfg.host, cfg.port).then((socket) => {
      if (!socket) throw listenFailed(cfg.host, cfg.port);
      this.listenSocket = socket;
      this.port = this.uws.us_socket_local_port(socket);
      return this.port;
    });
  }

  /** Stop accepting, let in-flight produce requests finish (bounded), then close every connection. */
  async close(graceMs = 5_000): Promise<void> {
    this.core.stopAccepting();
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
