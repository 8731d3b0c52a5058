/**
 * A partition core driven directly by a test (no thread, no gateway): a real log in a temp dir (or,
 * with memoryPartitionCore, a MemoryLog) and real rings, with the test holding the gateway's ends
 * (it writes input entries, reads answers).
 */
import { onTestFinished } from 'vitest';
import { PartitionCore } from '../../src/partition/core.js';
import { PartitionLog, type LogOptions, type PartitionStore } from '../../src/log/index.js';
import { MemoryLog, type MemoryLogOptions } from '../../src/log/internal.js';
import { createRing, RingReader, RingWriter } from '../../src/ring/index.js';
import { tmpDir } from './tmp-dir.js';

export interface CoreHarness<L extends PartitionStore = PartitionStore> {
  core: PartitionCore;
  log: L;
  /** The gateway's end of the input ring. */
  input: RingWriter;
  /** The gateway's end of the output ring. */
  output: RingReader;
}

/** Call inside a test: the log is destroyed and its directory removed when the test finishes. */
export function partitionCore(prefix: string, fsync: LogOptions['fsync'] = { mode: 'never' }): CoreHarness<PartitionLog> {
  const tmp = tmpDir(prefix);
  const log = PartitionLog.open({ dir: tmp.dir, fsync });
  onTestFinished(() => {
    log.destroy();
    tmp.cleanup();
  });
  return harness(log);
}

/**
 * The same core over a MemoryLog (same answers, no files): for tests that need a log state the
 * memory store can simply be put in (MemoryLog.simulateDamage). Call inside a test.
 */
export function memoryPartitionCore(opts: MemoryLogOptions = { fsync: { mode: 'never' } }): CoreHarness<MemoryLog> {
  const log = new MemoryLog(opts);
  onTestFinished(() => log.destroy());
  return harness(log);
}

function harness<L extends PartitionStore>(log: L): CoreHarness<L> {
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
  return { core, log, input: new RingWriter(inSab), output: new RingReader(outSab) };
}
