/**
 * Consumer groups: the members of a group share the partitions of one topic. Rebalancing is
 * eager (Kafka's classic protocol): on a join or leave every owning member is asked to `revoke`
 * (stop, commit what it processed, answer `revoked`); once no member owns a partition the new
 * assignment goes out, each partition starting at the group's committed offset. So a partition is
 * never delivered to two members at once, and nothing processed-and-committed is delivered again.
 * A member that does not answer within `revokeTimeoutMs` is treated as having revoked (its
 * uncommitted messages are delivered again: at-least-once).
 *
 * This class holds the state and decisions; the gateway implements GroupMember (the IO).
 */
import { assignRange } from './assignment.js';

export interface GroupMember {
  readonly memberId: string;
  /** Stop delivering every partition of this member and ask the client to revoke. */
  revoke(generation: number): void;
  /** Take ownership of `partitions` (possibly none) as of `generation`. */
  assign(generation: number, partitions: number[]): void;
}

interface MemberState {
  member: GroupMember;
  owned: number[];
  /** Generation of the revoke we are waiting for an answer to, or 0. */
  revoking: number;
}

interface Group {
  name: string;
  topic: string;
  partitions: number;
  generation: number;
  members: Map<string, MemberState>;
  timer: ReturnType<typeof setTimeout> | null;
  /** Offset resets (replay) to apply once every member stopped, before the next assignment. */
  resets: Array<() => void>;
}

export class GroupCoordinator {
  private readonly groups = new Map<string, Group>();

  constructor(private readonly revokeTimeoutMs = 10_000) {}

  join(name: string, topic: string, partitions: number, member: GroupMember): void {
    const k = `${name}\u0000${topic}`;
    let g = this.groups.get(k);
    if (!g) {
      g = { name, topic, partitions, generation: 0, members: new Map(), timer: null, resets: [] };
      this.groups.set(k, g);
    }
    g.members.set(member.memberId, { member, owned: [], revoking: 0 });
    this.rebalance(g);
  }

  leave(name: string, topic: string, memberId: string): void {
    const g = this.groups.get(`${name}\u0000${topic}`);
    if (!g || !g.members.delete(memberId)) return;
    if (g.members.size === 0) {
      if (g.timer) clearTimeout(g.timer);
      for (const apply of g.resets.splice(0)) apply(); // a reset waiting for the last member
      this.groups.delete(`${name}\u0000${topic}`);
      return;
    }
    this.rebalance(g);
  }

  /**
   * The member stopped and committed. Only the answer to the latest revoke it was sent counts: a late
   * answer to an older one must not wipe an assignment made since.
   */
  revoked(name: string, topic: string, memberId: string, generation: number): void {
    const g = this.groups.get(`${name}\u0000${topic}`);
    const m = g?.members.get(memberId);
    if (!g || !m || m.revoking === 0 || generation !== m.revoking) return;
    m.owned = [];
    m.revoking = 0;
    this.assignIfQuiet(g);
  }

  /** True while the member may commit this partition (owned, or being revoked from it). */
  owns(name: string, topic: string, memberId: string, partition: number): boolean {
    return this.groups.get(`${name}\u0000${topic}`)?.members.get(memberId)?.owned.includes(partition) ?? false;
  }

  /**
   * Replay: rebalance the group, and once every member has stopped (and committed what it had
   * processed, which the reset then overrides) run `apply`, which stores the new offsets; the
   * assignment that follows starts every member from them. Returns false when the group has no
   * live member: the caller stores the offsets itself.
   */
  reset(name: string, topic: string, apply: () => void): boolean {
    const g = this.groups.get(`${name}\u0000${topic}`);
    if (!g) return false;
    g.resets.push(apply);
    this.rebalance(g);
    return true;
  }

  generation(name: string, topic: string): number {
    return this.groups.get(`${name}\u0000${topic}`)?.generation ?? 0;
  }

  close(): void {
    for (const g of this.groups.values()) if (g.timer) clearTimeout(g.timer);
    this.groups.clear();
  }

  private rebalance(g: Group): void {
    g.generation++;
    for (const m of g.members.values()) {
      if (m.owned.length > 0) {
        m.revoking = g.generation;
        m.member.revoke(g.generation);
      }
    }
    if (g.timer) clearTimeout(g.timer);
    g.timer = null;
    if (!this.assignIfQuiet(g)) {
      const generation = g.generation;
      g.timer = setTimeout(() => {
        g.timer = null;
        if (g.generation !== generation) return;
        for (const m of g.members.values()) if (m.revoking) { m.owned = []; m.revoking = 0; }
        this.assignIfQuiet(g);
      }, this.revokeTimeoutMs);
      g.timer.unref?.();
    }
  }

  private assignIfQuiet(g: Group): boolean {
    for (const m of g.members.values()) if (m.revoking) return false;
    if (g.timer) {
      clearTimeout(g.timer);
      g.timer = null;
    }
    for (const apply of g.resets.splice(0)) apply();
    const plan = assignRange([...g.members.keys()], g.partitions);
    for (const [id, m] of g.members) {
      if (m.owned.length > 0) continue; // already assigned in this generation
      m.owned = plan.get(id) ?? [];
      m.member.assign(g.generation, m.owned);
    }
    return true;
  }
}
