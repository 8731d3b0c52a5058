import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

/**
 * A tiny real file system for tests of a full (or read-only) disk: tmpfs mounted on `dir` (needs
 * root / CAP_SYS_ADMIN; `canMount` says whether this machine allows it, so tests can skip).
 */
export function tryMount(dir: string, size: string, options: { readOnly?: boolean } = {}): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `${options.readOnly ? 'ro,' : ''}size=${size}`, 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function unmount(dir: string): void {
  execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
}

export const canMount = ((): boolean => {
  const probe = fs.mkdtempSync(os.tmpdir() + '/weir-tmpfs-probe-');
  try {
    if (!tryMount(probe, '64k')) return false;
    unmount(probe);
    return true;
  } finally {
    fs.rmdirSync(probe);
  }
})();
