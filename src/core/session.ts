/**
 * A client of the broker, as the core and the messaging features know it: a session. A front door
 * (the WebSocket gateway today; an HTTP admin door and a Kafka door later) opens one per client
 * connection (BrokerCore.openSession) with a port that says how frames reach the client and how
 * much the front door holds for it unsent. Its principal (who the client is) and grants (what it
 * may do) are set when it opens (authentication off: the anonymous principal) or by `hello`.
 */
import { WeirError } from '../common/errors.js';
import { ErrorCode } from '../protocol/codes.js';
import type { Grants, Principal } from '../security/index.js';

/** A decoded protocol frame (docs/protocol.md): a map of fields. */
export type Frame = Record<string, unknown>;

/** One partition's share of a produce answer: [partition, first offset, count]. */
export type ProducePart = [number, number, number];

/** What a front door implements per client. Frames are sent in the order given. */
export interface SessionPort {
  /** Queue a frame, sent with the rest of this turn's frames; encoded now (its byte strings may be views of memory that changes). */
  send(frame: Frame): void;
  /** Send at once (after what is already queued): for frames a client waits on to make progress. */
  sendNow(frame: Frame): void;
  /** Queue a `deliver` frame of a subscription; `records` is valid only during the call. */
  deliver(sub: number, topic: string, partition: number, count: number, next: number, records: Uint8Array): void;
  /** Queue the answer of produce request `id`. */
  answerProduce(id: number, parts: ProducePart[], route: Uint8Array | undefined): void;
  /** Bytes held for this client and not yet taken by it (flow control compares them with maxBufferedBytes). */
  unsentBytes(): number;
  /** Close the client's connection with a code and reason (a slow consumer, an expired token). */
  close(code: number, reason: string): void;
  /** The client's network address as the front door sees it (failed authentications are limited per address). */
  remoteAddress(): string;
}

/** What one session may hold at once (CoreConfig), so that one client cannot take the broker's memory. */
export interface SessionLimits {
  /** Subscriptions (topic, pattern and queue subscriptions; a pattern's topics not counted). */
  readonly maxSubscriptions: number;
  /** Requests taken and not yet answered (produces, fetches, and every request answered later). */
  readonly maxInFlightRequests: number;
}

export const NO_SESSION_LIMITS: SessionLimits = Object.freeze({ maxSubscriptions: Infinity, maxInFlightRequests: Infinity });

export class Session {
  closed = false;
  /** `hello` answered. */
  helloDone = false;
  /** Who the client is; null until `hello` authenticates it when the broker requires authentication. */
  principal: Principal | null = null;
  /** The principal's permissions, compiled once and asked per request; null while `principal` is. */
  grants: Grants | null = null;
  /** A `hello` is authenticating (another one is refused meanwhile). */
  authenticating = false;
  /** Closes the session when its principal's credential expires (cleared at close). */
  expiryTimer: ReturnType<typeof setTimeout> | null = null;
  /** Produce bytes in flight (the per-session budget, maxInFlightBytes). */
  inFlightBytes = 0;
  /** Bytes one-shot `fetch` answers not yet sent may take (their maxBytes): counted against maxBufferedBytes. */
  fetchBytes = 0;
  /** A cursor stopped because the client was over its bound: pump them all once it is not. */
  deliveryPaused = false;
  /** Deliveries held back until this timer fires: the principal is over its consume byte rate. */
  deliveryHold: ReturnType<typeof setTimeout> | null = null;
  /** The principal's name counted in the per-principal connection limit (released at close). */
  countedPrincipal: string | null = null;
  /** When the session was first seen over its bound (0: not over): the slow-consumer clock. */
  overSince = 0;
  nextSub = 1;
  /** Subscriptions held (admitSubscription, releaseSubscription). */
  subscriptions = 0;
  /** Requests taken and not yet answered (see SessionLimits.maxInFlightRequests). */
  inFlightRequests = 0;

  constructor(
    /** Unique per process run. */
    readonly id: number,
    readonly port: SessionPort,
    readonly limits: SessionLimits = NO_SESSION_LIMITS,
  ) {}

  /** Count one more subscription, or refuse it (RESOURCE_LIMIT) when the session holds its maximum. */
  admitSubscription(): void {
    if (this.subscriptions >= this.limits.maxSubscriptions) {
      throw new WeirError(ErrorCode.RESOURCE_LIMIT, `this connection holds ${this.subscriptions} subscriptions, its limit; unsubscribe one first`, {
        retryable: true,
        details: { limit: 'subscriptions', max: this.limits.maxSubscriptions },
      });
    }
    this.subscriptions++;
  }

  releaseSubscription(): void {
    if (this.subscriptions > 0) this.subscriptions--;
  }

  /** Refuse a request (RESOURCE_LIMIT, retryable) while the session has its maximum of requests unanswered. */
  checkInFlightRequests(): void {
    if (this.inFlightRequests >= this.limits.maxInFlightRequests) {
      throw new WeirError(ErrorCode.RESOURCE_LIMIT, `this connection has ${this.inFlightRequests} requests unanswered, its limit; wait for their answers`, {
        retryable: true,
        details: { limit: 'inFlightRequests', max: this.limits.maxInFlightRequests },
      });
    }
  }
}
