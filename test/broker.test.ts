/** The broker's option parsing (src/broker.ts): what `weir start` flags become, and the errors a bad one gets. */
import { expect, it } from 'vitest';
import { checkPageCacheBytes, parseActorHost, parseFsync } from '../src/broker.js';

it('parses --fsync: never (the default), always, interval:MS; anything else is BAD_CONFIG', () => {
  expect(parseFsync(undefined)).toEqual({ mode: 'never' });
  expect(parseFsync('always')).toEqual({ mode: 'always' });
  expect(parseFsync('interval:50')).toEqual({ mode: 'interval', intervalMs: 50 });
  expect(() => parseFsync('sometimes')).toThrow(expect.objectContaining({ code: 'BAD_CONFIG', message: expect.stringContaining('never, always or interval:MS') }));
});

it('parses --actor-host: auto (the default), threads or gateway; anything else is BAD_CONFIG', () => {
  expect(parseActorHost(undefined)).toBe('auto');
  expect(parseActorHost('threads')).toBe('threads');
  expect(parseActorHost('gateway')).toBe('gateway');
  expect(parseActorHost('auto')).toBe('auto');
  expect(() => parseActorHost('inline')).toThrow(expect.objectContaining({ code: 'BAD_CONFIG', message: expect.stringContaining('auto, threads or gateway') }));
});

it('checks --page-cache-bytes: unset, 0 (drop-behind off) or a whole number of bytes; anything else is BAD_CONFIG', () => {
  expect(() => checkPageCacheBytes(undefined)).not.toThrow();
  expect(() => checkPageCacheBytes(0)).not.toThrow();
  expect(() => checkPageCacheBytes(64 * 1024 * 1024)).not.toThrow();
  for (const bad of [-1, 1.5, Number.NaN]) {
    expect(() => checkPageCacheBytes(bad)).toThrow(expect.objectContaining({ code: 'BAD_CONFIG', message: expect.stringContaining('--page-cache-bytes') }));
  }
});
