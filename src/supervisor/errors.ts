/**
 * Supervisor errors. Codes are stable, registered in src/protocol/error-codes.ts (docs/errors.md):
 *
 * | code                   | class                        | when                                              |
 * |------------------------|------------------------------|---------------------------------------------------|
 * | SUPERVISOR_ESCALATED   | SupervisorEscalationError    | restart intensity exceeded; exit reason of the supervisor |
 * | SUPERVISOR_BAD_CONFIG  | SupervisorConfigError        | invalid flags or child spec                       |
 * | SUPERVISOR_NOT_RUNNING | SupervisorNotRunningError    | operation on a supervisor that is not running      |
 * | SUPERVISOR_KILLED      | SupervisorKilledError        | exit reason after `destroy()`                     |
 * | CHILD_START_FAILED     | ChildStartFailedError        | a child's `start()` rejected / a worker died before ready |
 * | CHILD_START_TIMEOUT    | ChildStartTimeoutError       | a worker did not post `ready` in time             |
 * | CHILD_CRASHED          | ChildCrashedError            | a worker threw an uncaught exception              |
 * | CHILD_OUT_OF_MEMORY    | ChildOutOfMemoryError        | a worker hit its `resourceLimits` (ERR_WORKER_OUT_OF_MEMORY) |
 * | CHILD_EXITED           | ChildExitedError             | a worker exited without being asked (e.g. terminated from outside) |
 * | CHILD_KILLED           | ChildKilledError             | exit reason after `destroy()` of a worker child   |
 * | CHILD_NOT_FOUND        | ChildNotFoundError           | unknown child id                                   |
 * | CHILD_ALREADY_EXISTS   | ChildAlreadyExistsError      | `startChild` with an id in use                     |
 * | CHILD_RUNNING          | ChildRunningError            | `deleteChild`/`restartChild` on a child that is not stopped |
 */
import { WeirError } from '../common/errors.js';
import { WeirCode } from '../protocol/error-codes.js';

export const SupervisorErrorCode = {
  ESCALATED: WeirCode.SUPERVISOR_ESCALATED,
  BAD_CONFIG: WeirCode.SUPERVISOR_BAD_CONFIG,
  NOT_RUNNING: WeirCode.SUPERVISOR_NOT_RUNNING,
  KILLED: WeirCode.SUPERVISOR_KILLED,
  CHILD_START_FAILED: WeirCode.CHILD_START_FAILED,
  CHILD_START_TIMEOUT: WeirCode.CHILD_START_TIMEOUT,
  CHILD_CRASHED: WeirCode.CHILD_CRASHED,
  CHILD_OUT_OF_MEMORY: WeirCode.CHILD_OUT_OF_MEMORY,
  CHILD_EXITED: WeirCode.CHILD_EXITED,
  CHILD_KILLED: WeirCode.CHILD_KILLED,
  CHILD_NOT_FOUND: WeirCode.CHILD_NOT_FOUND,
  CHILD_ALREADY_EXISTS: WeirCode.CHILD_ALREADY_EXISTS,
  CHILD_RUNNING: WeirCode.CHILD_RUNNING,
} as const;
export type SupervisorErrorCode = (typeof SupervisorErrorCode)[keyof typeof SupervisorErrorCode];

export class SupervisorError extends WeirError {}

export class SupervisorEscalationError extends SupervisorError {
  constructor(details: { supervisor: string; childId: string; intensity: number; period: number }, cause?: unknown) {
    super(
      SupervisorErrorCode.ESCALATED,
      `supervisor ${details.supervisor}: more than ${details.intensity} restarts in ${details.period} ms (last: child ${details.childId})`,
      { details, cause },
    );
  }
}

export class SupervisorConfigError extends SupervisorError {
  constructor(supervisor: string, problems: string[]) {
    super(SupervisorErrorCode.BAD_CONFIG, `supervisor ${supervisor}: ${problems.join('; ')}`, { details: { supervisor, problems } });
  }
}

export class SupervisorNotRunningError extends SupervisorError {
  constructor(supervisor: string, state: string) {
    super(SupervisorErrorCode.NOT_RUNNING, `supervisor ${supervisor} is ${state}`, { details: { supervisor, state } });
  }
}

export class SupervisorKilledError extends SupervisorError {
  constructor(supervisor: string) {
    super(SupervisorErrorCode.KILLED, `supervisor ${supervisor} was destroyed`, { details: { supervisor } });
  }
}

export class ChildStartFailedError extends SupervisorError {
  constructor(details: { id: string; supervisor?: string; exitCode?: number }, cause?: unknown) {
    super(SupervisorErrorCode.CHILD_START_FAILED, `child ${details.id} failed to start${causeSuffix(cause)}`, { details, cause, retryable: true });
  }
}

export class ChildStartTimeoutError extends SupervisorError {
  constructor(details: { id: string; timeoutMs: number }) {
    super(SupervisorErrorCode.CHILD_START_TIMEOUT, `child ${details.id} not ready within ${details.timeoutMs} ms`, { details, retryable: true });
  }
}

export class ChildCrashedError extends SupervisorError {
  constructor(details: { id: string; threadId?: number }, cause?: unknown) {
    super(SupervisorErrorCode.CHILD_CRASHED, `child ${details.id} crashed${causeSuffix(cause)}`, { details, cause });
  }
}

export class ChildOutOfMemoryError extends SupervisorError {
  constructor(details: { id: string; threadId?: number }, cause?: unknown) {
    super(SupervisorErrorCode.CHILD_OUT_OF_MEMORY, `child ${details.id} ran out of memory`, { details, cause });
  }
}

export class ChildExitedError extends SupervisorError {
  constructor(details: { id: string; threadId?: number; exitCode: number }) {
    super(SupervisorErrorCode.CHILD_EXITED, `child ${details.id} exited unexpectedly with code ${details.exitCode}`, { details });
  }
}

export class ChildKilledError extends SupervisorError {
  constructor(details: { id: string; threadId?: number }) {
    super(SupervisorErrorCode.CHILD_KILLED, `child ${details.id} was destroyed`, { details });
  }
}

export class ChildNotFoundError extends SupervisorError {
  constructor(supervisor: string, id: string) {
    super(SupervisorErrorCode.CHILD_NOT_FOUND, `supervisor ${supervisor} has no child ${id}`, { details: { supervisor, id } });
  }
}

export class ChildAlreadyExistsError extends SupervisorError {
  constructor(supervisor: string, id: string) {
    super(SupervisorErrorCode.CHILD_ALREADY_EXISTS, `supervisor ${supervisor} already has a child ${id}`, { details: { supervisor, id } });
  }
}

export class ChildRunningError extends SupervisorError {
  constructor(supervisor: string, id: string, status: string) {
    super(SupervisorErrorCode.CHILD_RUNNING, `child ${id} of supervisor ${supervisor} is ${status}, not stopped`, { details: { supervisor, id, status } });
  }
}

function causeSuffix(cause: unknown): string {
  return cause instanceof Error ? `: ${cause.message}` : cause === undefined ? '' : `: ${String(cause)}`;
}
