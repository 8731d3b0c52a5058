// Writes docs/errors.md from the error-code registry (src/protocol/error-codes.ts), through the
// built renderer: run as `npm run docs:errors` (which builds first).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { renderErrorsDoc } = await import(path.join(root, 'dist/src/protocol/errors-doc.js'));
const file = path.join(root, 'docs/errors.md');
fs.writeFileSync(file, renderErrorsDoc());
console.log(`wrote ${path.relative(root, file)}`);
