import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * Worker helpers for the ring's thread tests. Fixtures are plain .mjs that import the COMPILED ring
 * from dist/ (vitest cannot load a .ts worker entry), so refuse to run against a missing or stale
 * build: that would test old code and pass for the wrong reason.
 */

const root = new URL('../../', import.meta.url);

export function assertRingBuilt(): void {
  const srcDir = fileURLToPath(new URL('src/ring/', root));
  const distDir = fileURLToPath(new URL('dist/src/ring/', root));
  const hint = 'run `npx tsc -p tsconfig.build.json` before the ring thread tests';
  for (const file of readdirSync(srcDir).filter((f) => f.endsWith('.ts'))) {
    const built = distDir + file.replace(/\.ts$/, '.js');
    if (!existsSync(built)) throw new Error(`${built} is missing: ${hint}`);
    if (statSync(built).mtimeMs < statSync(srcDir + file).mtimeMs) throw new Error(`${built} is older than its source: ${hint}`);
  }
}

export function fixture(name: string): URL {
  return new URL(`./fixtures/${name}`, import.meta.url);
}

export interface Running<T> {
  worker: Worker;
  /** The worker's first message; rejects if it errors or exits without one. */
  result: Promise<T>;
}

export function startWorker<T>(file: URL, workerData: unknown): Running<T> {
  const worker = new Worker(file, { workerData });
  const result = new Promise<T>((resolve, reject) => {
    worker.once('message', (message: T) => resolve(message));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`worker ${file.pathname} exited with code ${code} before reporting`)));
  });
  // Mark handled now: a test may await it only after checking other results, and an early
  // rejection must not surface as an unhandled rejection meanwhile.
  result.catch(() => {});
  return { worker, result };
}

/** Resolve once `condition()` holds, polling on the event loop; reject after `timeoutMs`. */
export async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}
