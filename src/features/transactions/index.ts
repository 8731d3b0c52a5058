/** Transactional messages: half messages, checker, multi-partition atomic commit (docs/transactions.md). */
import type { Feature, FeatureContext } from '../../core/feature-host.js';
import { TransactionCoordinator } from './coordinator.js';

export { TransactionCoordinator, HALF_TOPIC } from './coordinator.js';

export function installTransactions(ctx: FeatureContext): Promise<Feature> {
  return TransactionCoordinator.install(ctx);
}
