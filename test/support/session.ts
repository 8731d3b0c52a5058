/**
 * A core Session for tests that call the core's pure parts directly: its port records what it is
 * sent (a fake of the SessionPort interface, not of a weir component).
 */
import { Session, type Frame, type ProducePart, type SessionPort } from '../../src/core/session.js';

export class RecordingPort implements SessionPort {
  readonly sent: Frame[] = [];
  readonly answers: Array<{ id: number; parts: ProducePart[] }> = [];
  unsent = 0;
  closedWith: { code: number; reason: string } | null = null;
  send(frame: Frame): void {
    this.sent.push(snapshot(frame));
  }
  sendNow(frame: Frame): void {
    this.sent.push(snapshot(frame));
  }
  deliver(sub: number, topic: string, partition: number, count: number, next: number, records: Uint8Array): void {
    this.sent.push({ op: 'deliver', sub, topic, partition, count, next, records: records.slice() });
  }
  answerProduce(id: number, parts: ProducePart[]): void {
    this.answers.push({ id, parts });
  }
  unsentBytes(): number {
    return this.unsent;
  }
  close(code: number, reason: string): void {
    this.closedWith = { code, reason };
  }
  remoteAddress(): string {
    return '127.0.0.1';
  }
}

/**
 * The frame as it is when sent: a front door encodes it at once, and its byte strings may be views
 * of memory the sender reuses (a queue's read buffer), so they are copied.
 */
function snapshot(frame: Frame): Frame {
  const out: Frame = {};
  for (const [k, v] of Object.entries(frame)) out[k] = v instanceof Uint8Array ? new Uint8Array(v) : v; // a copy (a Buffer's slice() is a view)
  return out;
}

/** A session (id 1 unless given) on a RecordingPort. */
export function testSession(id = 1): Session {
  return new Session(id, new RecordingPort());
}
