/**
 * Sent and received totals shared by every producer and consumer thread of one run, so a max-rate
 * producer can hold back while the consumers lag (`workload.maxBacklog`): the run then measures
 * the highest rate the consumers sustain, which is what OMB's rate controller searches for when a
 * workload's producerRate is 0 (RateController in openmessaging/benchmark), reached here without a
 * ramp. Without it a max-rate producer on a 2-core machine takes CPU from consumers that cannot
 * keep up anyway: messages produced and never consumed in the window count for nothing
 * (the reported rate is min(produced, consumed)).
 *
 * Layout: one Int32 slot per thread, producers first. Each slot has one writer (its thread,
 * Atomics.store of its running total); readers (producers) Atomics.load every slot. Totals wrap at
 * 2^32: sums and the difference are taken modulo 2^32 (`| 0`), exact while the true backlog is
 * below 2^31 messages.
 */
export class FlowCounters {
  private readonly slots: Int32Array;

  constructor(
    readonly buffer: SharedArrayBuffer,
    private readonly producers: number,
  ) {
    this.slots = new Int32Array(buffer);
  }

  static allocate(producers: number, consumers: number): SharedArrayBuffer {
    return new SharedArrayBuffer(4 * Math.max(1, producers + consumers));
  }

  /** Producer `index` has sent `total` messages (counted when the batch is sent, before its ack). */
  sent(index: number, total: number): void {
    Atomics.store(this.slots, index, total | 0);
  }

  /** Consumer `index` has received `total` messages. */
  received(index: number, total: number): void {
    Atomics.store(this.slots, this.producers + index, total | 0);
  }

  /** Messages sent and not yet received, every topic summed (one consumer group per topic). */
  backlog(): number {
    let d = 0;
    const s = this.slots;
    for (let i = 0; i < s.length; i++) d = i < this.producers ? (d + Atomics.load(s, i)) | 0 : (d - Atomics.load(s, i)) | 0;
    return d;
  }
}
