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
    this.sent.push(frame);
  }
  sendNow(frame: Frame): void {
    this.sent.push(frame);
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
}

/** A session (id 1 unless given) on a RecordingPort. */
export function testSession(id = 1): Session {
  return new Session(id, new RecordingPort());
}
