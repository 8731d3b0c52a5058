/**
 * The transaction feature's entry (docs/transactions.md): half messages, checker, multi-partition
 * atomic commit. The TransactionCoordinator (coordinator.ts) is the shell around the pure
 * TransactionBook (book.ts) and record helpers (records.ts); its journal is txn-log.ts.
 */
import type { Feature, FeatureContext, Frame, Session } from '../../core/feature-host.js';
import { TransactionCoordinator } from './coordinator.js';

export async function installTransactions(ctx: FeatureContext): Promise<Feature> {
  const txns = await TransactionCoordinator.open(ctx);
  const { host } = ctx;
  // A transaction belongs to its producer group: every op on one needs `txn` on that group (named
  // by the request, or by the transaction it names).
  const ofGroup = { action: 'txn', from: 'producerGroup' } as const;
  const ofTxn = { action: 'txn', from: (_conn: Session, f: Frame) => txns.producerGroupOf(f.txn) } as const;
  host.registerOp({ op: 'txn_begin', requestId: 'required', whenStopping: 'serve', access: [ofGroup, { action: 'produce', from: 'topic' }], handler: (conn, id, f) => txns.begin(conn, id, f) });
  host.registerOp({ op: 'txn_produce', requestId: 'required', whenStopping: 'serve', access: [ofTxn], handler: (conn, id, f) => txns.produce(conn, id, f) });
  host.registerOp({ op: 'txn_commit', requestId: 'required', whenStopping: 'serve', access: [ofTxn], handler: (conn, id, f) => txns.decideOp(conn, id, f, 'commit') });
  host.registerOp({ op: 'txn_rollback', requestId: 'required', whenStopping: 'serve', access: [ofTxn], handler: (conn, id, f) => txns.decideOp(conn, id, f, 'rollback') });
  host.registerOp({ op: 'txn_checker', requestId: 'required', whenStopping: 'serve', access: [ofGroup], handler: (conn, id, f) => txns.registerChecker(conn, id, f) });
  // Lists only the transactions of producer groups the session has `txn` on.
  host.registerOp({ op: 'txn_list', requestId: 'required', whenStopping: 'serve', access: [{ action: 'describe', from: 'topic' }], handler: (conn, id, f) => txns.list(conn, id, f) });
  host.onConnectionClosed((conn) => txns.connectionClosed(conn));
  await txns.recover();
  return txns;
}
