/**
 * One WebSocket to the broker: opening it, the `hello` handshake, request/response correlation by
 * `id`, per-request timeouts, routing of pushed frames to subscriptions, and reconnection.
 *
 * Browser-safe: no top-level Node import. `ws` is imported dynamically, and only in Node when no
 * `WebSocket` option was given (see resolveWebSocket).
 *
 * State machine:
 *
 *   connecting ──hello ok──▶ open ──socket closed──▶ reconnecting ──hello ok──▶ open …
 *        │                    │                          │ (gave up / fatal hello error)
 *        └──failed──▶ closed ◀┴── close()/destroy() ─────┘
 *
 * Invariants:
 * - `pending` holds only requests that were written to the current socket; when that socket closes
 *   they all fail with CONNECTION_CLOSED (retryable), because nothing will answer them any more.
 * - Requests made while not `open` wait in `waiting` (each under its own timeout) and are written,
 *   in call order, as soon as the next `hello` and the reopen steps (addReopenStep) succeed.
 * - Fire-and-forget frames (`credit`, `revoked`) are dropped when not `open`: the broker forgets a
 *   connection's subscriptions when it closes, and they are re-created after reconnecting.
 */
import { encodeFrame, decodeFrame } from '../protocol/cbor.js';
import { ErrorCode } from '../protocol/codes.js';
import {
  PROTOCOL_VERSION,
  type AssignFrame,
  type DeliverFrame,
  type ErrorFrame,
  type HelloResult,
  type Request,
  type RevokeFrame,
} from '../protocol/frames.js';
import { backoffDelay } from './backoff.js';
import { Emitter } from './emitter.js';
import { WeirClientError, badResponse, connectionClosedError, errorFromFrame, timeoutError } from './errors.js';
import type { ClientTlsOptions, WebSocketConstructor, WebSocketLike } from './types.js';

/** A request as the caller writes it: the connection assigns `id`. */
export type RequestBody = Request extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;
/** Frames that carry no `id` and get no answer. */
export type NotificationBody = Exclude<Request, { id: number }>;

export type PushFrame = DeliverFrame | AssignFrame | RevokeFrame | (ErrorFrame & { sub: number });
export type PushListener = (frame: PushFrame) => void;

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface ConnectionOptions {
  url: string;
  /** Credentials sent in `hello` (ClientOptions.token, user, password). */
  token: string | (() => string | Promise<string>) | undefined;
  user: string | undefined;
  password: string | undefined;
  clientName: string;
  WebSocket: WebSocketConstructor | undefined;
  /** Node's `ws` only (ClientOptions.tls). */
  tls: ClientTlsOptions | undefined;
  requestTimeoutMs: number;
  connectTimeoutMs: number;
  reconnect: boolean;
  reconnectDelayMs: number;
  reconnectMaxDelayMs: number;
  reconnectForMs: number;
  /** Ping after this long without any frame from the broker; no answer within it → reconnect. 0 = off. */
  keepAliveMs: number;
  /** Consumers check each record's CRC32C before handing it out (ClientOptions.checkCrcs). */
  checkCrcs: boolean;
}

export interface ConnectionEvents extends Record<string, unknown> {
  /** The socket closed unexpectedly; outstanding requests failed with this error. */
  disconnect: WeirClientError;
  /** A new socket completed `hello` after a disconnect. */
  reconnect: HelloResult;
  /** An `error` frame that belongs to no request and no subscription (e.g. BAD_FRAME). */
  error: WeirClientError;
  /** The connection is closed for good (close(), destroy(), or reconnecting gave up). */
  close: WeirClientError;
}

/**
 * Restores, on a new socket after a reconnect, what the broker binds to a connection (the idempotent
 * producer reclaims its producer ids). Runs after `hello`, before the requests queued while
 * disconnected are written and before `reconnect` is emitted; `send` writes on that socket at once.
 * A retryable rejection abandons the socket (the reconnect goes on); the step handles the others.
 */
export type ReopenStep = (send: <T>(frame: RequestBody) => Promise<T>) => Promise<void>;

export interface RequestOptions<T> {
  timeoutMs?: number;
  /**
   * Called synchronously when the result frame is dispatched, before any later frame of the same
   * socket read. Subscriptions use it to learn their `sub` id before the broker's first `assign`
   * (ws can dispatch several frames of one TCP read without running microtasks in between).
   */
  onResult?: (result: T) => void;
}

interface Pending {
  id: number;
  op: string;
  resolve: (value: never) => void;
  reject: (err: WeirClientError) => void;
  onResult: ((result: never) => void) | undefined;
  timer: ReturnType<typeof setTimeout>;
}

const WS_OPEN = 1;
/** Room for the CBOR envelope around a produce batch (op, id, topic, partition, byte-string header). */
export const FRAME_OVERHEAD_BYTES = 1024;

export class Connection extends Emitter<ConnectionEvents> {
  state: ConnectionState = 'connecting';
  /** The broker's limits from the latest `hello`. */
  hello: HelloResult = {
    version: PROTOCOL_VERSION,
    broker: '',
    maxFrameBytes: Number.MAX_SAFE_INTEGER,
    maxMessageBytes: Number.MAX_SAFE_INTEGER,
    maxInFlightBytes: Number.MAX_SAFE_INTEGER,
    fsync: '',
  };
  reconnects = 0;

  private socket: WebSocketLike | null = null;
  private readonly pending = new Map<number, Pending>();
  private waiting: Array<{ pending: Pending; frame: RequestBody }> = [];
  private readonly subs = new Map<number, PushListener>();
  /** Listeners of pushes that belong to no subscription (feature frames: `matched`, `reply`, `txn_check`). */
  private readonly pushListeners = new Map<string, Set<(frame: Record<string, unknown>) => void>>();
  private readonly reopenSteps: ReopenStep[] = [];
  private nextId = 1;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private closeError: WeirClientError | null = null;
  private lastFrameAt = 0;
  private keepAliveTimer: ReturnType<typeof setInterval> | null = null;
  private pinging = false;
  /** Stops the current socket's message listener (onMessages). */
  private detachMessages: (() => void) | null = null;

  /** Whether consumers on this connection check each record's CRC32C (ClientOptions.checkCrcs). */
  get checkCrcs(): boolean {
    return this.opts.checkCrcs;
  }

  private constructor(private readonly opts: ConnectionOptions) {
    super();
  }

  /** Open the socket and complete `hello`; rejects (without reconnecting) when that fails. */
  static async open(opts: ConnectionOptions): Promise<Connection> {
    const conn = new Connection(opts);
    try {
      await conn.openSocket();
    } catch (err) {
      conn.shutdown(asClientError(err, `could not connect to ${opts.url}`), false);
      throw conn.closeError ?? err;
    }
    if (conn.state !== 'connecting') throw conn.closeError ?? connectionClosedError('closed while connecting', false);
    conn.state = 'open';
    conn.startKeepAlive();
    return conn;
  }

  get url(): string {
    return this.opts.url;
  }

  /** Send a request and await its `result` (rejects with the broker's error, TIMEOUT or CONNECTION_CLOSED). */
  request<T>(frame: RequestBody, options: RequestOptions<T> = {}): Promise<T> {
    return this.enqueue<T>(frame, options, false);
  }

  /** Send a frame that has no answer. Returns false when it was dropped (not connected). */
  notify(frame: NotificationBody): boolean {
    const socket = this.socket;
    if (this.state !== 'open' || !socket || socket.readyState !== WS_OPEN) return false;
    try {
      socket.send(encodeFrame(withId(frame, undefined)));
      return true;
    } catch {
      return false;
    }
  }

  /** Route pushed frames (`deliver`, `assign`, `revoke`, `error` with `sub`) of subscription `sub`. */
  registerSubscription(sub: number, listener: PushListener): void {
    this.subs.set(sub, listener);
  }

  unregisterSubscription(sub: number, listener?: PushListener): void {
    if (listener === undefined || this.subs.get(sub) === listener) this.subs.delete(sub);
  }

  /**
   * Listen to pushed frames of another `op` (features' pushes, e.g. `matched`, `reply`); returns
   * the function that stops listening.
   */
  onPush(op: string, listener: (frame: Record<string, unknown>) => void): () => void {
    let set = this.pushListeners.get(op);
    if (!set) this.pushListeners.set(op, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Run `step` on every socket opened by a reconnect (see ReopenStep); returns the function that removes it. */
  addReopenStep(step: ReopenStep): () => void {
    this.reopenSteps.push(step);
    return () => {
      const i = this.reopenSteps.indexOf(step);
      if (i >= 0) this.reopenSteps.splice(i, 1);
    };
  }

  /** Close gracefully: outstanding requests fail (non-retryable) and the socket closes with 1000. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    const socket = this.socket;
    const closed =
      socket && socket.readyState <= WS_OPEN
        ? new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, 1000);
            socket.onclose = () => {
              clearTimeout(timer);
              resolve();
            };
          })
        : Promise.resolve();
    this.shutdown(connectionClosedError('client closed', false), false);
    await closed;
  }

  /** Close at once: everything outstanding fails with `error` (default CONNECTION_CLOSED). */
  destroy(error?: WeirClientError): void {
    if (this.state === 'closed') return;
    this.shutdown(error ?? connectionClosedError('client destroyed', false), true);
  }

  // ------------------------------------------------------------------------------------ internals

  private enqueue<T>(frame: RequestBody, options: RequestOptions<T>, direct: boolean): Promise<T> {
    if (this.state === 'closed') return Promise.reject(this.closeError ?? connectionClosedError('client closed', false));
    const timeoutMs = options.timeoutMs ?? this.opts.requestTimeoutMs;
    return new Promise<T>((resolve, reject) => {
      const pending: Pending = {
        id: 0,
        op: frame.op,
        resolve: resolve as (value: never) => void,
        reject,
        onResult: options.onResult as ((result: never) => void) | undefined,
        timer: setTimeout(() => {
          if (pending.id !== 0) this.pending.delete(pending.id);
          else this.waiting = this.waiting.filter((w) => w.pending !== pending);
          reject(timeoutError(`${frame.op} request${pending.id ? ` ${pending.id}` : ''}`, timeoutMs));
        }, timeoutMs),
      };
      if (direct || this.state === 'open') this.transmit(pending, frame);
      else this.waiting.push({ pending, frame });
    });
  }

  private transmit(pending: Pending, frame: RequestBody): void {
    const socket = this.socket;
    if (!socket || socket.readyState !== WS_OPEN) {
      this.settle(pending, connectionClosedError('not connected'));
      return;
    }
    const id = this.allocateId();
    pending.id = id;
    let bytes: Uint8Array;
    try {
      bytes = encodeFrame(withId(frame, id));
    } catch (err) {
      this.settle(pending, new WeirClientError(ErrorCode.BAD_REQUEST, `cannot encode ${frame.op}: ${String(err)}`, { retryable: false, cause: err }));
      return;
    }
    // A frame over the broker's limit would close the whole connection (1009): refuse it here.
    if (bytes.length > this.hello.maxFrameBytes) {
      this.settle(
        pending,
        new WeirClientError(ErrorCode.FRAME_TOO_LARGE, `${frame.op} frame of ${bytes.length} bytes exceeds the broker's maxFrameBytes ${this.hello.maxFrameBytes}`, {
          retryable: false,
          details: { frameBytes: bytes.length, maxFrameBytes: this.hello.maxFrameBytes },
        }),
      );
      return;
    }
    this.pending.set(id, pending);
    try {
      socket.send(bytes);
    } catch (err) {
      this.pending.delete(id);
      this.settle(pending, connectionClosedError(`send failed: ${String(err)}`, true, err));
    }
  }

  private settle(pending: Pending, error: WeirClientError): void {
    clearTimeout(pending.timer);
    if (pending.id !== 0) this.pending.delete(pending.id);
    pending.reject(error);
  }

  private allocateId(): number {
    // Unique among outstanding requests; wraps well below 2^32 so it stays a small CBOR uint.
    for (;;) {
      const id = this.nextId;
      this.nextId = id >= 0xffff_fff0 ? 1 : id + 1;
      if (!this.pending.has(id)) return id;
    }
  }

  private async openSocket(): Promise<HelloResult> {
    const { Ctor, nodeWs } = await resolveWebSocket(this.opts.WebSocket);
    const socket = await new Promise<WebSocketLike>((resolve, reject) => {
      let ws: WebSocketLike;
      try {
        ws = nodeWs
          ? new (Ctor as unknown as NodeWsConstructor)(this.opts.url, { perMessageDeflate: false, rejectUnauthorized: true, ...this.opts.tls })
          : new Ctor(this.opts.url);
      } catch (err) {
        reject(connectionClosedError(`cannot open ${this.opts.url}: ${String(err)}`, false, err));
        return;
      }
      // `ws` hands out Buffers (Uint8Array views, no copy); browsers would default to Blob.
      if (!nodeWs) ws.binaryType = 'arraybuffer';
      const timer = setTimeout(() => {
        fail(connectionClosedError(`connecting to ${this.opts.url} timed out after ${this.opts.connectTimeoutMs} ms`));
        try {
          ws.close();
        } catch {
          /* already closing */
        }
      }, this.opts.connectTimeoutMs);
      const fail = (err: WeirClientError): void => {
        clearTimeout(timer);
        ws.onopen = ws.onclose = null;
        // Not null: closing a `ws` socket that is still connecting emits 'error' afterwards, and
        // an 'error' with no listener would be thrown, killing the process.
        ws.onerror = ignore;
        reject(err);
      };
      ws.onopen = () => {
        clearTimeout(timer);
        resolve(ws);
      };
      ws.onerror = (event) => fail(openFailure(this.opts.url, event));
      ws.onclose = (event) => fail(connectionClosedError(`connection to ${this.opts.url} closed while opening (code ${event.code ?? '?'})`));
    });
    if (this.state === 'closed') {
      socket.close(1000, 'client closed');
      throw this.closeError ?? connectionClosedError('client closed', false);
    }
    this.socket = socket;
    this.detachMessages = onMessages(socket, nodeWs, (data) => {
      if (this.socket === socket) this.onData(data);
    });
    socket.onclose = (event) => this.onSocketClose(socket, event);
    this.lastFrameAt = Date.now();
    socket.onerror = () => {
      /* a close event follows */
    };

    const helloFrame: RequestBody = { op: 'hello', version: PROTOCOL_VERSION, client: this.opts.clientName };
    try {
      const token = this.opts.token;
      if (token !== undefined) helloFrame.token = typeof token === 'function' ? await token() : token;
      if (this.opts.user !== undefined) helloFrame.user = this.opts.user;
      if (this.opts.password !== undefined) helloFrame.password = this.opts.password;
      const hello = await this.enqueue<HelloResult>(helloFrame, { timeoutMs: this.opts.connectTimeoutMs }, true);
      this.hello = checkHello(hello);
      return this.hello;
    } catch (err) {
      if (this.socket === socket) this.socket = null;
      socket.onclose = null;
      try {
        socket.close(1000, 'hello failed');
      } catch {
        /* ignore */
      }
      throw err;
    }
  }

  private onData(data: unknown): void {
    this.lastFrameAt = Date.now();
    const bytes = toBytes(data);
    if (!bytes) {
      this.emit('error', badResponse('the broker sent a non-binary WebSocket message'));
      return;
    }
    let frame: unknown;
    try {
      frame = decodeFrame(bytes);
    } catch (err) {
      this.emit('error', badResponse(`undecodable frame from the broker: ${String(err)}`));
      return;
    }
    if (typeof frame !== 'object' || frame === null || typeof (frame as { op?: unknown }).op !== 'string') {
      this.emit('error', badResponse('frame from the broker is not a map with a string op'));
      return;
    }
    const f = frame as { op: string; id?: unknown; sub?: unknown };
    switch (f.op) {
      case 'result': {
        const pending = typeof f.id === 'number' ? this.pending.get(f.id) : undefined;
        if (!pending) return; // answer to a request that timed out: ignore
        this.pending.delete(pending.id);
        clearTimeout(pending.timer);
        if (pending.onResult) {
          try {
            pending.onResult(frame as never);
          } catch (err) {
            pending.reject(asClientError(err, `handling the ${pending.op} result failed`));
            return;
          }
        }
        pending.resolve(frame as never);
        return;
      }
      case 'error': {
        const ef = frame as ErrorFrame;
        const pending = typeof f.id === 'number' ? this.pending.get(f.id) : undefined;
        if (pending) {
          this.pending.delete(pending.id);
          clearTimeout(pending.timer);
          pending.reject(errorFromFrame(ef));
          return;
        }
        if (typeof f.sub === 'number' && this.subs.has(f.sub)) {
          this.subs.get(f.sub)!(ef as ErrorFrame & { sub: number });
          return;
        }
        if (f.id === undefined) this.emit('error', errorFromFrame(ef));
        return;
      }
      case 'deliver':
      case 'assign':
      case 'revoke': {
        // Frames of a subscription this client no longer knows (closed, or of a previous socket) are dropped.
        const listener = typeof f.sub === 'number' ? this.subs.get(f.sub) : undefined;
        listener?.(frame as PushFrame);
        return;
      }
      default: {
        // Unknown pushes are ignored so a newer broker can add frames without breaking old clients.
        const listeners = this.pushListeners.get(f.op);
        if (listeners) for (const l of [...listeners]) l(frame as Record<string, unknown>);
        return;
      }
    }
  }

  private onSocketClose(socket: WebSocketLike, event: { code?: number; reason?: string }): void {
    if (socket !== this.socket) return;
    this.socket = null;
    if (this.state === 'closed') return;
    const details: Record<string, unknown> = { closeCode: event.code, reason: event.reason };
    const error = new WeirClientError(
      ErrorCode.CONNECTION_CLOSED,
      `connection to ${this.opts.url} closed (code ${event.code ?? '?'}${event.reason ? `: ${event.reason}` : ''})`,
      { retryable: true, details },
    );
    this.failPending(error);
    if (this.state === 'open') {
      if (!this.opts.reconnect) {
        this.shutdown(new WeirClientError(ErrorCode.CONNECTION_CLOSED, error.message, { retryable: false, details }), false);
        return;
      }
      this.state = 'reconnecting';
      this.emit('disconnect', error);
      void this.reconnectLoop();
    }
    // 'connecting'/'reconnecting': the hello in flight failed above, and openSocket's caller handles it.
  }

  private async reconnectLoop(): Promise<void> {
    const deadline = Date.now() + this.opts.reconnectForMs;
    for (let attempt = 0; this.state === 'reconnecting'; attempt++) {
      const delay = backoffDelay(attempt, this.opts.reconnectDelayMs, this.opts.reconnectMaxDelayMs);
      await new Promise<void>((resolve) => {
        this.reconnectTimer = setTimeout(resolve, delay);
      });
      this.reconnectTimer = null;
      if (this.state !== 'reconnecting') return;
      try {
        const hello = await this.openSocket();
        if (this.state !== 'reconnecting') return;
        await this.runReopenSteps();
        if (this.state !== 'reconnecting') return;
        this.state = 'open';
        this.reconnects++;
        const waiting = this.waiting;
        this.waiting = [];
        for (const w of waiting) this.transmit(w.pending, w.frame);
        this.emit('reconnect', hello);
        return;
      } catch (err) {
        if (this.state !== 'reconnecting') return;
        const e = asClientError(err, 'reconnect failed');
        if (!e.retryable) {
          // e.g. UNAUTHORIZED or UNSUPPORTED_VERSION: trying again will not help.
          this.shutdown(e, false);
          return;
        }
        if (Date.now() >= deadline) {
          this.shutdown(
            connectionClosedError(`gave up reconnecting to ${this.opts.url} after ${this.opts.reconnectForMs} ms: ${e.message}`, false, e),
            false,
          );
          return;
        }
      }
    }
  }

  private async runReopenSteps(): Promise<void> {
    const socket = this.socket;
    try {
      for (const step of [...this.reopenSteps]) {
        await step(<T>(frame: RequestBody) => this.enqueue<T>(frame, { timeoutMs: this.opts.connectTimeoutMs }, true));
        if (this.state !== 'reconnecting' || this.socket !== socket) throw connectionClosedError('the socket closed while it was being restored');
      }
    } catch (err) {
      // As after a failed hello: abandon this socket, the loop opens another.
      if (socket && this.socket === socket) {
        this.socket = null;
        socket.onclose = null;
        try {
          socket.close(1000, 'restoring the session failed');
        } catch {
          /* ignore */
        }
      }
      throw err;
    }
  }

  /**
   * A socket can die without a close (half-open TCP: a broker host lost, a NAT entry expired); an
   * idle subscriber would never notice. After keepAliveMs without any frame, ping; if that ping
   * gets no answer within keepAliveMs, abandon the socket, which starts a reconnect.
   */
  private startKeepAlive(): void {
    const every = this.opts.keepAliveMs;
    if (!(every > 0) || this.keepAliveTimer) return;
    this.keepAliveTimer = setInterval(() => {
      if (this.state !== 'open' || this.pinging || Date.now() - this.lastFrameAt < every) return;
      const socket = this.socket;
      this.pinging = true;
      this.request({ op: 'ping' }, { timeoutMs: every })
        .catch((err: unknown) => {
          if (err instanceof WeirClientError && err.code === ErrorCode.TIMEOUT && this.socket === socket && socket) {
            this.abandonSocket(socket, 'keep-alive ping got no answer');
          }
        })
        .finally(() => {
          this.pinging = false;
        });
    }, Math.max(1, every / 2));
    (this.keepAliveTimer as { unref?: () => void }).unref?.();
  }

  private abandonSocket(socket: WebSocketLike, reason: string): void {
    this.detachMessages?.();
    this.detachMessages = null;
    socket.onclose = null;
    const terminate = (socket as { terminate?: () => void }).terminate;
    try {
      if (typeof terminate === 'function') terminate.call(socket);
      else socket.close(4000, reason);
    } catch {
      /* already closing */
    }
    this.onSocketClose(socket, { code: 1006, reason });
  }

  private failPending(error: WeirClientError): void {
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) {
      clearTimeout(p.timer);
      p.reject(error);
    }
  }

  private shutdown(error: WeirClientError, hard: boolean): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.closeError = error;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.keepAliveTimer) clearInterval(this.keepAliveTimer);
    this.keepAliveTimer = null;
    this.failPending(error);
    const waiting = this.waiting;
    this.waiting = [];
    for (const w of waiting) {
      clearTimeout(w.pending.timer);
      w.pending.reject(error);
    }
    this.subs.clear();
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      const terminate = (socket as { terminate?: () => void }).terminate;
      try {
        if (hard && typeof terminate === 'function') terminate.call(socket);
        else socket.close(1000, hard ? 'client destroyed' : 'client closed');
      } catch {
        /* already closing */
      }
    }
    this.emit('close', error);
  }
}

// -------------------------------------------------------------------------------- helpers

/** The part of a `ws` WebSocket used beside the WHATWG subset: its own 'message' event. */
interface NodeWsEvents {
  on(event: 'message', listener: (data: unknown) => void): void;
  off(event: 'message', listener: (data: unknown) => void): void;
}

/**
 * Calls `listener` with each message's data; returns what stops it. With `ws`, its own 'message'
 * event: `onmessage` would wrap every message in a MessageEvent, an allocation per frame.
 */
function onMessages(socket: WebSocketLike, nodeWs: boolean, listener: (data: unknown) => void): () => void {
  if (nodeWs) {
    const events = socket as unknown as NodeWsEvents;
    events.on('message', listener);
    return () => events.off('message', listener);
  }
  socket.onmessage = (event) => listener(event.data);
  return () => {
    socket.onmessage = null;
  };
}

type NodeWsConstructor = new (url: string, options: { perMessageDeflate: boolean } & ClientTlsOptions) => WebSocketLike;

const ignore = (): void => undefined;

// A variable specifier keeps browser bundlers from pulling `ws` in; Node resolves it at run time.
const WS_MODULE = 'ws';
let nodeWsPromise: Promise<WebSocketConstructor | null> | null = null;

/**
 * Which WebSocket to use: the `WebSocket` option; else in Node the `ws` package (imported lazily,
 * with `perMessageDeflate: false`), even where Node has a global WebSocket (ws is faster and hands
 * out Buffers without a copy); else the global `WebSocket` (browsers, Deno, workers).
 */
async function resolveWebSocket(option: WebSocketConstructor | undefined): Promise<{ Ctor: WebSocketConstructor; nodeWs: boolean }> {
  if (option) return { Ctor: option, nodeWs: false };
  const g = globalThis as { WebSocket?: WebSocketConstructor; process?: { versions?: { node?: string } } };
  const inNode = typeof g.process?.versions?.node === 'string';
  if (inNode || !g.WebSocket) {
    nodeWsPromise ??= import(/* @vite-ignore */ WS_MODULE).then(
      (mod: { WebSocket?: WebSocketConstructor; default?: WebSocketConstructor }) => mod.WebSocket ?? mod.default ?? null,
      () => null,
    );
    const ws = await nodeWsPromise;
    if (ws) return { Ctor: ws, nodeWs: true };
  }
  if (g.WebSocket) return { Ctor: g.WebSocket, nodeWs: false };
  throw connectionClosedError('no WebSocket implementation: install the "ws" package or pass options.WebSocket', false);
}

/** The frame with `id` set and undefined fields left out (CBOR would encode them as `undefined`). */
function withId(frame: object, id: number | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const f = frame as Record<string, unknown>;
  // for…in rather than Object.entries: no [key, value] array per field on every request.
  for (const k in f) {
    const v = f[k];
    if (v !== undefined) out[k] = v;
  }
  if (id !== undefined) out.id = id;
  return out;
}

function toBytes(data: unknown): Uint8Array | null {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (Array.isArray(data) && data.every((d) => d instanceof Uint8Array)) {
    // ws 'fragments' binaryType
    const parts = data as Uint8Array[];
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
  return null;
}

function checkHello(h: HelloResult): HelloResult {
  const num = (v: unknown, name: string): number => {
    if (typeof v !== 'number' || !(v > 0)) throw badResponse(`hello result has no valid ${name}`, { field: name });
    return v;
  };
  return {
    version: typeof h.version === 'number' ? h.version : PROTOCOL_VERSION,
    broker: typeof h.broker === 'string' ? h.broker : '',
    maxFrameBytes: num(h.maxFrameBytes, 'maxFrameBytes'),
    maxMessageBytes: num(h.maxMessageBytes, 'maxMessageBytes'),
    maxInFlightBytes: num(h.maxInFlightBytes, 'maxInFlightBytes'),
    fsync: typeof h.fsync === 'string' ? h.fsync : '',
  };
}

/**
 * Node's codes of a TLS peer that cannot be trusted (tls.connect, from OpenSSL's X509 errors): not
 * worth retrying, and the fix is on this side.
 */
const UNTRUSTED_CERT_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
]);

/** The error of a socket that failed to open; one whose broker's certificate is not trusted says what to do. */
function openFailure(url: string, event: unknown): WeirClientError {
  const code = (event as { error?: { code?: unknown } } | null)?.error?.code;
  if (typeof code === 'string' && UNTRUSTED_CERT_CODES.has(code)) {
    return connectionClosedError(
      `cannot connect to ${url}: the broker's TLS certificate is not trusted (${code}: ${describeEvent(event)}); ` +
        `if the broker uses a private CA, pass its certificate as tls.ca (CLI: --ca FILE or WEIR_CA)`,
      false,
      (event as { error?: unknown }).error,
    );
  }
  return connectionClosedError(`cannot connect to ${url}: ${describeEvent(event)}`);
}

function describeEvent(event: unknown): string {
  const e = event as { message?: unknown; error?: { message?: unknown } } | null;
  if (e && typeof e.message === 'string') return e.message;
  if (e && e.error && typeof e.error.message === 'string') return e.error.message;
  return 'WebSocket error';
}

export function asClientError(err: unknown, context: string): WeirClientError {
  if (err instanceof WeirClientError) return err;
  return new WeirClientError(ErrorCode.INTERNAL, `${context}: ${err instanceof Error ? err.message : String(err)}`, { retryable: false, cause: err });
}
