/**
 * `weir groups reset GROUP TOPIC (--to-earliest | --to-latest | --to-offset N | --to-timestamp ISO|MS) [--url URL]`
 *
 * Replay: moves the group's committed offsets of TOPIC (every partition); live members of the group
 * are rebalanced and restart from them. Prints `partition P offset O` per partition. Log-mode
 * groups only (queue-mode groups track deliveries per message, not an offset).
 */
import { connect, DEFAULT_URL, type ResetTarget } from '../../client/index.js';
import { CA_OPTION, tlsOptions, EXIT_OK, UsageError, command, nonNegativeInt, parse, write, type CommandIo, AUTH_OPTIONS, AUTH_USAGE, credentialsOf } from './common.js';

const USAGE = `usage: weir groups reset GROUP TOPIC (--to-earliest | --to-latest | --to-offset N | --to-timestamp ISO|MS) [--url ws://127.0.0.1:7070] ${AUTH_USAGE}\n`;

export function parseTimestamp(v: string): number {
  const ms = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(ms) || ms < 0) throw new UsageError(`--to-timestamp must be ms since the epoch or an ISO date, got ${JSON.stringify(v)}`);
  return ms;
}

export async function run(argv: string[], io: CommandIo): Promise<number> {
  return command('groups', USAGE, io, async () => {
    const { values, positionals } = parse(argv, {
      url: { type: 'string', default: DEFAULT_URL },
      ...CA_OPTION,
      ...AUTH_OPTIONS,
      'to-earliest': { type: 'boolean' },
      'to-latest': { type: 'boolean' },
      'to-offset': { type: 'string' },
      'to-timestamp': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    });
    if (values.help) {
      await write(io.stdout, USAGE);
      return EXIT_OK;
    }
    const [sub, group, topic, ...extra] = positionals;
    if (sub !== 'reset') throw new UsageError(sub === undefined ? 'missing subcommand (reset)' : `unknown subcommand ${JSON.stringify(sub)}`);
    if (!group || !topic) throw new UsageError('groups reset needs GROUP and TOPIC');
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
    const targets: ResetTarget[] = [];
    if (values['to-earliest']) targets.push('earliest');
    if (values['to-latest']) targets.push('latest');
    if (values['to-offset'] !== undefined) targets.push({ offset: nonNegativeInt(values['to-offset'], 'to-offset')! });
    if (values['to-timestamp'] !== undefined) targets.push({ timestamp: parseTimestamp(values['to-timestamp']) });
    if (targets.length !== 1) throw new UsageError('give exactly one of --to-earliest, --to-latest, --to-offset, --to-timestamp');

    const client = await connect(values.url!, { reconnect: false, ...tlsOptions(values.ca), ...(await credentialsOf(values, io)) });
    try {
      const offsets = await client.resetOffsets(group, topic, targets[0]!);
      for (const [p, o] of offsets) await write(io.stdout, `partition ${p} offset ${o}\n`);
    } finally {
      await client.close();
    }
    return EXIT_OK;
  });
}
