/**
 * Test surface of the transaction coordinator. `testHooks` lets a test stop an apply at a chosen
 * point (a promise that never settles stands for a broker killed right there), then restart the
 * broker and watch recovery finish the transaction. Never set outside tests.
 *
 * A broker in a child process (which a test SIGKILLs) gets the same hook from the environment:
 * WEIR_TXN_TEST_HOLD_APPLY=all holds every partition's append, `=1,2` only those partitions'.
 */
export interface TxnTestHooks {
  /** Called before the committed messages of `txn` are appended to `partition`. */
  beforePartitionAppend: ((txn: number, partition: number) => Promise<void> | void) | null;
  /** Called with each transaction-log entry's JSON before it is appended; throwing fails it like a disk error. */
  beforeLogWrite: ((lines: readonly string[]) => void) | null;
}

export const testHooks: TxnTestHooks = { beforePartitionAppend: holdFromEnvironment(process.env.WEIR_TXN_TEST_HOLD_APPLY), beforeLogWrite: null };

function holdFromEnvironment(spec: string | undefined): TxnTestHooks['beforePartitionAppend'] {
  if (!spec) return null;
  const held = spec === 'all' ? null : new Set(spec.split(',').map(Number));
  return (_txn, partition) => (held === null || held.has(partition) ? new Promise<void>(() => undefined) : undefined);
}
