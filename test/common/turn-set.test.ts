import { expect, it } from 'vitest';
import { TurnSet, type TurnMember } from '../../src/common/turn-set.js';

interface Item extends TurnMember {
  name: string;
}
const item = (name: string): Item => ({ name, turnMarks: 0 });

it('holds each member once, in the order first added, and drains them in that order', () => {
  const set = new TurnSet<Item>(1);
  const [a, b, c] = [item('a'), item('b'), item('c')];
  set.add(b);
  set.add(a);
  set.add(b);
  set.add(c);
  expect(set.size).toBe(3);
  const seen: string[] = [];
  set.drain((x) => seen.push(x.name));
  expect(seen).toEqual(['b', 'a', 'c']);
  expect(set.size).toBe(0);
  expect([a, b, c].map((x) => x.turnMarks)).toEqual([0, 0, 0]);
});

it('keeps members added during a drain (the visited one too) for the next drain, in order', () => {
  const set = new TurnSet<Item>(1);
  const [a, b, c, d] = [item('a'), item('b'), item('c'), item('d')];
  set.add(a);
  set.add(b);
  const first: string[] = [];
  set.drain((x) => {
    first.push(x.name);
    if (x === a) {
      set.add(c);
      set.add(a); // an actor re-marked by its own answer
      set.add(b); // still in this drain: not added again
    }
    if (x === b) set.add(d);
  });
  expect(first).toEqual(['a', 'b']);
  const second: string[] = [];
  set.drain((x) => second.push(x.name));
  expect(second).toEqual(['c', 'a', 'd']);
  expect(set.size).toBe(0);
});

it('two sets with distinct bits hold the same member independently', () => {
  const deliveries = new TurnSet<Item>(1);
  const answers = new TurnSet<Item>(2);
  const a = item('a');
  deliveries.add(a);
  answers.add(a);
  expect([deliveries.size, answers.size]).toEqual([1, 1]);
  deliveries.drain(() => undefined);
  expect(a.turnMarks).toBe(2);
  answers.add(a);
  expect(answers.size).toBe(1);
  answers.drain(() => undefined);
  expect(a.turnMarks).toBe(0);
});
