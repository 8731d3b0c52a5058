import { createRequire } from 'node:module';
import { expect, it } from 'vitest';
import { isNativeAccelerationEnabled } from 'cbor-x';
import { loadNativeUws } from '../../src/gateway/native.js';

const require = createRequire(import.meta.url);

// After a clean install these must all be on; each silently falls back to slow JavaScript otherwise.
it('loads the native uWebSockets.js binary (the broker refuses its JavaScript fallback)', () => {
  expect(() => loadNativeUws()).not.toThrow();
});

it('has cbor-x native acceleration (cbor-extract) enabled', () => {
  expect(isNativeAccelerationEnabled).toBe(true);
});

it('has ws native masking (bufferutil) available for the Node client', () => {
  const bufferutil = require('bufferutil') as { mask: unknown; unmask: unknown };
  expect(typeof bufferutil.mask).toBe('function');
  expect(require.resolve('bufferutil')).toMatch(/node_modules\/bufferutil/);
});
