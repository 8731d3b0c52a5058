/**
 * The op table: every request a client can send (docs/protocol.md), the core's built-in ops and the
 * features' alike, as one kind of entry. The core dispatches a frame by one lookup in it, and what
 * is common to every op (the request id, refusal while the broker stops, the permission it needs)
 * is declared here per op and applied in one place (BrokerCore.dispatch), not in each handler.
 */
import type { Frame, Session } from './session.js';

/** What an op does to a resource, as a permission names it. */
export const ACCESS_ACTIONS = [
  'connect',
  'describe',
  'create',
  'alter',
  'produce',
  'consume',
  'join',
  'commit',
  'reset',
  'ack',
  'nack',
  'redrive',
  'request',
  'respond',
  'transact',
] as const;
export type AccessAction = (typeof ACCESS_ACTIONS)[number];

/**
 * The kinds of resource an op acts on; the request names which one (its `topic`, `group`, …).
 * - `broker`: the broker itself (`hello` authenticates; `ping`).
 * - `topic`, `group` (a consumer or queue group), `producer_group` (transactions), `producer_id`, `inbox`.
 * - `subscription`: one of the session's own subscriptions, whose topic and group were checked when
 *   it was opened.
 */
export const ACCESS_RESOURCES = ['broker', 'topic', 'group', 'producer_group', 'producer_id', 'inbox', 'subscription'] as const;
export type AccessResource = (typeof ACCESS_RESOURCES)[number];

/**
 * A permission an op needs: `action` on the `resource` of that kind the request names. An op lists
 * every one it needs (`subscribe`: consume the topic and, when it names a group, join the group).
 * Declared now, enforced by the security issue.
 */
export interface Access {
  readonly action: AccessAction;
  readonly resource: AccessResource;
}

/** Handles a request that carries an id (to answer it with). */
export type RequestHandler = (session: Session, id: number, frame: Frame) => Promise<void> | void;
/** Handles a frame whose `id` may be absent (then it is not answered, or answered on its subscription). */
export type OpHandler = (session: Session, id: number | undefined, frame: Frame) => Promise<void> | void;

interface OpSpecCommon {
  /** The frame's `op`. */
  readonly op: string;
  /** The permissions it needs (at least one; `connect` on `broker` for what every session may do). */
  readonly access: readonly [Access, ...Access[]];
  /**
   * Once the broker stops accepting (BrokerCore.stopAccepting): `refuse` answers SHUTTING_DOWN
   * (retryable) before the handler runs; `serve` runs it as usual.
   */
  readonly whenStopping: 'refuse' | 'serve';
}

/** An op whose frame must carry a request `id` (BAD_REQUEST naming the op if it has none). */
export interface OpSpecWithId extends OpSpecCommon {
  readonly requestId: 'required';
  readonly handler: RequestHandler;
}

/** An op whose frame may omit `id` (it is then not answered, or answered on its subscription). */
export interface OpSpecIdOptional extends OpSpecCommon {
  readonly requestId: 'optional';
  readonly handler: OpHandler;
}

/** One entry of the op table. */
export type OpSpec = OpSpecWithId | OpSpecIdOptional;

/** The ops a core serves, by name. */
export class OpTable {
  private readonly specs = new Map<string, OpSpec>();

  /** Add an op; an op name is served by one entry only (a feature cannot replace another's, nor a built-in). */
  add(spec: OpSpec): void {
    if (this.specs.has(spec.op)) throw new Error(`op ${spec.op} registered twice`);
    this.specs.set(spec.op, spec);
  }

  get(op: string): OpSpec | undefined {
    return this.specs.get(op);
  }

  /** Every entry, in the order added. */
  list(): OpSpec[] {
    return [...this.specs.values()];
  }
}
