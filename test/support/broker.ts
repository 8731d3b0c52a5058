import { Broker, type BrokerOptions } from '../../src/broker.js';
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
