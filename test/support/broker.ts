import { afterEach } from 'vitest';
import { Broker, type BrokerOptions } from '../../src/broker.js';
import { connect, type WeirClient } from '../../src/client/index.js';
import { tmpDir } from './tmp-dir.js';

export interface TestBroker {
  broker: Broker;
  url: string;
  dir: string;
  /** Stop the broker (graceful) and, unless `keepData`, delete its data directory. */
  stop(opts?: { keepData?: boolean }): Promise<void>;
}

/** A real broker on 127.0.0.1 with an ephemeral port and a temp data dir. */
export async function startTestBroker(opts: BrokerOptions = {}): Promise<TestBroker> {
  const tmp = opts.dataDir ? { dir: opts.dataDir, cleanup: () => undefined } : tmpDir('weir-broker-');
  const broker = await Broker.start({ port: 0, testHooks: true, ringBytes: 1 << 20, segmentBytes: 8 << 20, ...opts, dataDir: tmp.dir });
  return {
    broker,
    url: broker.url,
    dir: tmp.dir,
    stop: async ({ keepData = false } = {}) => {
      await broker.close();
      if (!keepData) tmp.cleanup();
    },
  };
}

/**
 * A test file's broker and SDK clients, with the teardown every such file needs: after each test
 * the clients close (errors ignored: the broker may be gone), then `tb` stops (deleting its data
 * directory unless the fixture says `keepData`), then the `defer`red cleanups run, then `after`
 * (the file's own data directory, say). Tests assign `fx.tb` themselves (a restart assigns it again).
 */
export function brokerFixture(opts: { keepData?: boolean; after?: () => void } = {}) {
  const clients: WeirClient[] = [];
  const cleanups: Array<() => void> = [];
  const fx = {
    tb: undefined as TestBroker | undefined,
    /** An SDK client that closes after the test. */
    async client(url: string, options?: Parameters<typeof connect>[1]): Promise<WeirClient> {
      const c = await connect(url, options);
      clients.push(c);
      return c;
    },
    /** Close every client opened so far, now (a test that restarts its broker). */
    async closeClients(): Promise<void> {
      for (const c of clients.splice(0)) await c.close();
    },
    defer(cleanup: () => void): void {
      cleanups.push(cleanup);
    },
  };
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close().catch(() => undefined);
    await fx.tb?.stop(opts.keepData ? { keepData: true } : undefined);
    fx.tb = undefined;
    for (const c of cleanups.splice(0)) c();
    opts.after?.();
  });
  return fx;
}
