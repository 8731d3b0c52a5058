/**
 * `weir verify DATA_DIR`: what an operator sees and the exit code a script gets, over data
 * directories written by PartitionLog and by a real broker (then `bin/weir.js verify` as a child
 * process: `npm run build` first). It never writes: every file's bytes, size and mtime are the same
 * after it ran.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { run as verify } from '../../src/cli/commands/verify.js';
import { PartitionLog } from '../../src/log/index.js';
import { BatchBuilder } from '../../src/protocol/batch-builder.js';
import { connect, type WeirClient } from '../../src/client/index.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { cliIo } from '../support/cli-io.js';
import { flipByte, segmentFiles, storedRecords } from '../support/damage.js';
import { tmpDir } from '../support/tmp-dir.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cleanups: Array<() => void> = [];
let tb: TestBroker | undefined;
let client: WeirClient | undefined;
afterEach(async () => {
  client?.destroy();
  client = undefined;
  await tb?.stop();
  tb = undefined;
  for (const c of cleanups.splice(0)) c();
});

function dataDir(): string {
  const t = tmpDir('weir-verify-cli-');
  cleanups.push(t.cleanup);
  return t.dir;
}

/** A data directory as a broker leaves it: topics.json and topics/<topic>/<partition>/ logs, closed cleanly. */
function writeData(dir: string, topics: Record<string, number>): void {
  fs.writeFileSync(path.join(dir, 'topics.json'), JSON.stringify({ version: 1, topics: Object.entries(topics).map(([topic, partitions]) => ({ topic, partitions })) }));
  for (const [topic, partitions] of Object.entries(topics)) {
    for (let p = 0; p < partitions; p++) {
      const log = PartitionLog.open({ dir: path.join(dir, 'topics', topic, String(p)), segmentBytes: 3000, indexIntervalBytes: 500, fsync: { mode: 'never' } });
      for (let i = 0; i < 40; i++) {
        const b = new BatchBuilder();
        b.add(`k${i}`, new Uint8Array(80).fill(i), { n: String(i) });
        const bytes = b.take();
        log.append(bytes, 0, bytes.length, 1);
        log.flush();
      }
      log.close();
    }
  }
}

/** Every path under `dir` with its size, mtime and bytes. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const name of fs.readdirSync(d)) {
      const p = path.join(d, name);
      const st = fs.statSync(p);
      out[path.relative(dir, p)] = `${st.size} ${st.mtimeMs} ${st.isFile() ? fs.readFileSync(p).toString('base64') : 'dir'}`;
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

async function runVerify(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = cliIo();
  const code = await verify(args, io);
  return { code, out: io.out(), err: io.err() };
}

/** Flip a value byte of record `k` of the first (sealed) segment of a partition; returns that record. */
function damageValue(partitionDir: string, k: number): { file: string; at: number; size: number; offset: number } {
  const file = segmentFiles(partitionDir)[0]!;
  const r = storedRecords(file)[k]!;
  flipByte(file, r.valueAt + 5);
  return { file: path.basename(file), at: r.at, size: r.size, offset: r.offset };
}

describe('weir verify', () => {
  it('a clean data directory: one line per partition (internal topics too), a total, exit 0', async () => {
    const dir = dataDir();
    writeData(dir, { orders: 2, __txn_half: 1 });
    const before = snapshot(dir);
    const r = await runVerify([dir]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines).toEqual([
      expect.stringMatching(/^__txn_half\/0: ok: \d+ segments, 40 records \(offsets 0 to 39\), \d+ bytes$/),
      expect.stringMatching(/^orders\/0: ok: \d+ segments, 40 records \(offsets 0 to 39\)/),
      expect.stringMatching(/^orders\/1: ok: /),
      expect.stringMatching(/^total: 3 partition\(s\) of .* checked, 120 records: 3 ok, 0 with problems; 0 damaged region\(s\) \(0 new\), 0 offset\(s\) lost/),
    ]);
    expect(snapshot(dir)).toEqual(before);
  });

  it('damage: names the segment, byte position and lost offset, says it is new, exits 1, writes nothing', async () => {
    const dir = dataDir();
    writeData(dir, { orders: 2 });
    const d = damageValue(path.join(dir, 'topics/orders/1'), 4);
    const before = snapshot(dir);
    const r = await runVerify([dir]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^orders\/0: ok: /m);
    expect(r.out).toContain(`orders/1: PROBLEMS: `);
    expect(r.out).toContain(`  damaged: ${d.file} at byte ${d.at}, ${d.size} bytes (CORRUPT): offset ${d.offset} lost, good records resume at byte ${d.at + d.size} [new: not in .weir-damage yet]\n`);
    expect(r.out).toMatch(/total: 2 partition\(s\) .*: 1 ok, 1 with problems; 1 damaged region\(s\) \(1 new\), 1 offset\(s\) lost/);
    expect(snapshot(dir)).toEqual(before);

    const j = await runVerify([dir, '--json']);
    expect(j.code).toBe(1);
    const doc = JSON.parse(j.out) as { ok: boolean; partitions: Array<{ topic: string; partition: number; ok: boolean; damage: unknown[] }>; totals: { lostOffsets: number } };
    expect(doc.ok).toBe(false);
    expect(doc.totals.lostOffsets).toBe(1);
    expect(doc.partitions.map((p) => [p.topic, p.partition, p.ok])).toEqual([['orders', 0, true], ['orders', 1, false]]);
    expect(doc.partitions[1]!.damage).toEqual([{ segment: 0, file: d.file, position: d.at, resumePosition: d.at + d.size, bytes: d.size, from: d.offset, to: d.offset + 1, reason: 'CORRUPT', known: false }]);
    expect(snapshot(dir)).toEqual(before);

    // --topic / --partition narrow the check.
    const one = await runVerify([dir, '--topic', 'orders', '--partition', '0']);
    expect(one.code).toBe(0);
    expect(one.out).toMatch(/^orders\/0: ok: .*\ntotal: 1 partition\(s\)/);
  });

  it('a partition topics.json lists without its directory is a problem (exit 1)', async () => {
    const dir = dataDir();
    writeData(dir, { orders: 2 });
    fs.rmSync(path.join(dir, 'topics/orders/1'), { recursive: true });
    const r = await runVerify([dir]);
    expect(r.code).toBe(1);
    expect(r.out).toContain(`problem: partition orders/1 is in topics.json but its directory ${path.join(dir, 'topics/orders/1')} is missing`);
  });

  it('partition directories without topics.json are a problem: a broker would serve none of them', async () => {
    const dir = dataDir();
    writeData(dir, { orders: 1 });
    fs.unlinkSync(path.join(dir, 'topics.json'));
    const r = await runVerify([dir]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^orders\/0: ok: /m);
    expect(r.out).toContain(`problem: ${path.join(dir, 'topics.json')} is missing: a broker started on this directory serves none of the 1 topic(s)`);
  });

  it('usage errors and unreadable directories exit 2 with a message naming them', async () => {
    const dir = dataDir();
    writeData(dir, { orders: 1 });
    const missing = path.join(dir, 'nope');
    const file = path.join(dir, 'topics.json');
    const empty = dataDir();
    const cases: Array<[string[], RegExp]> = [
      [[], /missing DATA_DIR/],
      [[dir, dir], /unexpected arguments/],
      [[missing], new RegExp(`cannot read the data directory ${missing}: ENOENT`)],
      [[file], new RegExp(`cannot read the data directory ${file}: .*not a directory`)],
      [[empty], new RegExp(`${empty} holds no weir data`)],
      [[dir, '--topic', 'nope'], /no topic "nope"/],
      [[dir, '--topic', 'orders', '--partition', '7'], /topic orders has no partition 7/],
      [[dir, '--partition', '9'], /no topic has a partition 9/],
      [[dir, '--partition', 'x'], /--partition must be a non-negative integer/],
      [[dir, '--bogus'], /Unknown option/],
    ];
    for (const [args, message] of cases) {
      const r = await runVerify(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err, args.join(' ')).toMatch(message);
    }
    const help = await runVerify(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/stopped broker/);
  });

  it('a real broker data directory: clean while it runs and after it stopped, then damaged (bin/weir.js verify)', async () => {
    tb = await startTestBroker({ segmentBytes: 4096, defaultPartitions: 2 });
    client = await connect(tb.url);
    await client.createTopic('orders', { partitions: 2 });
    for (let i = 0; i < 10; i++) {
      await client.produce('orders', Array.from({ length: 20 }, (_, k) => ({ key: `k${i * 20 + k}`, value: `value ${i * 20 + k} `.padEnd(100, '.') })));
    }
    await client.produce('orders', [{ key: 'later', value: 'delayed', delay: 3_600_000 }]);
    // A running broker's directory: it refuses nothing.
    const live = await cli(['verify', tb.dir]);
    expect(live.stderr).toBe('');
    expect(live.code).toBe(0);
    expect(live.stdout).toMatch(/^orders\/0: ok: .*, no clean-shutdown marker$/m);
    client.destroy();
    client = undefined;
    const dir = tb.dir;
    await tb.stop({ keepData: true });
    tb = undefined;
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));

    const clean = await cli(['verify', dir]);
    expect(clean.code).toBe(0);
    expect(clean.stdout).toMatch(/^__delay\.orders\/\d+: ok: \d+ segments?, 1 records/m);
    expect(clean.stdout).toMatch(/^orders\/0: ok: \d+ segments, \d+ records \(offsets 0 to \d+\), \d+ bytes$/m);
    expect(clean.stdout).toMatch(/^orders\/1: ok: /m);

    const partition = path.join(dir, 'topics/orders/0');
    expect(segmentFiles(partition).length).toBeGreaterThan(1);
    const d = damageValue(partition, 3);
    const before = snapshot(dir);
    const damaged = await cli(['verify', dir]);
    expect(damaged.code).toBe(1);
    expect(damaged.stdout).toContain(`  damaged: ${d.file} at byte ${d.at}, ${d.size} bytes (CORRUPT): offset ${d.offset} lost, good records resume at byte ${d.at + d.size} [new: not in .weir-damage yet]\n`);
    expect(damaged.stdout).toMatch(/^orders\/1: ok: /m);
    const json = await cli(['verify', dir, '--topic', 'orders', '--json']);
    expect(json.code).toBe(1);
    const doc = JSON.parse(json.stdout) as { partitions: Array<{ partition: number; damage: Array<{ from: number; to: number }> }> };
    expect(doc.partitions.map((p) => p.damage.map((x) => [x.from, x.to]))).toEqual([[[d.offset, d.offset + 1]], []]);
    expect(snapshot(dir)).toEqual(before);
  });
});

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(root, 'bin/weir.js'), ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}
