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
