/**
 * What the broker core and the messaging features know of a client: a session. A front door (the
 * WebSocket gateway today; an HTTP admin door and a Kafka door later) opens one per client
 * connection and implements how frames reach it. The identity of the principal behind it belongs
 * here once the security issue lands.
 */
export interface Session {
  /** Unique per front door and process run. */
  readonly id: number;
  /** The client is gone: nothing more is sent to it. */
  readonly closed: boolean;
}

/** A decoded protocol frame (docs/protocol.md): a map of fields. */
export type Frame = Record<string, unknown>;
