/** Public surface of the partition log (write-ahead log of one partition). */
export { PartitionLog } from './partition-log.js';
export type { FsyncPolicy, LogOptions, RecoveryReport } from './partition-log.js';
export type { PartitionStore, ReadResult, LostRange, StoreRecovery } from './store.js';
export {
  LogError,
  LogErrorCode,
  StorageFullError,
  StorageError,
  OffsetOutOfRangeError,
  LogCorruptError,
  LogClosedError,
  LogArgumentError,
} from './errors.js';
