/**
 * `weir dlq read TOPIC [--max N]` and `weir dlq redrive TOPIC` (docs/queues.md).
 *
 * read    → one line per dead letter of TOPIC:
 *           `PARTITION OFFSET REASON=… FROM=TOPIC/P/OFFSET GROUP=… DELIVERIES=N KEY VALUE`
 *           (PARTITION OFFSET are the letter's place in the dead-letter topic)
 * redrive → `redriven N TOPIC` (the letters not redriven before go back to TOPIC, for their group)
 */
import { connect, DEFAULT_URL } from '../../client/index.js';
import { CA_OPTION, tlsOptions, EXIT_OK, UsageError, command, nonNegativeInt, parse, write, type CommandIo, AUTH_OPTIONS, AUTH_USAGE, credentialsOf } from './common.js';

const USAGE = `usage: weir dlq [--url ws://127.0.0.1:7070] ${AUTH_USAGE} read TOPIC [--max N] | redrive TOPIC\n`;
const decoder = new TextDecoder();

export async function run(argv: string[], io: CommandIo): Promise<number> {
  return command('dlq', USAGE, io, async () => {
    const { values, positionals } = parse(argv, {
      url: { type: 'string', default: DEFAULT_URL },
      ...CA_OPTION,
      ...AUTH_OPTIONS,
      max: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    });
    if (values.help) {
      await write(io.stdout, USAGE);
      return EXIT_OK;
    }
    const [sub, topic, ...extra] = positionals;
    if (sub !== 'read' && sub !== 'redrive') throw new UsageError(sub === undefined ? 'missing subcommand read|redrive' : `unknown subcommand ${JSON.stringify(sub)}`);
    if (!topic) throw new UsageError(`dlq ${sub} needs a TOPIC`);
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
    const max = nonNegativeInt(values.max, 'max');
    const client = await connect(values.url!, { reconnect: false, ...tlsOptions(values.ca), ...(await credentialsOf(values, io)) });
    try {
      if (sub === 'redrive') {
        const moved = await client.redrive(topic);
        await write(io.stdout, `redriven ${moved} ${topic}\n`);
      } else {
        for (const l of await client.deadLetters(topic, max !== undefined ? { max } : {})) {
          const m = l.message;
          await write(
            io.stdout,
            `${m.partition} ${m.offset} REASON=${JSON.stringify(l.reason)} FROM=${l.topic}/${l.partition}/${l.offset} GROUP=${l.group} DELIVERIES=${l.deliveries} ${m.key ?? ''} ${decoder.decode(m.value)}\n`,
          );
        }
      }
    } finally {
      await client.close();
    }
    return EXIT_OK;
  });
}
