/**
 * `weir topics [--url URL] [list | create NAME [--partitions N] | describe NAME]`
 *
 * Output (one record per line, space-separated):
 *   list      → `NAME PARTITIONS`
 *   create    → `created NAME PARTITIONS` or `exists NAME PARTITIONS`
 *   describe  → `topic NAME partitions N`, then `partition P start S end E` per partition
 */
import { connect, DEFAULT_URL } from '../../client/index.js';
import { CA_OPTION, tlsOptions, EXIT_OK, UsageError, command, nonNegativeInt, parse, write, type CommandIo, AUTH_OPTIONS, AUTH_USAGE, credentialsOf } from './common.js';

const USAGE = `usage: weir topics [--url ws://127.0.0.1:7070] ${AUTH_USAGE} [list | create NAME [--partitions N] | describe NAME]\n`;

export async function run(argv: string[], io: CommandIo): Promise<number> {
  return command('topics', USAGE, io, async () => {
    const { values, positionals } = parse(argv, {
      url: { type: 'string', default: DEFAULT_URL },
      ...CA_OPTION,
      ...AUTH_OPTIONS,
      partitions: { type: 'string', short: 'p' },
      help: { type: 'boolean', short: 'h' },
    });
    if (values.help) {
      await write(io.stdout, USAGE);
      return EXIT_OK;
    }
    const [sub = 'list', name, ...extra] = positionals;
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
    if (sub !== 'list' && sub !== 'create' && sub !== 'describe') throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}`);
    if (sub !== 'list' && !name) throw new UsageError(`topics ${sub} needs a topic NAME`);
    if (sub === 'list' && name) throw new UsageError('topics list takes no NAME');
    const partitions = nonNegativeInt(values.partitions, 'partitions') ?? 1;
    if (sub === 'create' && partitions < 1) throw new UsageError('--partitions must be at least 1');

    const client = await connect(values.url!, { reconnect: false, ...tlsOptions(values.ca), ...(await credentialsOf(values, io)) });
    try {
      if (sub === 'list') {
        const topics = await client.listTopics();
        for (const t of topics.sort((a, b) => a.topic.localeCompare(b.topic))) await write(io.stdout, `${t.topic} ${t.partitions}\n`);
      } else if (sub === 'create') {
        const r = await client.createTopic(name!, { partitions });
        await write(io.stdout, `${r.created ? 'created' : 'exists'} ${r.topic} ${r.partitions}\n`);
      } else {
        const d = await client.describeTopic(name!);
        await write(io.stdout, `topic ${d.topic} partitions ${d.partitions}\n`);
        for (const o of d.offsets) await write(io.stdout, `partition ${o.partition} start ${o.start} end ${o.end} on ${o.host}\n`);
      }
      return EXIT_OK;
    } finally {
      await client.close();
    }
  });
}
