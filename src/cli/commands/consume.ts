/**
 * `weir consume TOPIC [--url URL] [--group G] [--from earliest|latest|OFFSET|@TIMESTAMP] [--count N]`
 *
 * Prints one line per message: `PARTITION OFFSET KEY VALUE` (key empty when absent, value as UTF-8).
 * With `--count N` it stops after N messages (committing them for a group) and exits 0; otherwise
 * it runs until SIGINT/SIGTERM (or `io.signal`), then commits and exits 0.
 * With `--pattern P` it consumes every topic matching P (and those created later) and each line
 * starts with the topic. `@TIMESTAMP` is ms since the epoch or an ISO date (`@2024-05-01T00:00:00Z`).
 * `--queue` (with `--group`) consumes as a work queue (docs/queues.md): each printed message is acked;
 * `--prefetch N` bounds the messages held unacknowledged (default 100).
 */
import { connect, DEFAULT_URL, type ClientOptions, type Message, type StartPosition, type WeirClientError } from '../../client/index.js';
import { CA_OPTION, tlsOptions, EXIT_OK, UsageError, command, describeError, nonNegativeInt, parse, write, type CommandIo, singleTopic, AUTH_OPTIONS, AUTH_USAGE, credentialsOf } from './common.js';

const USAGE = `usage: weir consume (TOPIC | --pattern PATTERN) [--url ws://127.0.0.1:7070] ${AUTH_USAGE} [--group G] [--from earliest|latest|OFFSET|@TIMESTAMP] [--count N] [--queue [--prefetch N]]\n`;

/** Thrown by the handler once --count is reached: the message is not processed, so not committed. */
const STOP = Symbol('stop');
const decoder = new TextDecoder();

export function parseFrom(v: string | undefined): StartPosition | undefined {
  if (v === undefined) return undefined;
  if (v === 'earliest' || v === 'latest') return v;
  if (/^\d+$/.test(v)) return { offset: Number(v) };
  if (v.startsWith('@')) {
    const t = v.slice(1);
    const ms = /^\d+$/.test(t) ? Number(t) : Date.parse(t);
    if (!Number.isFinite(ms) || ms < 0) throw new UsageError(`--from @TIMESTAMP must be ms since the epoch or an ISO date, got ${JSON.stringify(v)}`);
    return { timestamp: ms };
  }
  throw new UsageError(`--from must be earliest, latest, OFFSET or @TIMESTAMP, got ${JSON.stringify(v)}`);
}

export async function run(argv: string[], io: CommandIo): Promise<number> {
  return command('consume', USAGE, io, async () => {
    const { values, positionals } = parse(argv, {
      url: { type: 'string', default: DEFAULT_URL },
      ...CA_OPTION,
      ...AUTH_OPTIONS,
      group: { type: 'string', short: 'g' },
      from: { type: 'string' },
      count: { type: 'string', short: 'n' },
      pattern: { type: 'string', short: 'p' },
      queue: { type: 'boolean', default: false },
      prefetch: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    });
    if (values.help) {
      await write(io.stdout, USAGE);
      return EXIT_OK;
    }
    // With --pattern (every matching topic), lines start with the topic: `TOPIC PARTITION OFFSET KEY VALUE`.
    const pattern = values.pattern;
    if (pattern !== undefined && positionals.length > 0) throw new UsageError('give a TOPIC or --pattern, not both');
    const topic = pattern === undefined ? singleTopic(positionals) : '';
    const from = parseFrom(values.from);
    const count = nonNegativeInt(values.count, 'count');
    if (count === 0) return EXIT_OK;
    const auth = await credentialsOf(values, io);
    if (values.queue) return consumeQueue(topic, { url: values.url!, ...tlsOptions(values.ca), ...auth }, values.group, from, count, nonNegativeInt(values.prefetch, 'prefetch'), io);
    if (values.prefetch !== undefined) throw new UsageError('--prefetch needs --queue');

    const client = await connect(values.url!, { ...tlsOptions(values.ca), ...auth });
    let printed = 0;
    const { stopped, stop, dispose } = stopOnSignal(io);
    try {
      const options = {
        ...(values.group !== undefined ? { group: values.group } : {}),
        ...(from !== undefined ? { from } : {}),
        // With --count, do not let the broker send far more than will be printed.
        ...(count !== undefined ? { credits: Math.max(1, Math.min(1000, count)) } : {}),
        onError: (err: WeirClientError) => {
          if (err.cause !== STOP) io.stderr.write(`weir consume: ${describeError(err)}\n`);
        },
      };
      const handler = async (m: Message): Promise<void> => {
        // Reserve the slot before any await: partitions interleave at awaits.
        if (count !== undefined && printed >= count) throw STOP;
        printed++;
        await write(io.stdout, `${pattern === undefined ? '' : `${m.topic} `}${m.partition} ${m.offset} ${m.key ?? ''} ${decoder.decode(m.value)}\n`);
        if (count !== undefined && printed >= count) stop();
      };
      const sub = pattern === undefined ? await client.subscribe(topic, options, handler) : await client.subscribePattern(pattern, options, handler);
      await stopped;
      await sub.close(); // waits for running handlers, commits (groups), unsubscribes
    } finally {
      dispose();
      await client.close();
    }
    return EXIT_OK;
  });
}

/** `--queue`: print and ack each message; the ones beyond --count are left to the group's other consumers. */
async function consumeQueue(
  topic: string,
  target: ClientOptions,
  group: string | undefined,
  from: StartPosition | undefined,
  count: number | undefined,
  prefetch: number | undefined,
  io: CommandIo,
): Promise<number> {
  if (group === undefined) throw new UsageError('--queue needs --group G');
  if (from !== undefined && from !== 'earliest' && from !== 'latest') throw new UsageError('--queue starts a new group at --from earliest (default) or latest');
  if (prefetch === 0) throw new UsageError('--prefetch must be at least 1');
  const client = await connect(target);
  let printed = 0;
  const { stopped, stop, dispose } = stopOnSignal(io);
  try {
    const sub = await client.subscribe(
      topic,
      {
        mode: 'queue',
        group,
        ...(from !== undefined ? { from } : {}),
        prefetch: prefetch ?? (count !== undefined ? Math.max(1, Math.min(100, count)) : 100),
        autoAck: false,
        onError: (err: WeirClientError) => io.stderr.write(`weir consume: ${describeError(err)}\n`),
      },
      async (m) => {
        if (count !== undefined && printed >= count) return; // left unacked: released when we leave
        printed++;
        const redelivered = m.deliveryCount > 1 ? ` (delivery ${m.deliveryCount})` : '';
        await write(io.stdout, `${m.partition} ${m.offset} ${m.key ?? ''} ${decoder.decode(m.value)}${redelivered}\n`);
        m.ack();
        if (count !== undefined && printed >= count) stop();
      },
    );
    await stopped;
    await sub.close(); // sends the acks, leaves the group
  } finally {
    dispose();
    await client.close();
  }
  return EXIT_OK;
}

/** `stopped` resolves on SIGINT, SIGTERM, `io.signal`'s abort, or `stop()`; `dispose()` removes the listeners. */
function stopOnSignal(io: CommandIo): { stopped: Promise<void>; stop: () => void; dispose: () => void } {
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const onSignal = (): void => stop();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  io.signal?.addEventListener('abort', onSignal, { once: true });
  const dispose = (): void => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    io.signal?.removeEventListener('abort', onSignal);
  };
  return { stopped, stop, dispose };
}
