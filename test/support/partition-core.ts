/**
 * A partition core driven directly by a test (no thread, no gateway): a real log in a temp dir and
 * real rings, with the test holding the gateway's ends (it writes input entries, reads answers).
 */
import { onTestFinished } from 'vitest';
import { PartitionCore } from '../../src/partition/core.js';
import { PartitionLog, type LogOptions } from '../../src/log/index.js';
import { createRing, RingReader, RingWriter } from '../../src/ring/index.js';
import { tmpDir } from './tmp-dir.js';

export interface CoreHarness {
  core: PartitionCore;
  log: PartitionLog;
  /** The gateway's end of the input ring. */
  input: RingWriter;
  /** The gateway's end of the output ring. */
  output: RingReader;
}

/** Call inside a test: the log is destroyed and its directory removed when the test finishes. */
export function partitionCore(prefix: string, fsync: LogOptions['fsync'] = { mode: 'never' }): CoreHarness {
  const tmp = tmpDir(prefix);
  const log = PartitionLog.open({ dir: tmp.dir, fsync });
  const inSab = createRing(1 << 16);
  const outSab = createRing(1 << 16);
  const core = new PartitionCore(
    log,
    {
      input: new RingReader(inSab),
      output: new RingWriter(outSab),
      inputReleased: () => undefined,
      outputPublished: () => undefined,
      waitForOutputSpace: () => true,
    },
    { maxGroupBytes: 1 << 20, maxFetchBytes: 1 << 14, retentionCheckMs: 60_000 },
  );
  onTestFinished(() => {
    log.destroy();
    tmp.cleanup();
  });
  return { core, log, input: new RingWriter(inSab), output: new RingReader(outSab) };
}
