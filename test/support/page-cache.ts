import { spawnSync } from 'node:child_process';

/** Bytes of `file` in the OS page cache, from util-linux's `fincore` (mincore(2)). */
export function residentBytes(file: string): number {
  const r = spawnSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`fincore ${file}: ${r.error?.message ?? r.stderr}`);
  return Number(r.stdout.trim());
}
