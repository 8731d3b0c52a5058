import { expect, it } from 'vitest';
import { InboxRegistry, MAX_INBOXES_PER_OWNER } from '../../../src/features/routing/inbox.js';

it('binds generated and re-claimed inbox names to one owner and forgets them with it', () => {
  let n = 0;
  const reg = new InboxRegistry<string>(() => `name${String(n++).padStart(8, '0')}`);
  const a = reg.claim('connA');
  expect(a).toEqual({ ok: true, name: '_INBOX.name00000000' });
  expect(reg.owner('_INBOX.name00000000')).toBe('connA');
  // Re-claiming one's own is a no-op; another owner cannot take it.
  expect(reg.claim('connA', '_INBOX.name00000000')).toEqual({ ok: true, name: '_INBOX.name00000000' });
  expect(reg.claim('connB', '_INBOX.name00000000')).toEqual({ ok: false, reason: 'TAKEN' });
  expect(reg.claim('connB', 'INBOX.nope')).toEqual({ ok: false, reason: 'INVALID_NAME' });
  expect(reg.claim('connB', '_INBOX.short')).toEqual({ ok: false, reason: 'INVALID_NAME' });
  // After the owner leaves, the name is free again (a reconnecting client gets its old inbox back).
  reg.dropOwner('connA');
  expect(reg.owner('_INBOX.name00000000')).toBeUndefined();
  expect(reg.claim('connB', '_INBOX.name00000000')).toEqual({ ok: true, name: '_INBOX.name00000000' });
  expect(reg.size).toBe(1);
});

it('skips generated names already in use and bounds inboxes per owner', () => {
  const names = ['dupdupdup', 'dupdupdup', 'freshname'];
  const reg = new InboxRegistry<number>(() => names.shift() ?? `x${Math.random().toString(36).slice(2, 12)}`);
  expect(reg.claim(1)).toEqual({ ok: true, name: '_INBOX.dupdupdup' });
  expect(reg.claim(2)).toEqual({ ok: true, name: '_INBOX.freshname' });
  for (let i = 1; i < MAX_INBOXES_PER_OWNER; i++) expect(reg.claim(1).ok).toBe(true);
  expect(reg.claim(1)).toEqual({ ok: false, reason: 'TOO_MANY' });
  reg.dropOwner(1);
  expect(reg.size).toBe(1);
});
