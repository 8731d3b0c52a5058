/**
 * Reply inboxes (request-reply): a name like `_INBOX.<random>` bound to one live connection, as
 * with NATS inboxes or RabbitMQ's direct reply-to. Replies to an inbox are pushed to its owner and
 * never stored, so an inbox lives exactly as long as its connection. Pure: names come from an
 * injected generator, owners are opaque.
 */

export const INBOX_PREFIX = '_INBOX.';
export const INBOX_NAME = /^_INBOX\.[A-Za-z0-9_-]{8,64}$/;
/** Inboxes one connection may hold: a client needs one; the bound keeps a buggy one from growing the map. */
export const MAX_INBOXES_PER_OWNER = 16;

export type InboxClaim<O> = { ok: true; name: string } | { ok: false; reason: 'INVALID_NAME' | 'TAKEN' | 'TOO_MANY'; owner?: O };

export class InboxRegistry<O> {
  private readonly byName = new Map<string, O>();
  private readonly byOwner = new Map<O, Set<string>>();

  constructor(private readonly randomName: () => string) {}

  /** Bind a new inbox (or `wanted`, if it is free or already this owner's) to `owner`. */
  claim(owner: O, wanted?: string): InboxClaim<O> {
    const names = this.byOwner.get(owner);
    if (wanted !== undefined) {
      if (!INBOX_NAME.test(wanted)) return { ok: false, reason: 'INVALID_NAME' };
      const current = this.byName.get(wanted);
      if (current === owner) return { ok: true, name: wanted };
      if (current !== undefined) return { ok: false, reason: 'TAKEN' };
    }
    if ((names?.size ?? 0) >= MAX_INBOXES_PER_OWNER) return { ok: false, reason: 'TOO_MANY' };
    let name = wanted;
    while (name === undefined || this.byName.has(name)) name = INBOX_PREFIX + this.randomName();
    this.byName.set(name, owner);
    if (names) names.add(name);
    else this.byOwner.set(owner, new Set([name]));
    return { ok: true, name };
  }

  owner(name: string): O | undefined {
    return this.byName.get(name);
  }

  /** The owner went away: every inbox of it is gone (later replies get NO_REPLY_INBOX). */
  dropOwner(owner: O): void {
    const names = this.byOwner.get(owner);
    if (!names) return;
    for (const n of names) this.byName.delete(n);
    this.byOwner.delete(owner);
  }

  get size(): number {
    return this.byName.size;
  }
}
