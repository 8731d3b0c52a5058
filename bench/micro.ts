/**
 * Runs every microbenchmark (one file per module, each against its baseline) in sequence:
 *   npm run bench:micro [-- --time=ms]
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const files = ['common/crc32c.bench.js', 'common/id-table.bench.js', 'common/copy-bytes.bench.js', 'protocol/codec.bench.js', 'protocol/plain-frame-decoder.bench.js', 'protocol/seal-records.bench.js', 'protocol/verify-records.bench.js', 'core/router.bench.js', 'gateway/deliver-frame.bench.js', 'ring/spsc.bench.js', 'log/append.bench.js'];
let failed = 0;
for (const f of files) {
  console.log(`\n=== ${f}`);
  const r = spawnSync(process.execPath, [path.join(here, f), ...process.argv.slice(2)], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exitCode = failed ? 1 : 0;
