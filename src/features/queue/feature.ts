/**
 * The queue feature's entry (docs/queues.md): installs the QueueService (service.ts, the shell
 * around the pure ShareWindow of window.ts, with its journal in journal.ts) and its ops.
 */
import type { Feature, FeatureContext, Frame, Session } from '../../core/feature-host.js';
import { QueueService } from './service.js';

export function installQueues(ctx: FeatureContext): Feature {
  const queues = new QueueService(ctx);
  const { host } = ctx;
  // Settling (ack, nack) is a permission of its own on the subscription's topic: a consumer that
  // may read a queue need not be one that may remove its messages.
  const subscriptionTopic = (conn: Session, f: Frame): string | undefined => queues.topicOf(conn, f.sub);
  host.registerOp({ op: 'queue_subscribe', requestId: 'required', whenStopping: 'serve', access: [{ action: 'consume', from: 'topic' }, { action: 'join', from: 'group' }], handler: (conn, id, f) => queues.subscribe(conn, id, f) });
  host.registerOp({ op: 'ack', requestId: 'optional', whenStopping: 'serve', access: [{ action: 'ack', from: subscriptionTopic }], handler: (conn, id, f) => queues.ack(conn, id, f) });
  host.registerOp({ op: 'nack', requestId: 'optional', whenStopping: 'serve', access: [{ action: 'ack', from: subscriptionTopic }], handler: (conn, id, f) => queues.nack(conn, id, f) });
  host.registerOp({ op: 'queue_unsubscribe', requestId: 'required', whenStopping: 'serve', access: 'session', handler: (conn, id, f) => queues.unsubscribe(conn, id, f) });
  host.registerOp({ op: 'dlq_redrive', requestId: 'required', whenStopping: 'serve', access: [{ action: 'redrive', from: 'topic' }], handler: (conn, id, f) => queues.redrive(conn, id, f) });
  host.onConnectionClosed((conn) => queues.connectionClosed(conn));
  return queues;
}
