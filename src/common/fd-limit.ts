/**
 * The process's open-file limit and usage, from /proc (Linux): a broker refuses a new topic with
 * RESOURCE_LIMIT before it would run out of file descriptors, instead of failing half-way through
 * the topic's creation with EMFILE. Elsewhere both read as null and nothing is refused.
 */
import fs from 'node:fs';

/** The soft limit on open files (`ulimit -n`), read now (it can be raised while running); null if unknown or unlimited. */
export function openFileLimit(): number | null {
  let text: string;
  try {
    text = fs.readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return null;
  }
  const m = /^Max open files\s+(\S+)/m.exec(text);
  if (m === null || m[1] === 'unlimited') return null;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

/** File descriptors open in this process now (every thread's); null if unknown. */
export function openFileCount(): number | null {
  try {
    // The directory listing itself holds one fd while it is read.
    return fs.readdirSync('/proc/self/fd').length - 1;
  } catch {
    return null;
  }
}

/**
 * Fds kept free when deciding whether a new topic fits: for connections, partitions that become
 * active (2 each: their active segment's .log and .index) and files opened in passing.
 */
export function reservedFds(limit: number): number {
  return Math.max(32, Math.ceil(limit / 10));
}
