import { expect, it } from 'vitest';
import { Outbox } from '../../src/gateway/outbox.js';

const frame = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);

it('queues frames in order, counts their bytes, and drops sent ones keeping later ones in order', () => {
  const box = new Outbox();
  const [a, b, c] = [frame(3, 1), frame(5, 2), frame(7, 3)];
  box.push(a);
  box.push(b);
  expect(box.length).toBe(2);
  expect(box.bytes()).toBe(8);
  box.push(c); // queued while a and b were being sent
  box.dropFirst(2);
  expect(box.length).toBe(1);
  expect(box.at(0)).toBe(c);
  expect(box.bytes()).toBe(7);
  box.clear();
  expect([box.length, box.bytes()]).toEqual([0, 0]);
});

it('reuses its slots and does not keep dropped frames reachable', () => {
  const box = new Outbox();
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 4; i++) box.push(frame(1, round * 10 + i));
    expect([...Array(box.length).keys()].map((i) => box.at(i)[0])).toEqual([0, 1, 2, 3].map((i) => round * 10 + i));
    box.dropFirst(4);
    expect(box.length).toBe(0);
  }
  // Slots past the length hold an empty frame, not an old one.
  expect(box.at(0).length).toBe(0);
  expect(box.at(3).length).toBe(0);
});
