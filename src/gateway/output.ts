/**
 * The gateway's output: every frame queued during a turn is sent at its end, one corked write per
 * connection, after the core has flushed the partition actors (Turn.onEnd). Deliver frames and
 * produce answers are encoded into a per-turn arena that is reused once they are sent.
 */
import { Buffer } from 'node:buffer';
import { TurnSet } from '../common/turn-set.js';
import type { Turn } from '../core/turn.js';
import { FrameArena } from './frame-arena.js';
import type { WebSocket } from 'uWebSockets.js';
import type { TurnMember } from '../common/turn-set.js';
import type { Session } from '../core/session.js';
import type { Outbox } from './outbox.js';

/** What the output needs of a connection (connection.ts). */
export interface Connection extends TurnMember {
  readonly outbox: Outbox;
  readonly ws: WebSocket<unknown>;
  readonly closed: boolean;
  readonly session: Session;
}

/** Deliver frames of one turn share this much reused memory; beyond it they get their own buffers. */
const FRAME_ARENA_BYTES = 8 << 20;
/** A connection's bits in the Output's TurnSets. */
const DELIVERIES = 1;
const ANSWERS = 2;

export class Output {
  private readonly dirty = new TurnSet<Connection>(ANSWERS);
  /**
   * Connections given a deliver frame this turn: flushed before the rest (acks, answers). A
   * consumer's socket write and wake-up then start before the producer's ack, which shortens the
   * end-to-end latency and costs the ack nothing measurable (docs/performance.md).
   */
  private readonly dirtyDeliveries = new TurnSet<Connection>(DELIVERIES);
  /** The connection sendCorked() sends from, and how many of its frames. */
  private corking: Connection | null = null;
  private corkCount = 0;
  /** Memory for this turn's deliver frames (up to maxFetchBytes of records each) and produce answers; reset once they are sent. */
  private readonly frameArena = new FrameArena(FRAME_ARENA_BYTES);
  readonly frameMemory = (bytes: number): Uint8Array => this.frameArena.take(bytes) ?? Buffer.allocUnsafe(bytes);

  constructor(
    private readonly turn: Turn,
    /** After a connection's frames were sent: the client may be back under its bound (the core resumes its deliveries). */
    private readonly sent: (conn: Connection) => void,
  ) {
    turn.onEnd(() => this.flush());
  }

  /** Queue an encoded frame (not a view of memory that changes before the end of the turn). */
  queue(conn: Connection, bytes: Uint8Array, delivery: boolean): void {
    conn.outbox.push(bytes);
    (delivery ? this.dirtyDeliveries : this.dirty).add(conn);
    this.turn.schedule();
  }

  /** Send every queued frame now. */
  flush(): void {
    const framesTaken = this.frameArena.used;
    // A connection in both sets is sent once, with its frames in the order they were queued.
    this.dirtyDeliveries.drain(this.sendOutboxOf);
    this.dirty.drain(this.sendOutboxOf);
    // Every queued frame is sent (copied by uWS) or dropped with its connection: reuse their memory,
    // unless a frame was taken while sending (then it waits in an outbox for the next flush).
    if (this.frameArena.used === framesTaken) this.frameArena.reset();
  }

  private readonly sendOutboxOf = (conn: Connection): void => this.sendOutbox(conn);

  /** Send every frame queued for `conn`, corked together. */
  sendOutbox(conn: Connection): void {
    const n = conn.outbox.length;
    if (conn.closed || n === 0) return;
    // uWS corks a lone send itself: no call back into JavaScript for one frame.
    if (n === 1) conn.ws.send(conn.outbox.at(0), true);
    else {
      this.corking = conn;
      this.corkCount = n;
      conn.ws.cork(this.sendCorked);
      this.corking = null;
    }
    // A send over the backpressure limit closes the socket at once (its close emptied the outbox).
    if (conn.closed) return;
    conn.outbox.dropFirst(n);
    // Deliveries paused while this turn's frames were still queued here: the socket may have taken
    // them all, and then no drain event would come to resume them.
    if (conn.session.deliveryPaused) this.sent(conn);
  }

  private readonly sendCorked = (): void => {
    const conn = this.corking!;
    for (let i = 0; i < this.corkCount && !conn.closed; i++) conn.ws.send(conn.outbox.at(i), true);
  };
}
