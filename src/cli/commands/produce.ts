/**
 * `weir produce TOPIC [--url URL] [--key K | --key-sep SEP] [--header k=v ...] [--partition P] [--idempotent]`
 *
 * Reads stdin, one message per line (the line is the value, UTF-8). With `--key-sep :` a line
 * `k:v` is key `k`, value `v` (lines without the separator have no key, or `--key`). Messages are
 * batched by the SDK; at the end prints `acked N messages` and, if any, `last: partition P offset O`
 * (the ack of the last line). Exit code 1 if any message could not be produced. `--idempotent`
 * uses an idempotent producer (docs/exactly-once.md): retried batches are never stored twice.
 */
import { createInterface } from 'node:readline';
import { connect, DEFAULT_URL, type Ack } from '../../client/index.js';
import { CA_OPTION, tlsOptions, EXIT_FAILURE, EXIT_OK, UsageError, command, describeError, nonNegativeInt, parse, write, type CommandIo, singleTopic, AUTH_OPTIONS, AUTH_USAGE, credentialsOf } from './common.js';
import { TIME_OPTIONS, TIME_USAGE, timeFields } from './time-options.js';

const USAGE = `usage: weir produce TOPIC [--url ws://127.0.0.1:7070] ${AUTH_USAGE} [--key K | --key-sep SEP] [--header k=v ...] [--partition P] [--idempotent] ${TIME_USAGE}   (one message per stdin line)\n`;
/** produce() calls awaiting their acks at most; reading stdin pauses beyond it. */
const MAX_PENDING = 4096;

export async function run(argv: string[], io: CommandIo): Promise<number> {
  return command('produce', USAGE, io, async () => {
    const { values, positionals } = parse(argv, {
      url: { type: 'string', default: DEFAULT_URL },
      ...CA_OPTION,
      ...AUTH_OPTIONS,
      key: { type: 'string', short: 'k' },
      'key-sep': { type: 'string' },
      header: { type: 'string', short: 'H', multiple: true },
      partition: { type: 'string', short: 'p' },
      idempotent: { type: 'boolean' },
      ...TIME_OPTIONS,
      help: { type: 'boolean', short: 'h' },
    });
    if (values.help) {
      await write(io.stdout, USAGE);
      return EXIT_OK;
    }
    const topic = singleTopic(positionals);
    const keySep = values['key-sep'];
    if (keySep === '') throw new UsageError('--key-sep must not be empty');
    const headers: Record<string, string> = {};
    for (const h of values.header ?? []) {
      const eq = h.indexOf('=');
      if (eq <= 0) throw new UsageError(`--header must be k=v, got ${JSON.stringify(h)}`);
      headers[h.slice(0, eq)] = h.slice(eq + 1);
    }
    const hasHeaders = Object.keys(headers).length > 0;
    const partition = nonNegativeInt(values.partition, 'partition');
    const timing = timeFields(values); // time: every line delayed / expiring alike
    if (values.idempotent === true && (timing.delay !== undefined || timing.deliverAt !== undefined)) {
      // A delayed message goes to the schedule log, outside the partition's sequence check.
      throw new UsageError('--idempotent cannot send delayed messages (--delay / --deliver-at); --ttl and --expires-at are fine');
    }

    const client = await connect(values.url!, { ...tlsOptions(values.ca), ...(await credentialsOf(values, io)), ...(values.idempotent === true ? { idempotent: true } : {}) });
    let acked = 0;
    let lastIndex = -1;
    let last: Ack | undefined;
    let failure: unknown;
    const pending = new Set<Promise<void>>();
    try {
      const lines = createInterface({ input: io.stdin, crlfDelay: Infinity });
      let index = 0;
      for await (const line of lines) {
        if (failure !== undefined) break;
        let key: string | undefined = values.key;
        let value = line;
        if (keySep !== undefined) {
          const at = line.indexOf(keySep);
          if (at >= 0) {
            key = line.slice(0, at);
            value = line.slice(at + keySep.length);
          }
        }
        const i = index++;
        const p = client
          .produce(topic, [{ key, value, ...(hasHeaders ? { headers } : {}), ...timing }], partition === undefined ? {} : { partition })
          .then(
            ([ack]) => {
              acked++;
              if (i > lastIndex) {
                lastIndex = i;
                last = ack;
              }
            },
            (err: unknown) => {
              failure ??= err;
            },
          )
          .finally(() => pending.delete(p));
        pending.add(p);
        if (pending.size >= MAX_PENDING) await Promise.race(pending);
      }
      lines.close();
      await Promise.all(pending);
    } finally {
      await client.close();
    }
    await write(io.stdout, `acked ${acked} messages${last ? `; last: partition ${last.partition} offset ${last.offset}${last.scheduled ? ' (delayed: an offset of the schedule log)' : ''}${last.duplicate ? ' (a resend of a message stored earlier; its offset is unknown)' : ''}` : ''}\n`);
    if (failure !== undefined) {
      io.stderr.write(`weir produce: ${describeError(failure)}\n`);
      return EXIT_FAILURE;
    }
    return EXIT_OK;
  });
}
