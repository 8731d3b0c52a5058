/**
 * The browser path: the SDK must load without any Node-only module and work with a WHATWG
 * WebSocket passed in through options (here an in-memory fake that answers like a broker).
 */
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { decodeFrame, encodeFrame } from '../../src/protocol/cbor.js';
import type { WebSocketLike } from '../../src/client/index.js';

// If the SDK imported `ws` in this test, the import would fail loudly.
vi.mock('ws', () => {
  throw new Error('ws must not be imported when a WebSocket option is given');
});

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Bare module specifiers statically imported by every module reachable from `entry`. */
function staticImports(entry: string): Map<string, string[]> {
  const bare = new Map<string, string[]>();
  const seen = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const src = readFileSync(file, 'utf8');
    // `import … from 'x'`, `export … from 'x'`, `import 'x'` — not `import('x')`, which is lazy.
    const re = /^\s*(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/gm;
    for (const m of src.matchAll(re)) {
      const spec = m[1]!;
      const isTypeOnly = /^\s*(?:import|export)\s+type\s/.test(m[0]);
      if (spec.startsWith('.')) visit(path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')));
      else if (!isTypeOnly) bare.set(spec, [...(bare.get(spec) ?? []), path.relative(root, file)]);
    }
  };
  visit(entry);
  return bare;
}

describe('browser safety', () => {
  it('no module reachable from src/client/index.ts statically imports Node built-ins or ws', () => {
    const imports = staticImports(path.join(root, 'src/client/index.ts'));
    const node = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
    const offenders = [...imports].filter(([spec]) => node.has(spec) || spec.startsWith('node:') || spec === 'ws');
    expect(offenders).toEqual([]);
    // The only third-party runtime dependency is the CBOR codec (which has a browser build).
    expect([...imports.keys()]).toEqual(['cbor-x']);
  });

  it('connects and produces through a WebSocket class passed in options (arraybuffer frames)', async () => {
    const sockets: FakeBrowserSocket[] = [];
    class FakeBrowserSocket implements WebSocketLike {
      static readonly OPEN = 1;
      binaryType = 'blob';
      readyState = 0;
      onopen: ((e: unknown) => void) | null = null;
      onmessage: ((e: { data: unknown }) => void) | null = null;
      onclose: ((e: { code?: number; reason?: string }) => void) | null = null;
      onerror: ((e: unknown) => void) | null = null;
      readonly sent: Array<Record<string, unknown>> = [];
      constructor(readonly url: string) {
        sockets.push(this);
        setTimeout(() => {
          this.readyState = 1;
          this.onopen?.({});
        }, 0);
      }
      send(data: Uint8Array): void {
        const f = decodeFrame(data) as Record<string, unknown>;
        this.sent.push(f);
        const reply =
          f.op === 'hello'
            ? { version: 1, broker: 'fake-browser', maxFrameBytes: 1 << 20, maxMessageBytes: 1 << 16, maxInFlightBytes: 1 << 20, fsync: 'always' }
            : f.op === 'produce'
              ? { parts: [[0, 41, 2]] }
              : {};
        const bytes = encodeFrame({ op: 'result', id: f.id, ...reply });
        // Browsers hand out a fresh ArrayBuffer when binaryType is 'arraybuffer'.
        const ab = new Uint8Array(bytes).buffer;
        setTimeout(() => this.onmessage?.({ data: this.binaryType === 'arraybuffer' ? ab : new Blob([ab]) }), 0);
      }
      close(): void {
        this.readyState = 3;
        setTimeout(() => this.onclose?.({ code: 1000, reason: '' }), 0);
      }
    }

    const { connect } = await import('../../src/client/index.js');
    const client = await connect({ url: 'ws://browser.test:7070', WebSocket: FakeBrowserSocket, token: 's3cret' });
    expect(sockets).toHaveLength(1);
    expect(sockets[0]!.binaryType).toBe('arraybuffer');
    expect(sockets[0]!.sent[0]).toMatchObject({ op: 'hello', version: 1, token: 's3cret' });
    expect(client.broker.broker).toBe('fake-browser');
    const acks = await client.produce('t', [{ value: 'a' }, { value: new Uint8Array([1, 2]) }]);
    expect(acks).toEqual([
      { partition: 0, offset: 41 },
      { partition: 0, offset: 42 },
    ]);
    await client.close();
    expect(sockets[0]!.readyState).toBe(3);
  });
});
