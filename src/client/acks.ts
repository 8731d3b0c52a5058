/** What a produce answer says about each message of the batch it answers (docs/protocol.md, "Acknowledgements"). */
import type { ProduceResult } from '../protocol/frames.js';
import { badResponse } from './errors.js';
import type { Ack } from './types.js';

/**
 * Per-message acks of a batch of `count` messages from a produce result (docs/protocol.md,
 * "Acknowledgements"): message i went to route[i] (or the only partition in `parts`) and has offset
 * baseOffset(route[i]) + the number of earlier messages of the batch that went to that partition.
 */
export function computeAcks(result: ProduceResult, count: number): Ack[] {
  const parts = result?.parts;
  if (!Array.isArray(parts) || parts.length === 0) throw badResponse('produce result has no parts');
  const route = result.route as Uint8Array | number[] | undefined;
  if (parts.length === 1 && (route === undefined || route === null)) {
    // The common answer (one partition): no maps.
    const part = producePart(parts[0]);
    const p = part[0];
    const base = part[1];
    const n = part[2];
    if (n !== count) throw badResponse(`produce result acknowledges ${n} messages, the batch had ${count}`, { total: n, count });
    const acks = new Array<Ack>(count);
    for (let i = 0; i < count; i++) acks[i] = { partition: p, offset: base + i };
    return acks;
  }
  const next = new Map<number, number>();
  const expectedEnd = new Map<number, number>();
  let total = 0;
  for (const raw of parts) {
    const [p, base, n] = producePart(raw);
    next.set(p, base);
    expectedEnd.set(p, base + n);
    total += n;
  }
  if (total !== count) throw badResponse(`produce result acknowledges ${total} messages, the batch had ${count}`, { total, count });
  const acks = new Array<Ack>(count);
  // One part without a route was answered above.
  if (route === undefined || route === null) throw badResponse('produce result touches several partitions but has no route');
  const at: (i: number) => number =
    route instanceof Uint8Array
      ? (i) => route[2 * i]! | (route[2 * i + 1]! << 8)
      : Array.isArray(route)
        ? (i) => route[i]! // lenient: an array of partition numbers
        : () => -1;
  const routeLength = route instanceof Uint8Array ? route.length / 2 : Array.isArray(route) ? route.length : -1;
  if (routeLength !== count) throw badResponse(`produce result route has ${routeLength} entries, the batch had ${count}`);
  for (let i = 0; i < count; i++) {
    const p = at(i);
    const offset = next.get(p);
    if (offset === undefined) throw badResponse(`produce result routes message ${i} to partition ${p}, which is not in parts`);
    acks[i] = { partition: p, offset };
    next.set(p, offset + 1);
  }
  for (const [p, end] of expectedEnd) {
    if (next.get(p) !== end) throw badResponse(`produce result route and parts disagree for partition ${p}`);
  }
  return acks;
}

/** One `[partition, baseOffset, count, …]` entry of a produce result's `parts`: numbers only. */
function producePart(part: unknown): [number, number, number, ...number[]] {
  let numbers = Array.isArray(part) && part.length >= 3;
  for (let i = 0; numbers && i < (part as unknown[]).length; i++) numbers = typeof (part as unknown[])[i] === 'number';
  if (!numbers) throw badResponse('produce result has a malformed part', { part });
  return part as [number, number, number, ...number[]];
}
