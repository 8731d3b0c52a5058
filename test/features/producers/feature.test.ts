/**
 * The producers feature's shell (feature.ts) installed on a fake host
 * (test/support/fake-feature-host.ts) as the composition root installs it: init_producer hands out
 * an id bound to the asking connection, a reclaim with its secret moves it and fences the old
 * holder, and the producer guard the core asks per idempotent produce says so; bindings survive a
 * restart of the features.
 */
import { expect, it } from 'vitest';
import { installProducers } from '../../../src/features/producers/feature.js';
import { SECRET_BYTES } from '../../../src/features/producers/registry.js';
import { WeirError } from '../../../src/common/errors.js';
import { fakeFeatureHost } from '../../support/fake-feature-host.js';

const codeOf = (f: () => void): unknown => {
  try {
    f();
    return 'allowed';
  } catch (err) {
    return WeirError.isWeirError(err) ? err.code : err;
  }
};

it('init_producer binds a new id to its connection; a reclaim with the secret moves it and fences the old one, across a restart', async () => {
  const host = fakeFeatureHost();
  await host.install(installProducers);
  const first = host.openSession();
  const other = host.openSession();

  const a = await host.call(first, { op: 'init_producer', id: 1 });
  expect(a).toEqual({ op: 'result', id: 1, producerId: expect.any(Number), epoch: 0, secret: expect.any(Uint8Array) });
  const producerId = a.producerId as number;
  const secret = a.secret as Uint8Array;
  expect(secret.length).toBe(SECRET_BYTES);
  const b = await host.call(other, { op: 'init_producer', id: 1 });
  expect(b.producerId).not.toBe(producerId);

  expect(codeOf(() => host.checkProducer(first, producerId, 0))).toBe('allowed');
  expect(codeOf(() => host.checkProducer(other, producerId))).toBe('PRODUCER_ID_NOT_OWNED');
  expect(codeOf(() => host.checkProducer(first, 1_000_000))).toBe('BAD_REQUEST'); // never handed out

  // A wrong secret is refused; the right one moves the id to the new connection at the next epoch.
  const wrong = Uint8Array.from(secret);
  wrong[0]! ^= 1;
  expect(await host.call(other, { op: 'init_producer', id: 2, producerId, secret: wrong })).toMatchObject({ op: 'error', code: 'PRODUCER_ID_NOT_OWNED', details: { producerId } });
  expect(await host.call(other, { op: 'init_producer', id: 3, producerId, secret })).toEqual({ op: 'result', id: 3, producerId, epoch: 1 });
  expect(codeOf(() => host.checkProducer(other, producerId, 1))).toBe('allowed');
  expect(codeOf(() => host.checkProducer(first, producerId, 0))).toBe('PRODUCER_FENCED');
  expect(codeOf(() => host.checkProducer(first, producerId))).toBe('PRODUCER_FENCED');

  // After a restart the binding is still there: the secret reclaims it again, at the next epoch.
  await host.closeInstalled();
  await host.install(installProducers);
  const later = host.openSession();
  expect(await host.call(later, { op: 'init_producer', id: 1, producerId, secret })).toEqual({ op: 'result', id: 1, producerId, epoch: 2 });
  expect(codeOf(() => host.checkProducer(later, producerId, 2))).toBe('allowed');
  expect(codeOf(() => host.checkProducer(later, producerId, 1))).toBe('PRODUCER_FENCED');
  const fresh = await host.call(later, { op: 'init_producer', id: 2 });
  expect([producerId, b.producerId]).not.toContain(fresh.producerId); // ids are not handed out twice
});
