/**
 * The transaction feature's entry (docs/transactions.md): half messages, checker, multi-partition
 * atomic commit. The TransactionCoordinator (coordinator.ts) is the shell around the pure
 * TransactionBook (book.ts) and record helpers (records.ts); its journal is txn-log.ts.
 */
import type { Feature, FeatureContext } from '../../core/feature-host.js';
import { TransactionCoordinator } from './coordinator.js';

export async function installTransactions(ctx: FeatureContext): Promise<Feature> {
  const txns = await TransactionCoordinator.open(ctx);
  const { host } = ctx;
  // A transaction belongs to its producer group: every op on one needs that group's permission.
  const transact = { action: 'transact', resource: 'producer_group' } as const;
  host.registerOp({ op: 'txn_begin', requestId: 'required', whenStopping: 'serve', access: [transact, { action: 'produce', resource: 'topic' }], handler: (conn, id, f) => txns.begin(conn, id, f) });
  host.registerOp({ op: 'txn_produce', requestId: 'required', whenStopping: 'serve', access: [transact], handler: (conn, id, f) => txns.produce(conn, id, f) });
  host.registerOp({ op: 'txn_commit', requestId: 'required', whenStopping: 'serve', access: [transact], handler: (conn, id, f) => txns.decideOp(conn, id, f, 'commit') });
  host.registerOp({ op: 'txn_rollback', requestId: 'required', whenStopping: 'serve', access: [transact], handler: (conn, id, f) => txns.decideOp(conn, id, f, 'rollback') });
  host.registerOp({ op: 'txn_checker', requestId: 'required', whenStopping: 'serve', access: [transact], handler: (conn, id, f) => txns.registerChecker(conn, id, f) });
  host.registerOp({ op: 'txn_list', requestId: 'required', whenStopping: 'serve', access: [{ action: 'describe', resource: 'producer_group' }], handler: (conn, id, f) => txns.list(conn, id, f) });
  host.onConnectionClosed((conn) => txns.connectionClosed(conn));
  await txns.recover();
  return txns;
}
