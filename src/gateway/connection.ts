/**
 * One WebSocket client of the gateway: the port through which the broker core reaches it. Frames
 * are CBOR-encoded as they are queued (the core may hand over views of the partitions' rings) and
 * wait in the connection's outbox for the end of the turn, when the gateway sends them corked.
 */
import type { WebSocket } from 'uWebSockets.js';
import type { TurnMember } from '../common/turn-set.js';
import { encodeFrame } from '../protocol/cbor.js';
import type { Frame, ProducePart, Session, SessionPort } from '../core/session.js';
import { encodeDeliverFrame } from './deliver-frame.js';
import { Outbox } from './outbox.js';
import { encodeProduceResult } from './result-frame.js';
import type { Output } from './output.js';

export interface ConnData {
  conn?: Connection;
  /** The client's address as its connections are counted (addressKey). */
  address?: string;
}

export class Connection implements SessionPort, TurnMember {
  /** Encoded frames waiting for the end of this turn, sent corked together. */
  readonly outbox = new Outbox();
  /** The gateway's TurnSets this connection is in (Output's). */
  turnMarks = 0;
  /** The core's session of this client (set right after the connection is made). */
  session!: Session;
  closed = false;
  /** The client's address, read while the socket is open (uWS refuses calls on a closed one). */
  private readonly address: string;

  constructor(
    readonly ws: WebSocket<ConnData>,
    private readonly output: Output,
  ) {
    this.address = Buffer.from(ws.getRemoteAddressAsText()).toString();
  }

  send(frame: Frame): void {
    if (this.closed) return;
    this.output.queue(this, encodeFrame(frame), false);
  }

  sendNow(frame: Frame): void {
    if (this.closed) return;
    this.outbox.push(encodeFrame(frame));
    this.output.sendOutbox(this);
  }

  deliver(sub: number, topic: string, partition: number, count: number, next: number, records: Uint8Array): void {
    if (this.closed) return;
    this.output.queue(this, encodeDeliverFrame({ sub, topic, partition, count, next }, records, this.output.frameMemory), true);
  }

  answerProduce(id: number, parts: ProducePart[], route: Uint8Array | undefined): void {
    if (this.closed) return;
    this.output.queue(this, encodeProduceResult(id, parts, route, this.output.frameMemory), false);
  }

  /** uWS's unsent buffer plus frames queued this turn. */
  unsentBytes(): number {
    return this.closed ? 0 : this.ws.getBufferedAmount() + this.outbox.bytes();
  }

  close(code: number, reason: string): void {
    if (!this.closed) this.ws.end(code, reason);
  }

  remoteAddress(): string {
    return this.address;
  }
}
