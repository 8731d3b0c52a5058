/**
 * How expensive an fdatasync is on the disk the servers write to (the OS temp dir): the fsync
 * settings only matter as much as this costs, so the report states it. 4 KiB appends, each
 * followed by fdatasync, as a WAL with `always` does.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface DiskProbe {
  dir: string;
  appends: number;
  p50Ms: number;
  p99Ms: number;
}

export function probeFdatasync(appends = 300, dir = os.tmpdir()): DiskProbe {
  const d = fs.mkdtempSync(path.join(dir, 'weir-peer-fsync-'));
  const file = path.join(d, 'probe');
  const fd = fs.openSync(file, 'w');
  const buf = Buffer.alloc(4096, 0x5a);
  const t: number[] = [];
  try {
    for (let i = 0; i < appends; i++) {
      const t0 = performance.now();
      fs.writeSync(fd, buf);
      fs.fdatasyncSync(fd);
      t.push(performance.now() - t0);
    }
  } finally {
    fs.closeSync(fd);
    fs.rmSync(d, { recursive: true, force: true });
  }
  t.sort((a, b) => a - b);
  const q = (p: number): number => Math.round(t[Math.min(t.length - 1, Math.floor(p * t.length))]! * 1000) / 1000;
  return { dir, appends, p50Ms: q(0.5), p99Ms: q(0.99) };
}
