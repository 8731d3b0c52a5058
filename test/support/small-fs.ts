/**
 * A real full disk for tests: a tiny tmpfs mounted on a fresh directory (needs root or
 * CAP_SYS_ADMIN; `canMountTmpfs` is false otherwise, and such tests skip).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

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

export const canMountTmpfs: boolean = (() => {
  const probe = fs.mkdtempSync(os.tmpdir() + '/weir-tmpfs-probe-');
  try {
    if (!tryMount(probe, '64k')) return false;
    unmount(probe);
    return true;
  } finally {
    fs.rmdirSync(probe);
  }
})();

/** Mount a tmpfs of `size` (e.g. '4m') on a new directory; `cleanup()` unmounts and removes it. */
export function smallFs(size: string): { dir: string; cleanup(): void } {
  const dir = fs.mkdtempSync(os.tmpdir() + '/weir-tmpfs-');
  if (!tryMount(dir, size)) {
    fs.rmdirSync(dir);
    throw new Error(`mounting a ${size} tmpfs failed`);
  }
  return {
    dir,
    cleanup: () => {
      unmount(dir);
      fs.rmdirSync(dir);
    },
  };
}

/**
 * Fill the file system holding `dir` with a file (returned) until a write fails with ENOSPC. The
 * last blocks may still hold a few bytes of other files' partly used pages.
 */
export function fillDisk(dir: string): string {
  const file = path.join(dir, `filler-${process.pid}-${Date.now()}`);
  const fd = fs.openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 0x66);
  try {
    for (let size = chunk.length; size >= 1; size = Math.floor(size / 2)) {
      for (;;) {
        try {
          if (fs.writeSync(fd, chunk, 0, size) < size) break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
          break;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return file;
}
