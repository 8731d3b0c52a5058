import { expect, it } from 'vitest';
import { GroupCoordinator, type GroupMember } from '../../../src/core/groups/coordinator.js';

function member(id: string, log: string[]): GroupMember {
  return {
    memberId: id,
    revoke: (g) => log.push(`${id}:revoke@${g}`),
    assign: (g, ps) => log.push(`${id}:assign@${g}:${ps.join(',')}`),
  };
}

it('reset (replay) runs between the revoke of every live member and the next assignment', () => {
  const log: string[] = [];
  const c = new GroupCoordinator(60_000);
  c.join('g', 't', 4, member('a', log));
  c.join('g', 't', 4, member('b', log));
  c.revoked('g', 't', 'a', 2);
  log.length = 0;
  expect(c.owns('g', 't', 'a', 0)).toBe(true);

  expect(c.reset('g', 't', () => log.push('apply'))).toBe(true);
  // Both members must stop first; a commit while stopping is still allowed (it owns the partitions).
  expect(log).toEqual(['a:revoke@3', 'b:revoke@3']);
  expect(c.owns('g', 't', 'b', 2)).toBe(true);
  c.revoked('g', 't', 'a', 3);
  expect(log).toEqual(['a:revoke@3', 'b:revoke@3']);
  c.revoked('g', 't', 'b', 3);
  expect(log).toEqual(['a:revoke@3', 'b:revoke@3', 'apply', 'a:assign@3:0,1', 'b:assign@3:2,3']);
  c.close();
});

it('reset of a group without live members is left to the caller; a reset pending when the last member leaves still applies', () => {
  const log: string[] = [];
  const c = new GroupCoordinator(60_000);
  expect(c.reset('nobody', 't', () => log.push('never'))).toBe(false);
  c.join('g', 't', 1, member('a', log));
  expect(c.reset('g', 't', () => log.push('apply'))).toBe(true);
  c.leave('g', 't', 'a');
  expect(log).toEqual(['a:assign@1:0', 'a:revoke@2', 'apply']);
  c.close();
});
