/** RabbitMQ classic durable queues, persistent messages, publisher confirms: see ./rabbitmq.ts. */
import type { Driver, DriverConfig } from '../../e2e/driver.js';
import type { Workload } from '../../e2e/workload.js';
import { createRabbitDriver } from './rabbitmq.js';

export function createDriver(config: DriverConfig, workload: Workload): Driver {
  return createRabbitDriver(config, workload, 'classic');
}
