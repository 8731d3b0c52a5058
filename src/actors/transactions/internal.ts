/**
 * Test surface of the transaction coordinator. `testHooks` lets an in-process test stop an apply
 * at a chosen point (a promise that never settles stands for a broker killed right there), then
 * restart the broker and watch recovery finish the transaction. Never set outside tests.
 */
export interface TxnTestHooks {
  /** Called before the committed messages of `txn` are appended to `partition`. */
  beforePartitionAppend: ((txn: number, partition: number) => Promise<void> | void) | null;
}

export const testHooks: TxnTestHooks = { beforePartitionAppend: null };
