/**
 * The transaction feature's entry (docs/transactions.md): half messages, checker, multi-partition
 * atomic commit. The TransactionCoordinator (coordinator.ts) is the shell around the pure
 * TransactionBook (book.ts) and record helpers (records.ts); its journal is txn-log.ts.
 */
import { needId } from '../../common/errors.js';
import type { Feature, FeatureContext } from '../../core/feature-host.js';
import { TransactionCoordinator } from './coordinator.js';

export async function installTransactions(ctx: FeatureContext): Promise<Feature> {
  const txns = await TransactionCoordinator.open(ctx);
  const { host } = ctx;
  host.registerOp('txn_begin', (conn, id, f) => txns.begin(conn, needId(id, f.op), f));
  host.registerOp('txn_produce', (conn, id, f) => txns.produce(conn, needId(id, f.op), f));
  host.registerOp('txn_commit', (conn, id, f) => txns.decideOp(conn, needId(id, f.op), f, 'commit'));
  host.registerOp('txn_rollback', (conn, id, f) => txns.decideOp(conn, needId(id, f.op), f, 'rollback'));
  host.registerOp('txn_checker', (conn, id, f) => txns.registerChecker(conn, needId(id, f.op), f));
  host.registerOp('txn_list', (conn, id, f) => txns.list(conn, needId(id, f.op), f));
  host.onConnectionClosed((conn) => txns.connectionClosed(conn));
  await txns.recover();
  return txns;
}
