/**
 * What a client (or an operator) is told when something failed because of the disk or the process's
 * limits: the wire code that says what failed, with the errno and the path in the message.
 *
 *   ENOSPC, EDQUOT          → STORAGE_FULL (retryable: space can be freed)
 *   EMFILE, ENFILE          → RESOURCE_LIMIT (out of file descriptors: raise the limit, or remove topics)
 *   any other errno (EPERM, EACCES, EROFS, EIO, ENAMETOOLONG…), a log's STORAGE_ERROR or
 *   LOG_CORRUPT             → STORAGE_ERROR
 *
 * The errno is looked for along the error's `cause` chain: a partition's start failure arrives
 * wrapped by the supervisor (CHILD_START_FAILED), and from a worker thread as a rehydrated error
 * that kept its `code` and `details` ({op, path, errno} for the log's errors).
 */
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, WeirCode } from '../protocol/codes.js';
import { WeirError } from './errors.js';

export interface FailureFacts {
  /** The wire code this failure maps to, or null when it is not a storage or resource failure. */
  code: ErrorCode | null;
  /** The errno name (ENOSPC, EPERM…) when one was found. */
  errno: string | null;
  /** The operation (open, write, mkdir…) and file, when known. */
  op: string | null;
  path: string | null;
  /** The innermost message (the one that names the cause, not its wrappers). */
  message: string;
}

const ERRNO = /^E[A-Z0-9]+$/;

export function failureFacts(err: unknown): FailureFacts {
  let errno: string | null = null;
  let op: string | null = null;
  let file: string | null = null;
  let logCode: string | null = null;
  let message = err instanceof Error ? err.message : String(err);
  let link: unknown = err;
  for (let depth = 0; link !== undefined && link !== null && depth < 10; depth++) {
    const l = link as { code?: unknown; details?: Record<string, unknown>; path?: unknown; syscall?: unknown; message?: unknown; cause?: unknown };
    if (typeof l.message === 'string') message = l.message;
    const d = l.details;
    if (d !== undefined) {
      if (errno === null && typeof d.errno === 'string' && ERRNO.test(d.errno)) errno = d.errno;
      if (op === null && typeof d.op === 'string') op = d.op;
      if (file === null && typeof d.path === 'string') file = d.path;
    }
    if (typeof l.code === 'string') {
      if (errno === null && ERRNO.test(l.code)) errno = l.code;
      if (l.code === ErrorCode.STORAGE_FULL || l.code === ErrorCode.STORAGE_ERROR || l.code === WeirCode.LOG_CORRUPT) logCode ??= l.code;
    }
    if (op === null && typeof l.syscall === 'string') op = l.syscall;
    if (file === null && typeof l.path === 'string') file = l.path;
    link = l.cause;
  }
  let code: ErrorCode | null = null;
  if (errno === 'ENOSPC' || errno === 'EDQUOT' || (errno === null && logCode === ErrorCode.STORAGE_FULL)) code = ErrorCode.STORAGE_FULL;
  else if (errno === 'EMFILE' || errno === 'ENFILE') code = ErrorCode.RESOURCE_LIMIT;
  else if (errno !== null || logCode !== null) code = ErrorCode.STORAGE_ERROR;
  return { code, errno, op, path: file, message };
}

/**
 * The error to answer with when `what` (e.g. "cannot create topic orders") failed because of
 * `err`; `fallback` when `err` is not a storage or resource failure.
 */
export function storageFailure(what: string, err: unknown, fallback: (facts: FailureFacts) => WeirError): WeirError {
  const facts = failureFacts(err);
  if (facts.code === null) return fallback(facts);
  const where = facts.path === null ? '' : ` (${facts.op ?? 'on'} ${facts.path})`;
  const hint =
    facts.code === ErrorCode.RESOURCE_LIMIT
      ? ': the broker process is out of file descriptors; raise its limit (ulimit -n) or delete topics'
      : facts.code === ErrorCode.STORAGE_FULL
        ? ': the disk is full; retry once space is freed'
        : '';
  const errno = facts.errno ?? facts.code;
  return new WeirError(facts.code, `${what}: ${errno}${where}${hint}: ${facts.message}`, {
    retryable: facts.code === ErrorCode.STORAGE_FULL,
    details: { errno, ...(facts.path === null ? {} : { path: facts.path }) },
    cause: err,
  });
}

/**
 * After a recursive mkdir of `dir` failed: the error of the first directory on the way that cannot
 * be made (or an ENOTDIR for an ancestor that is a file); null if it can be made after all.
 */
export function mkdirFailure(dir: string): unknown {
  const missing: string[] = [];
  let at = path.resolve(dir);
  for (;;) {
    let st: fs.Stats | null = null;
    try {
      st = fs.statSync(at);
    } catch {
      st = null;
    }
    if (st !== null) {
      if (!st.isDirectory()) return Object.assign(new Error(`${at} is not a directory`), { code: 'ENOTDIR', syscall: 'mkdir', path: at });
      break;
    }
    missing.push(at);
    const up = path.dirname(at);
    if (up === at) break;
    at = up;
  }
  for (const d of missing.reverse()) {
    try {
      fs.mkdirSync(d);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return err;
    }
  }
  return null;
}
