/** Delayed/scheduled messages and message TTL (docs/time.md). */
export { installTime, timeInterceptor, type TimeFeature } from './feature.js';
export { TopicScheduler, SCHEDULE_TOPIC_PREFIX, scheduleTopicOf, type SchedulerOptions, type SchedulerStats } from './scheduler.js';
export { dropExpired, type Deliverable } from '../../protocol/expiry-filter.js';
export { DueIndex } from './due-index.js';
export { FiredSet } from './fired-set.js';
