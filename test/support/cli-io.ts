import { PassThrough, Readable } from 'node:stream';

/** In-memory stdin/stdout/stderr for running a CLI command in-process; `out()`/`err()` read what it wrote. */
export interface CliIo {
  stdout: PassThrough;
  stderr: PassThrough;
  stdin: Readable;
  out: () => string;
  err: () => string;
}

export function cliIo(input = ''): CliIo {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let o = '';
  let e = '';
  stdout.on('data', (d: Buffer) => (o += d.toString()));
  stderr.on('data', (d: Buffer) => (e += d.toString()));
  return { stdout, stderr, stdin: Readable.from([input]), out: () => o, err: () => e };
}
