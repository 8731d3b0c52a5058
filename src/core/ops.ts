/**
 * The op table: every request a client can send (docs/protocol.md), the core's built-in ops and the
 * features' alike, as one kind of entry. The core dispatches a frame by one lookup in it, and what
 * is common to every op (the request id, refusal while the broker stops, the permission it needs)
 * is declared here per op and applied in one place (BrokerCore.dispatch), not in each handler.
 */
import type { Action } from '../security/permissions.js';
import type { Frame, Session } from './session.js';

/**
 * Which field of a request names the resource a permission is checked on: `topic` (f.topic),
 * `group` (f.group), `producerGroup` (f.producerGroup: a transaction's producer group) or
 * `broker` (nothing: the broker itself, for `admin`).
 */
export type ResourceField = 'topic' | 'group' | 'producerGroup' | 'broker';

/**
 * Names the resource from what the session holds, for requests that name it indirectly (a
 * subscription id → its group, a transaction number → its producer group). Undefined: the request
 * names none (the handler then refuses it as malformed or unknown).
 */
export type ResourceResolver = (session: Session, frame: Frame) => string | undefined;

/**
 * A permission an op needs: `action` (security/permissions.ts ACTIONS) on the resource named by
 * `from`. A request that names no such resource is not checked for it (`subscribe` without a
 * group), unless `ifAbsent` is `deny`: then it is FORBIDDEN while authentication is on.
 */
export interface Access {
  readonly action: Action;
  readonly from: ResourceField | ResourceResolver;
  readonly ifAbsent?: 'skip' | 'deny';
}

/**
 * What an op needs of the session: every permission of the list (`subscribe`: consume the topic
 * and, when it names a group, join it); `session`: only to be authenticated (ops on the session's
 * own subscriptions and inboxes, `ping`); `none`: nothing (`hello`, which authenticates).
 */
export type OpAccess = readonly [Access, ...Access[]] | 'session' | 'none';

/** Handles a request that carries an id (to answer it with). */
export type RequestHandler = (session: Session, id: number, frame: Frame) => Promise<void> | void;
/** Handles a frame whose `id` may be absent (then it is not answered, or answered on its subscription). */
export type OpHandler = (session: Session, id: number | undefined, frame: Frame) => Promise<void> | void;

interface OpSpecCommon {
  /** The frame's `op`. */
  readonly op: string;
  /** The permissions it needs, checked by BrokerCore.dispatch before the handler runs. */
  readonly access: OpAccess;
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

/** The name of the resource `access` is checked on in request `f` of `session`; undefined: it names none. */
export function resourceOf(access: Access, session: Session, f: Frame): string | undefined {
  switch (access.from) {
    case 'topic':
      return typeof f.topic === 'string' ? f.topic : undefined;
    case 'group':
      return typeof f.group === 'string' ? f.group : undefined;
    case 'producerGroup':
      return typeof f.producerGroup === 'string' ? f.producerGroup : undefined;
    case 'broker':
      return '';
    default:
      return access.from(session, f);
  }
}
