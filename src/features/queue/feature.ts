/**
 * The queue feature's entry (docs/queues.md): installs the QueueService (service.ts, the shell
 * around the pure ShareWindow of window.ts, with its journal in journal.ts) and its ops.
 */
import { needId } from '../../common/errors.js';
import type { Feature, FeatureContext } from '../../core/feature-host.js';
import { QueueService } from './service.js';

export function installQueues(ctx: FeatureContext): Feature {
  const queues = new QueueService(ctx);
  const { host } = ctx;
  host.registerOp('queue_subscribe', (conn, id, f) => queues.subscribe(conn, needId(id, f.op), f));
  host.registerOp('ack', (conn, id, f) => queues.ack(conn, id, f));
  host.registerOp('nack', (conn, id, f) => queues.nack(conn, id, f));
  host.registerOp('queue_unsubscribe', (conn, id, f) => queues.unsubscribe(conn, needId(id, f.op), f));
  host.registerOp('dlq_redrive', (conn, id, f) => queues.redrive(conn, needId(id, f.op), f));
  host.onConnectionClosed((conn) => queues.connectionClosed(conn));
  return queues;
}
