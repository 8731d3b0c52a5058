/**
 * A WebSocket for the SDK's `WebSocket` option that the test can make lose answers: it wraps a real
 * `ws` socket to a real broker; with `swallow` on, frames from the broker are dropped (the broker
 * did the work, the client never hears of it), and `drop()` cuts the connection like a network
 * failure (the SDK reconnects with a new FlakySocket). `redirect` sends new sockets to another URL,
 * e.g. a broker restarted on a new port (an old port can stay blocked by TIME_WAIT for a minute).
 * `pause()` stops reading the socket, like a stalled client process.
 */
import WebSocket from 'ws';
import type { WebSocketConstructor, WebSocketLike } from '../../src/client/index.js';

export interface FlakyControl {
  /** Every socket the SDK opened, latest last. */
  sockets: FlakySocketLike[];
  readonly current: FlakySocketLike;
  Ctor: WebSocketConstructor;
  /** Connect new sockets here instead of the SDK's URL (a broker restarted on another port). */
  redirect: string | undefined;
}

export interface FlakySocketLike extends WebSocketLike {
  swallow: boolean;
  swallowed: number;
  drop(): void;
  /** Stop reading the socket (as a stalled process would): the broker's unsent bytes pile up. */
  pause(): void;
  resume(): void;
}

export function flakySockets(): FlakyControl {
  const sockets: FlakySocketLike[] = [];
  const control = {} as FlakyControl;
  class FlakySocket implements FlakySocketLike {
    swallow = false;
    swallowed = 0;
    onopen: ((event: unknown) => void) | null = null;
    onmessage: ((event: { data: unknown }) => void) | null = null;
    onclose: ((event: { code?: number; reason?: string }) => void) | null = null;
    onerror: ((event: unknown) => void) | null = null;
    private readonly ws: WebSocket;
    constructor(url: string) {
      this.ws = new WebSocket(control.redirect ?? url, { perMessageDeflate: false });
      this.ws.binaryType = 'arraybuffer';
      this.ws.onopen = (e) => this.onopen?.(e);
      this.ws.onmessage = (e) => {
        if (this.swallow) this.swallowed++;
        else this.onmessage?.({ data: e.data });
      };
      this.ws.onclose = (e) => this.onclose?.({ code: e.code, reason: e.reason });
      this.ws.onerror = (e) => this.onerror?.(e);
      sockets.push(this);
    }
    get binaryType(): string {
      return this.ws.binaryType;
    }
    set binaryType(v: string) {
      this.ws.binaryType = v as 'arraybuffer';
    }
    get readyState(): number {
      return this.ws.readyState;
    }
    get bufferedAmount(): number {
      return this.ws.bufferedAmount;
    }
    send(data: Uint8Array): void {
      this.ws.send(data);
    }
    close(code?: number, reason?: string): void {
      this.ws.close(code, reason);
    }
    drop(): void {
      this.ws.terminate();
    }
    pause(): void {
      this.ws.pause();
    }
    resume(): void {
      this.ws.resume();
    }
  }
  Object.defineProperties(control, {
    sockets: { value: sockets },
    current: { get: () => sockets[sockets.length - 1]! },
    Ctor: { value: FlakySocket },
    redirect: { value: undefined, writable: true },
  });
  return control;
}
