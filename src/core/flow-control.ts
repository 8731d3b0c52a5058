/**
 * The bound on what the broker holds for a client: a session's unsent bytes (its front door's
 * buffer plus frames queued this turn) stay within maxBufferedBytes (+ one frame). Deliveries stop
 * above it and resume when the client has taken them (drained); a session that stays above it for
 * slowConsumerCloseMs is closed with 1008 SLOW_CONSUMER (the SDK resumes from its offset).
 */
import { channels } from '../common/diagnostics.js';
import { ErrorCode } from '../protocol/codes.js';
import type { Session } from './session.js';

export interface FlowControlConfig {
  maxBufferedBytes: number;
  slowConsumerCloseMs: number;
}

export class FlowControl {
  /** Sessions seen over their bound, for checkSlowConsumers. */
  private readonly over = new Set<Session>();
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly config: FlowControlConfig) {}

  /** Whether the session is over maxBufferedBytes (then its slow-consumer clock runs). */
  overBound(session: Session): boolean {
    if (session.port.unsentBytes() <= this.config.maxBufferedBytes) return false;
    this.noteOverBound(session);
    return true;
  }

  /** Start the session's slow-consumer clock (if it is not running already). */
  noteOverBound(session: Session): void {
    if (session.overSince !== 0 || session.closed) return;
    session.overSince = Date.now();
    this.over.add(session);
    if (this.timer === null) {
      const every = Math.max(10, Math.min(1000, Math.floor(this.config.slowConsumerCloseMs / 4)));
      this.timer = setInterval(this.checkSlowConsumers, every);
      this.timer.unref();
    }
  }

  /** The client took what was buffered (the front door's drain): true when it is back under its bound. */
  drained(session: Session): boolean {
    if (session.port.unsentBytes() > this.config.maxBufferedBytes) return false;
    session.overSince = 0;
    return true;
  }

  forget(session: Session): void {
    this.over.delete(session);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * Sessions seen over their bound: forget those back under it, close those over it for
   * slowConsumerCloseMs. Only a client that (nearly) stopped reading gets there: one that reads
   * even slowly drops under the bound with each frame it takes, and its drain resets it.
   */
  private readonly checkSlowConsumers = (): void => {
    const now = Date.now();
    const bound = this.config.maxBufferedBytes;
    for (const session of this.over) {
      const bytes = session.closed ? 0 : session.port.unsentBytes();
      if (bytes <= bound) {
        session.overSince = 0;
        this.over.delete(session);
        continue;
      }
      const overMs = now - session.overSince;
      if (overMs < this.config.slowConsumerCloseMs) continue;
      if (channels.gatewaySlowConsumer.hasSubscribers) channels.gatewaySlowConsumer.publish({ conn: session.id, bufferedBytes: bytes, overMs });
      // The close frame goes after what is buffered; the front door closes the session at once
      // (which forgets it and its subscriptions) and drops the socket if the client never reads it.
      session.port.close(1008, `${ErrorCode.SLOW_CONSUMER}: ${bytes} bytes unsent for ${overMs} ms (limit ${bound})`);
    }
    if (this.over.size === 0 && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  };
}
