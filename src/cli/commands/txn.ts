/**
 * `weir txn [--url URL] [list [--topic T] [--all] | commit TXN | rollback TXN]`
 *
 * Output (one record per line):
 *   list      → `txn N topic T group G state S messages M age-ms A decided-by D` (D is - while undecided),
 *               open and committing transactions, plus recently finished ones with --all
 *   commit    → `committed N`;  rollback → `rolled_back N`
 */
import { connect, DEFAULT_URL } from '../../client/index.js';
import { CA_OPTION, tlsOptions, EXIT_OK, UsageError, command, parse, write, type CommandIo, AUTH_OPTIONS, AUTH_USAGE, credentialsOf } from './common.js';

const USAGE = `usage: weir txn [--url ws://127.0.0.1:7070] ${AUTH_USAGE} [list [--topic T] [--all] | commit TXN | rollback TXN]\n`;

export async function run(argv: string[], io: CommandIo): Promise<number> {
  return command('txn', USAGE, io, async () => {
    const { values, positionals } = parse(argv, {
      url: { type: 'string', default: DEFAULT_URL },
      ...CA_OPTION,
      ...AUTH_OPTIONS,
      topic: { type: 'string' },
      all: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    });
    if (values.help) {
      await write(io.stdout, USAGE);
      return EXIT_OK;
    }
    const [sub = 'list', id, ...extra] = positionals;
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
    if (sub !== 'list' && sub !== 'commit' && sub !== 'rollback') throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}`);
    if (sub === 'list' && id !== undefined) throw new UsageError('txn list takes no TXN');
    let txn = 0;
    if (sub !== 'list') {
      if (id === undefined || !/^\d+$/.test(id) || !Number.isSafeInteger(Number(id)) || Number(id) < 1) throw new UsageError(`txn ${sub} needs a transaction number TXN`);
      txn = Number(id);
    }
    const client = await connect(values.url!, { reconnect: false, ...tlsOptions(values.ca), ...(await credentialsOf(values, io)) });
    try {
      if (sub === 'list') {
        const now = Date.now();
        const list = await client.listTransactions({ ...(values.topic !== undefined ? { topic: values.topic } : {}), all: values.all === true });
        for (const t of list) {
          await write(io.stdout, `txn ${t.txn} topic ${t.topic} group ${t.producerGroup} state ${t.state} messages ${t.messages} age-ms ${now - t.begunAt} decided-by ${t.decidedBy ?? '-'}\n`);
        }
      } else {
        const state = await client.decideTransaction(txn, sub);
        await write(io.stdout, `${state} ${txn}\n`);
      }
      return EXIT_OK;
    } finally {
      await client.close();
    }
  });
}
