/**
 * `weir verify DATA_DIR [--topic T] [--partition N] [--json]`: check every segment of every
 * partition (internal topics included) of a broker's data directory, offline and read-only
 * (src/log/verify.ts), and say what it finds: one line per clean partition, details for the others,
 * and a total. `--json` prints one JSON document instead.
 *
 * Exit code: 0 when everything checks out; 1 when something was found (damage, a torn tail, a gap
 * or overlap between segments, an index problem, a partition topics.json lists without its
 * directory, an unreadable topics.json); 2 on a usage error or when a directory or file could not
 * be read (named on stderr; the rest is still checked).
 */
import fs from 'node:fs';
import path from 'node:path';
import { verifyPartitionDir, type PartitionVerdict } from '../../log/verify.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError, command, nonNegativeInt, parse, write, type CommandIo } from './common.js';

const USAGE = `usage: weir verify DATA_DIR [--topic T] [--partition N] [--json]
  Checks every segment of every partition in DATA_DIR (internal topics too) record by record
  (length, magic, offset sequence, CRC32C) and its index, without writing anything, and reports
  damaged regions with their lost offsets (known: already in the partition's .weir-damage, or new),
  torn tails recovery would cut, gaps or overlaps between segments and index problems.
  Meant for a stopped broker: it refuses nothing, but on a running one it may see a partial write
  at the end of an active segment and report it as a torn tail.
  --json: one JSON document instead of lines.
  Exit code: 0 all checked out, 1 something found, 2 usage error or something unreadable.
`;

/** Directories of a data directory that only a weir broker makes. */
const WEIR_ENTRIES = ['topics.json', 'topics', 'groups', 'transactions', 'queues', 'producers'];

interface Checked extends PartitionVerdict {
  topic: string;
  partition: number;
}

interface Unreadable {
  path: string;
  error: string;
}

export async function run(argv: string[], io: CommandIo): Promise<number> {
  return command('verify', USAGE, io, async () => {
    const { values, positionals } = parse(argv, {
      topic: { type: 'string' },
      partition: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    });
    if (values.help) {
      await write(io.stdout, USAGE);
      return EXIT_OK;
    }
    if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'missing DATA_DIR' : `unexpected arguments: ${positionals.slice(1).join(' ')}`);
    const dataDir = path.resolve(positionals[0]!);
    const onlyPartition = nonNegativeInt(values.partition, 'partition');
    const onlyTopic = values.topic;

    let top: string[];
    try {
      if (!fs.statSync(dataDir).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
      top = fs.readdirSync(dataDir);
    } catch (err) {
      await write(io.stderr, `weir verify: cannot read the data directory ${dataDir}: ${errText(err)}\n`);
      return EXIT_USAGE;
    }
    if (!WEIR_ENTRIES.some((e) => top.includes(e))) {
      await write(io.stderr, `weir verify: ${dataDir} holds no weir data (none of ${WEIR_ENTRIES.join(', ')})\n`);
      return EXIT_USAGE;
    }

    const problems: string[] = [];
    const notes: string[] = [];
    const unreadable: Unreadable[] = [];
    // topics.json: which partitions should exist.
    const listed = new Map<string, number>();
    const topicsFile = path.join(dataDir, 'topics.json');
    if (top.includes('topics.json')) {
      try {
        const parsed = JSON.parse(fs.readFileSync(topicsFile, 'utf8')) as { topics?: unknown };
        for (const t of Array.isArray(parsed.topics) ? (parsed.topics as unknown[]) : []) {
          const e = t as { topic?: unknown; partitions?: unknown } | null;
          if (typeof e?.topic === 'string' && Number.isInteger(e.partitions)) listed.set(e.topic, e.partitions as number);
        }
      } catch (err) {
        problems.push(`${topicsFile} cannot be read as the topic list (${errText(err)}): the broker will not start with it`);
      }
    }
    // The partition directories on disk: topics/<topic>/<partition>/.
    const onDisk = new Map<string, number[]>();
    const topicsDir = path.join(dataDir, 'topics');
    if (top.includes('topics')) {
      let names: string[] = [];
      try {
        names = fs.readdirSync(topicsDir);
      } catch (err) {
        unreadable.push({ path: topicsDir, error: errText(err) });
      }
      for (const name of names.sort()) {
        const dir = path.join(topicsDir, name);
        try {
          if (!fs.statSync(dir).isDirectory()) continue;
          const parts = fs.readdirSync(dir).filter((p) => /^\d+$/.test(p) && fs.statSync(path.join(dir, p)).isDirectory()).map(Number);
          onDisk.set(name, parts.sort((a, b) => a - b));
        } catch (err) {
          unreadable.push({ path: dir, error: errText(err) });
        }
      }
    }
    if (onlyTopic !== undefined && !onDisk.has(onlyTopic) && !listed.has(onlyTopic)) {
      await write(io.stderr, `weir verify: no topic ${JSON.stringify(onlyTopic)} in ${dataDir}\n`);
      return EXIT_USAGE;
    }
    if (!top.includes('topics.json') && onDisk.size > 0) problems.push(`${topicsFile} is missing: a broker started on this directory serves none of the ${onDisk.size} topic(s) under ${topicsDir}`);
    const topics = [...new Set([...onDisk.keys(), ...listed.keys()])].filter((t) => onlyTopic === undefined || t === onlyTopic).sort();
    for (const topic of topics) {
      const have = onDisk.get(topic) ?? [];
      const count = listed.get(topic);
      if (count === undefined && have.length > 0 && top.includes('topics.json')) notes.push(`topic ${topic} has partition directories but is not in topics.json (a create that did not complete?): checked anyway`);
      for (let p = 0; p < (count ?? 0); p++) {
        if ((onlyPartition === undefined || p === onlyPartition) && !have.includes(p)) problems.push(`partition ${topic}/${p} is in topics.json but its directory ${path.join(topicsDir, topic, String(p))} is missing: its records are gone`);
      }
    }

    const checked: Checked[] = [];
    for (const topic of topics) {
      for (const partition of onDisk.get(topic) ?? []) {
        if (onlyPartition !== undefined && partition !== onlyPartition) continue;
        const dir = path.join(topicsDir, topic, String(partition));
        try {
          checked.push({ topic, partition, ...verifyPartitionDir(dir) });
        } catch (err) {
          unreadable.push({ path: dir, error: errText(err) });
        }
      }
    }
    if (onlyPartition !== undefined && checked.length === 0 && problems.length === 0 && unreadable.length === 0) {
      const which = onlyTopic !== undefined ? `topic ${onlyTopic} has no partition ${onlyPartition}` : `no topic has a partition ${onlyPartition}`;
      await write(io.stderr, `weir verify: ${which} in ${dataDir}\n`);
      return EXIT_USAGE;
    }

    const bad = checked.filter((c) => !c.ok);
    const totals = {
      partitions: checked.length,
      ok: checked.length - bad.length,
      withProblems: bad.length,
      unreadable: unreadable.length,
      records: checked.reduce((n, c) => n + c.records, 0),
      damagedRegions: checked.reduce((n, c) => n + c.damage.length, 0),
      newDamagedRegions: checked.reduce((n, c) => n + c.damage.filter((d) => !d.known).length, 0),
      lostOffsets: checked.reduce((n, c) => n + c.lostOffsets, 0),
      tornTails: checked.filter((c) => c.tornTail !== null).length,
      gaps: checked.reduce((n, c) => n + c.gaps.length, 0),
      overlaps: checked.reduce((n, c) => n + c.overlaps.length, 0),
      indexProblems: checked.reduce((n, c) => n + c.indexProblems.length + c.moreIndexProblems, 0),
    };
    const code = unreadable.length > 0 ? EXIT_USAGE : bad.length > 0 || problems.length > 0 ? EXIT_FAILURE : EXIT_OK;
    for (const u of unreadable) await write(io.stderr, `weir verify: cannot read ${u.path}: ${u.error}\n`);
    if (values.json) {
      await write(io.stdout, JSON.stringify({ dataDir, ok: code === EXIT_OK, partitions: checked, problems, notes, unreadable, totals }, (_k, v: unknown) => (v === Infinity ? null : v), 2) + '\n');
      return code;
    }
    for (const c of checked) await write(io.stdout, describePartition(c));
    for (const p of problems) await write(io.stdout, `problem: ${p}\n`);
    for (const n of notes) await write(io.stdout, `note: ${n}\n`);
    const parts = [
      `${totals.ok} ok`,
      `${totals.withProblems} with problems`,
      ...(totals.unreadable > 0 ? [`${totals.unreadable} unreadable`] : []),
    ];
    const found = [
      `${totals.damagedRegions} damaged region(s) (${totals.newDamagedRegions} new)`,
      `${totals.lostOffsets} offset(s) lost`,
      `${totals.tornTails} torn tail(s)`,
      `${totals.gaps} gap(s)`,
      `${totals.overlaps} overlap(s)`,
      `${totals.indexProblems} index problem(s)`,
    ];
    await write(io.stdout, `total: ${totals.partitions} partition(s) of ${dataDir} checked, ${totals.records} records: ${parts.join(', ')}; ${found.join(', ')}${problems.length > 0 ? `; ${problems.length} problem(s) with the topic list` : ''}\n`);
    return code;
  });
}

/** The lines for one partition: one when it checked out (plus notes), details otherwise. */
export function describePartition(c: Checked): string {
  const name = `${c.topic}/${c.partition}`;
  const segs = `${c.segments.length} segment${c.segments.length === 1 ? '' : 's'}`;
  const first = c.segments.find((s) => s.firstOffset !== null)?.firstOffset ?? null;
  const last = [...c.segments].reverse().find((s) => s.lastOffset !== null)?.lastOffset ?? null;
  const records = c.records === 0 ? 'no records' : `${c.records} records (offsets ${first} to ${last})`;
  const marker = c.cleanShutdown ? '' : ', no clean-shutdown marker';
  const lines: string[] = [];
  if (c.ok) lines.push(`${name}: ok: ${segs}, ${records}, ${c.bytes} bytes${marker}`);
  else lines.push(`${name}: PROBLEMS: ${segs}, ${records}, ${c.bytes} bytes, ${c.lostOffsets} offset(s) lost${marker} (${c.dir})`);
  const known = (k: boolean): string => (k ? 'known: listed in .weir-damage' : 'new: not in .weir-damage yet');
  for (const d of c.damage) {
    lines.push(`  damaged: ${d.file} at byte ${d.position}, ${d.bytes} bytes (${d.reason}): ${offsets(d.from, d.to)} lost, good records resume at byte ${d.resumePosition} [${known(d.known)}]`);
  }
  const t = c.tornTail;
  if (t !== null) {
    const removes = t.removesSegments.length > 0 ? `, and removes the ${t.removesSegments.length} later segment(s) (${t.removesSegments.join(', ')}: not synced before an unclean stop)` : '';
    lines.push(`  torn tail: ${t.file} at byte ${t.position}, ${t.bytes} bytes (${t.reason}): recovery cuts it at the next start${removes}; the log continues at offset ${t.offset}`);
  }
  for (const g of c.gaps) lines.push(`  gap: ${offsets(g.from, g.to)} in no segment: ${g.file} ends at offset ${g.from}, the next segment begins at ${g.to} [${known(g.known)}]`);
  for (const o of c.overlaps) lines.push(`  overlap: ${o.file} holds offsets up to ${o.endOffset - 1}, past the next segment's base ${o.nextBase}: the broker refuses to open this partition (LOG_CORRUPT)`);
  for (const p of c.indexProblems) lines.push(`  index: ${p.file}${p.entry === null ? '' : ` entry ${p.entry}`}: ${p.problem}`);
  if (c.moreIndexProblems > 0) lines.push(`  index: and ${c.moreIndexProblems} more index problem(s)`);
  if (!c.ok && c.indexProblems.length + c.moreIndexProblems > 0) lines.push('  (a bad .index is rebuilt by the broker when the file is removed while it is stopped)');
  for (const f of c.orphanIndexes) lines.push(`  note: orphan index ${f} (no .log; recovery removes it)`);
  for (const r of c.damageRecord.notFoundAgain) lines.push(`  note: .weir-damage lists ${offsets(r.from, r.to)} (segment ${r.segment}, byte ${r.position}), not found by this scan`);
  const cut = c.damageRecord.entries.filter((r) => r.kind === 'truncated');
  if (cut.length > 0) lines.push(`  note: .weir-damage records ${cut.length} torn tail(s) cut by recovery before (at offset(s) ${cut.map((r) => r.from).join(', ')})`);
  if (c.damageRecord.unreadableLines > 0) lines.push(`  note: ${c.damageRecord.file} has ${c.damageRecord.unreadableLines} line(s) that do not parse (skipped by the broker too)`);
  return lines.join('\n') + '\n';
}

function offsets(from: number, to: number): string {
  if (to <= from) return 'no offsets';
  return to - from === 1 ? `offset ${from}` : `offsets ${from} to ${to - 1}`;
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
