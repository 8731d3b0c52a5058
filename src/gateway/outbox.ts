const NO_FRAME = new Uint8Array(0);

/**
 * A connection's frames waiting for the end of the turn. Its slots are reused from turn to turn
 * (a fresh array per turn cost an allocation, and its first push another); a sent frame's slot is
 * overwritten at once so the outbox does not keep the frame's memory alive.
 */
export class Outbox {
  private frames: Uint8Array[] = [];
  length = 0;
  /** Bytes of the queued frames, kept as they come and go: the gateway checks it before every push. */
  private queuedBytes = 0;

  push(frame: Uint8Array): void {
    this.frames[this.length++] = frame;
    this.queuedBytes += frame.length;
  }

  at(i: number): Uint8Array {
    return this.frames[i]!;
  }

  bytes(): number {
    return this.queuedBytes;
  }

  /** Forget the first `n` frames (sent), keeping any queued after them in order. */
  dropFirst(n: number): void {
    const frames = this.frames;
    const rest = this.length - n;
    for (let i = 0; i < Math.min(n, this.length); i++) this.queuedBytes -= frames[i]!.length;
    for (let i = 0; i < rest; i++) frames[i] = frames[n + i]!;
    for (let i = Math.max(rest, 0); i < this.length; i++) frames[i] = NO_FRAME;
    this.length = Math.max(rest, 0);
  }

  clear(): void {
    this.dropFirst(this.length);
  }
}
