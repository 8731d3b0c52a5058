#!/usr/bin/env node
// The CLI runs from the compiled tree: `npm run build` (npm start and npm test do it) first.
import { main } from '../dist/src/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code;
  },
  (err) => {
    console.error(`weir: ${err && err.message ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
