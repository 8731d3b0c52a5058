/** Shared pieces of the `weir` client commands (produce, consume, topics). Node-only. */
import fs from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { isWeirError, type ClientTlsOptions } from '../../client/index.js';

export interface CommandIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream;
  /** Stops a long-running command (consume) like SIGINT does; for tests and embedding. */
  signal?: AbortSignal;
  /** Where WEIR_TOKEN, WEIR_USER and WEIR_PASSWORD are read (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>;

/** parseArgs with strict options and positionals; throws UsageError on bad input. */
export function parse<O extends Options>(argv: string[], options: O): ReturnType<typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>> {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

/** The options of every client command that authenticate it to a broker that requires it. */
export const AUTH_OPTIONS = {
  token: { type: 'string' },
  user: { type: 'string' },
} as const;

export const AUTH_USAGE = '[--token T | --user U]';

/**
 * The credentials to connect with: `--token` (else WEIR_TOKEN), or `--user` (else WEIR_USER) with
 * the password from WEIR_PASSWORD or asked on the terminal. Secrets are better kept out of the
 * command line (other users of the machine can read it): prefer the environment.
 */
export async function credentialsOf(values: { token?: string | undefined; user?: string | undefined }, io: CommandIo): Promise<{ token?: string; user?: string; password?: string }> {
  const env = io.env ?? process.env;
  if (values.token !== undefined && values.user !== undefined) throw new UsageError('give --token or --user, not both');
  const token = values.token ?? (values.user === undefined ? nonEmpty(env['WEIR_TOKEN']) : undefined);
  if (token !== undefined) return { token };
  const user = values.user ?? nonEmpty(env['WEIR_USER']);
  if (user === undefined) return {};
  const password = env['WEIR_PASSWORD'] ?? (await askPassword(io, user));
  return { user, password };
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

/** Reads a password from the terminal without echoing it. */
function askPassword(io: CommandIo, user: string): Promise<string> {
  const stdin = io.stdin as NodeJS.ReadStream;
  if (stdin.isTTY !== true || typeof stdin.setRawMode !== 'function') {
    return Promise.reject(new UsageError(`--user ${user} needs a password: set WEIR_PASSWORD (stdin is not a terminal to ask on)`));
  }
  io.stderr.write(`password for ${user}: `);
  return new Promise((resolve, reject) => {
    let password = '';
    const done = (): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      io.stderr.write('\n');
    };
    const onData = (chunk: Buffer | string): void => {
      for (const ch of chunk.toString()) {
        if (ch === '\r' || ch === '\n') {
          done();
          resolve(password);
          return;
        }
        if (ch === '\u0003' || ch === '\u0004') {
          done();
          reject(new UsageError('no password given'));
          return;
        }
        password = ch === '\u007f' || ch === '\b' ? password.slice(0, -1) : password + ch;
      }
    };
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', onData);
  });
}

export function nonNegativeInt(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n)) throw new UsageError(`--${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}

export function describeError(err: unknown): string {
  if (isWeirError(err)) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

/** Run a command body with the shared usage/error handling. */
export async function command(name: string, usage: string, io: CommandIo, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`weir ${name}: ${err.message}\n${usage}`);
      return EXIT_USAGE;
    }
    io.stderr.write(`weir ${name}: ${describeError(err)}\n`);
    return EXIT_FAILURE;
  }
}

/** Write, honouring the stream's back-pressure. */
export function write(stream: NodeJS.WritableStream, text: string): Promise<void> | void {
  if (stream.write(text)) return;
  return new Promise((resolve) => stream.once('drain', () => resolve()));
}

/** The one TOPIC positional of produce/consume, or a usage error that says what is wrong. */
export function singleTopic(positionals: string[]): string {
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'missing TOPIC' : `unexpected arguments: ${positionals.slice(1).join(' ')}`);
  return positionals[0]!;
}

/** `--ca FILE`, of every command that connects. */
export const CA_OPTION = { ca: { type: 'string' } } as const;

/**
 * The SDK's `tls` option from `--ca FILE`, else the WEIR_CA environment variable: the PEM of the CA
 * that signed a `wss://` broker's certificate (a private CA Node does not trust by itself).
 */
export function tlsOptions(caFile: string | undefined): { tls?: ClientTlsOptions } {
  const file = caFile ?? process.env.WEIR_CA;
  if (file === undefined || file === '') return {};
  try {
    return { tls: { ca: fs.readFileSync(file) } };
  } catch (err) {
    throw new Error(`cannot read the CA file ${file} (--ca or WEIR_CA): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
