/** The broker's option parsing (src/broker.ts): what `weir start` flags become, and the errors a bad one gets. */
import { expect, it } from 'vitest';
import { parseActorHost, parseFsync } from '../src/broker.js';

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
