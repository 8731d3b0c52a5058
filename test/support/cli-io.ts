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

/**
 * A CliIo whose stdin looks like a terminal (isTTY, setRawMode, recorded in `rawMode`) and types
 * each queued answer, a key at a time as a terminal in raw mode sends them, once its prompt has
 * appeared on stderr.
 */
export function terminalIo(): { io: CliIo; rawMode: boolean[]; answer(prompt: string, typed: string): void } {
  const rawMode: boolean[] = [];
  const stdin = Object.assign(new PassThrough(), {
    isTTY: true,
    setRawMode(raw: boolean) {
      rawMode.push(raw);
      return stdin;
    },
  });
  const io: CliIo = { ...cliIo(), stdin };
  const answers: [string, string][] = [];
  let seen = 0;
  io.stderr.on('data', () => {
    const err = io.err();
    while (answers.length > 0) {
      const at = err.indexOf(answers[0]![0], seen);
      if (at < 0) return;
      seen = at + answers[0]![0].length;
      const typed = answers.shift()![1];
      setImmediate(() => {
        for (const ch of `${typed}\r`) stdin.write(ch);
      });
    }
  });
  return { io, rawMode, answer: (prompt, typed) => answers.push([prompt, typed]) };
}
