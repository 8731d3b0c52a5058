export type {
  BackoffOptions,
  ChildExit,
  ChildHandle,
  ChildInfo,
  ChildSpec,
  ChildStatus,
  ExitListener,
  Restart,
  Strategy,
  SupervisorFlags,
} from './child-spec.js';
export {
  Supervisor,
  supervisorSpec,
  shutdownHandle,
  type ChildExitMessage,
  type ChildStartMessage,
  type StartKind,
  type SupervisorEscalateMessage,
  type SupervisorEvents,
  type SupervisorOptions,
  type SupervisorRestartMessage,
  type SupervisorSpecOptions,
  type SupervisorState,
} from './supervisor.js';
export { startWorkerChild, WarmWorker, workerStartData, type ReadyMessage, type WorkerChild, type WorkerChildOptions } from './worker-child.js';
export * from './errors.js';
