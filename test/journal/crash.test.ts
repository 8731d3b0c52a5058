/**
 * A process killed (SIGKILL) at the journal's two crash points, in a child process running the
 * built journal: between an entry's write and its fdatasync (`always`), and in the middle of a
 * write. Every acknowledged entry survives, nothing half-written is replayed, a cut entry is
 * reported as a torn tail, and the next append follows the last whole entry. Needs `npm run build`.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { Journal, readJournalFile } from '../../src/journal/index.js';
import { tmpDir } from '../support/tmp-dir.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const built = path.join(root, 'dist', 'src', 'journal', 'index.js');

let tmp: ReturnType<typeof tmpDir>;
beforeEach(() => {
  tmp = tmpDir('weir-journal-crash-');
});
afterEach(() => tmp.cleanup());

/**
 * The child appends entries 0..acked-1 (each acknowledged on stdout), then arms the crash point and
 * appends one more: at the point it prints "crash" and waits to be killed.
 */
const CHILD = `
import fs from 'node:fs';
const [file, flavour, point, acked] = process.argv.slice(1);
const { Journal } = await import(${JSON.stringify(built)});
const { journal } = Journal.open({ file, fsync: { mode: 'always' }, io: flavour }, (b) => b);
const entry = (k) => new TextEncoder().encode(JSON.stringify({ k, pad: 'x'.repeat(100) }));
const hang = () => {
  process.stdout.write('crash\\n');
  const cell = new Int32Array(new SharedArrayBuffer(4));
  for (;;) Atomics.wait(cell, 0, 0, 1000);
};
for (let k = 0; k < Number(acked); k++) {
  if (flavour === 'sync') journal.appendSync([entry(k)]);
  else await journal.append(entry(k));
  process.stdout.write('acked ' + k + '\\n');
}
const realWriteSync = fs.writeSync;
if (point === 'before-sync') {
  fs.fdatasyncSync = hang;
  fs.fdatasync = hang;
} else {
  const half = (fd, b, off, len) => {
    realWriteSync(fd, b, off, Math.floor(len / 2));
    hang();
  };
  if (flavour === 'sync') fs.writeSync = half;
  else fs.write = half;
}
if (flavour === 'sync') journal.appendSync([entry(Number(acked))]);
else await journal.append(entry(Number(acked)));
process.stdout.write('not killed\\n');
`;

async function crashChild(file: string, flavour: 'sync' | 'async', point: 'before-sync' | 'mid-write', acked: number): Promise<number> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, file, flavour, point, String(acked)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let ackedSeen = 0;
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      ackedSeen = (out.match(/^acked /gm) ?? []).length;
      if (out.includes('crash\n')) {
        child.kill('SIGKILL');
        resolve();
      }
    });
    child.on('exit', (code) => (out.includes('crash\n') ? undefined : reject(new Error(`child exited (${code}) before its crash point: ${out}`))));
  });
  await new Promise((r) => child.once('exit', r));
  return ackedSeen;
}

const k = (b: Uint8Array): number => (JSON.parse(new TextDecoder().decode(b)) as { k: number }).k;

for (const flavour of ['sync', 'async'] as const) {
  it(`${flavour}: killed between the write and the fdatasync, every acknowledged entry is replayed and the file is whole`, async () => {
    const file = path.join(tmp.dir, 'crash.journal');
    expect(await crashChild(file, flavour, 'before-sync', 20)).toBe(20);
    const { journal, entries, recovery } = Journal.open({ file, fsync: { mode: 'always' }, io: 'sync' }, (b) => k(b));
    // The 21st was written but not synced when the process died: the page cache kept it whole
    // (only a power loss could drop it), so it may be replayed; it was never acknowledged.
    expect(entries.slice(0, 20)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(entries.length === 20 || entries[20] === 20).toBe(true);
    expect(recovery).toMatchObject({ skipped: 0, truncatedBytes: 0 });
    journal.appendSync([new TextEncoder().encode(JSON.stringify({ k: 99 }))]);
    journal.closeSync();
    expect(readJournalFile(file).payloads.map(k).at(-1)).toBe(99);
  });

  it(`${flavour}: killed in the middle of a write, the cut entry is a torn tail, reported and cut; the next append follows the last whole entry`, async () => {
    const file = path.join(tmp.dir, 'crash.journal');
    expect(await crashChild(file, flavour, 'mid-write', 20)).toBe(20);
    const sizeAtCrash = fs.statSync(file).size;
    const { journal, entries, recovery } = Journal.open({ file, fsync: { mode: 'always' }, io: 'sync' }, (b) => k(b));
    expect(entries).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(recovery.truncatedBytes).toBeGreaterThan(0);
    expect(recovery.positions).toEqual([sizeAtCrash - recovery.truncatedBytes]);
    journal.appendSync([new TextEncoder().encode(JSON.stringify({ k: 20 }))]);
    journal.closeSync();
    const after = readJournalFile(file);
    expect(after).toMatchObject({ damaged: [], tornBytes: 0 });
    expect(after.payloads.map(k)).toEqual(Array.from({ length: 21 }, (_, i) => i));
  });
}
