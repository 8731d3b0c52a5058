/**
 * The broker's turn: what requests touch during an event-loop turn is published once at its end.
 * Partition actors written to (PartitionRef.flush: publish their input rings, at most one wake-up
 * per partition thread, an Atomics.notify costing tens of microseconds) and then the front doors'
 * queued frames (their end-of-turn hooks: one corked write per connection). Requests that arrive
 * together share both.
 */
import { TurnSet } from '../common/turn-set.js';
import type { PartitionRef } from '../partition/ref.js';

/** Flushes of actors re-marked by their own answers within one turn (gateway-hosted actors). */
const MAX_FLUSH_ROUNDS = 16;
const flushActor = (actor: PartitionRef): void => actor.flush();

export class Turn {
  private readonly actors = new TurnSet<PartitionRef>(1);
  private readonly endHooks: Array<() => void> = [];
  private scheduled = false;

  /** `actor`'s rings were written this turn: flush it at the turn's end. */
  markActor(actor: PartitionRef): void {
    this.actors.add(actor);
    this.schedule();
  }

  /** Something is queued for the end of this turn (a front door's frames). */
  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.run);
  }

  /** Called at the end of every turn, after the actors were flushed (a front door sends its frames). */
  onEnd(hook: () => void): void {
    this.endHooks.push(hook);
  }

  private readonly run = (): void => {
    // An actor hosted on this thread answers inside flush(), and an answer may write to an actor
    // again (a subscription's next fetch), even to one already flushed: flush again, then send
    // every answer in this same turn. Bounded: answers that keep asking (fetches that return at
    // once) go on next turn, after the sockets have been read.
    for (let round = 0; round < MAX_FLUSH_ROUNDS && this.actors.size > 0; round++) this.actors.drain(flushActor);
    this.scheduled = false;
    for (const hook of this.endHooks) hook();
    if (this.actors.size > 0) this.schedule();
  };
}
