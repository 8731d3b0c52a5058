import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';

/**
 * Worker threads cannot load a `.ts` entry (vitest #3234), so every worker runs from the compiled
 * `dist/` tree. When the caller itself is TypeScript (tests running from `src/`), map
 * `<root>/src/x/y.ts` to `<root>/dist/src/x/y.js`; compiled callers resolve next to themselves.
 */
export function workerEntry(relativeToCaller: string, callerUrl: string): URL {
  const callerPath = fileURLToPath(callerUrl);
  const target = path.resolve(path.dirname(callerPath), relativeToCaller);
  if (!callerPath.endsWith('.ts')) return pathToFileURL(target.replace(/\.ts$/, '.js'));
  const marker = `${path.sep}src${path.sep}`;
  const at = target.lastIndexOf(marker);
  if (at < 0) throw new Error(`workerEntry: ${target} is not under src/`);
  const root = target.slice(0, at);
  const rest = target.slice(at + 1).replace(/\.ts$/, '.js');
  return pathToFileURL(path.join(root, 'dist', rest));
}
