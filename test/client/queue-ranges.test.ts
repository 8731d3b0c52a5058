import { expect, it } from 'vitest';
import { toRanges } from '../../src/client/queue.js';

it('coalesces settled offsets into ascending, disjoint [from, to) ranges (what the broker requires)', () => {
  expect(toRanges([3, 4, 5, 9, 10])).toEqual([3, 6, 9, 11]); // ascending: no sort needed
  expect(toRanges([10, 3, 9, 5, 4])).toEqual([3, 6, 9, 11]); // handled out of order (concurrency > 1)
  expect(toRanges([7, 7, 8, 7])).toEqual([7, 9]); // duplicates
  expect(toRanges([])).toEqual([]);
});
