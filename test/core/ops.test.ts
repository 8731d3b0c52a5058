/**
 * The op table (src/core/ops.ts) of a real broker with every feature installed: it holds exactly the
 * requests docs/protocol.md lists, each declares the permissions it needs, and what an entry
 * declares (its request id, its refusal while the broker stops) is what a client gets.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpSpec, ResourceField } from '../../src/core/ops.js';
import { ACTIONS, ALL_ACTIONS, type ResourceKind } from '../../src/security/index.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { RawClient, type Frame } from '../support/raw-client.js';

const protocolMd = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../docs/protocol.md');

type DocsId = 'required' | 'optional' | 'none';

/**
 * The requests of docs/protocol.md: every row of a table headed `| op | fields | answer…`, by op,
 * with what each row says of `id` (rows that describe their fields "as" another row's say nothing).
 */
function documentedRequests(): Map<string, DocsId[]> {
  const ops = new Map<string, DocsId[]>();
  let inRequests = false;
  for (const line of fs.readFileSync(protocolMd, 'utf8').split('\n')) {
    if (!line.startsWith('|')) {
      inRequests = false;
      continue;
    }
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    if (cells[0] === 'op') {
      inRequests = cells[1] === 'fields' && (cells[2] ?? '').startsWith('answer');
      continue;
    }
    if (!inRequests || /^-+$/.test(cells[0] ?? '')) continue;
    const op = /^`([a-z_]+)`/.exec(cells[0] ?? '')?.[1];
    if (op === undefined) throw new Error(`docs/protocol.md: a request row without an op: ${line}`);
    const ids = ops.get(op) ?? [];
    ops.set(op, ids);
    const fields = cells[1] ?? '';
    if (fields.startsWith('as ')) continue;
    ids.push(fields.includes('`id`') ? 'required' : fields.includes('`id?`') ? 'optional' : 'none');
  }
  return ops;
}

/** The rows of docs/protocol.md's `| op | permission |` table (Security), by op. */
function documentedPermissions(): Map<string, string> {
  const rows = new Map<string, string>();
  let inTable = false;
  for (const line of fs.readFileSync(protocolMd, 'utf8').split('\n')) {
    if (!line.startsWith('|')) {
      inTable = false;
      continue;
    }
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    if (cells[0] === 'op') {
      inTable = cells[1] === 'permission';
      continue;
    }
    if (!inTable || /^-+$/.test(cells[0] ?? '')) continue;
    for (const m of (cells[0] ?? '').matchAll(/`([a-z_]+)`/g)) {
      if (rows.has(m[1]!)) throw new Error(`docs/protocol.md: ${m[1]} has two permission rows`);
      rows.set(m[1]!, cells[1] ?? '');
    }
  }
  return rows;
}

let tb: TestBroker;
let c: RawClient;
let table: OpSpec[];

beforeAll(async () => {
  tb = await startTestBroker();
  c = await RawClient.connect(tb.url);
  table = tb.broker.core.ops();
});
afterAll(async () => {
  c?.close();
  await tb?.stop();
});

describe('the op table', () => {
  it('holds exactly the requests docs/protocol.md lists', () => {
    const documented = [...documentedRequests().keys()].sort();
    expect(documented.length).toBeGreaterThan(20);
    expect(table.map((s) => s.op).sort()).toEqual(documented);
  });

  it('declares, for every op, the permissions it needs, as actions of the security registry on resources of their kind', () => {
    const kindOf: Record<ResourceField, ResourceKind> = { topic: 'topic', group: 'group', producerGroup: 'txn', broker: 'broker' };
    for (const spec of table) {
      if (typeof spec.access === 'string') continue;
      expect(spec.access.length, spec.op).toBeGreaterThan(0);
      for (const a of spec.access) {
        expect(ALL_ACTIONS, `${spec.op}: action`).toContain(a.action);
        if (typeof a.from === 'string') expect(ACTIONS[a.action], `${spec.op}: ${a.action} from ${a.from}`).toBe(kindOf[a.from]);
        else expect(typeof a.from, spec.op).toBe('function');
      }
    }
    // Only hello needs nothing; these act on what the session itself holds (its subscriptions, its
    // inboxes, its producer ids) or filter what they show by permission. A new op is one of them only on purpose.
    expect(table.filter((s) => s.access === 'none').map((s) => s.op)).toEqual(['hello']);
    expect(table.filter((s) => s.access === 'session').map((s) => s.op).sort()).toEqual(
      ['credit', 'inbox', 'init_producer', 'list_topics', 'ping', 'queue_unsubscribe', 'revoked', 'unsubscribe', 'unsubscribe_pattern'],
    );
  });

  it('is documented, op by op, with the permissions each needs (docs/protocol.md, Security)', () => {
    const documented = documentedPermissions();
    expect([...documented.keys()].sort()).toEqual(table.map((s) => s.op).sort());
    for (const spec of table) {
      const row = documented.get(spec.op)!;
      if (spec.access === 'none') expect(row, spec.op).toMatch(/^none/);
      else if (spec.access === 'session') expect(row, spec.op).toMatch(/^authenticated/);
      else for (const a of spec.access) expect(row, spec.op).toContain(`\`${a.action}\``);
    }
  });

  it('requires an id only of ops whose every documented form carries one', () => {
    const documented = documentedRequests();
    for (const spec of table.filter((s) => s.requestId === 'required')) {
      const ids = documented.get(spec.op)!;
      expect(ids.length, spec.op).toBeGreaterThan(0);
      expect(ids.every((i) => i === 'required'), `${spec.op}: documented ${ids.join(', ')}`).toBe(true);
    }
  });

  it('answers every op that needs an id, sent without one, with BAD_REQUEST naming the op', async () => {
    for (const spec of table.filter((s) => s.requestId === 'required')) {
      c.send({ op: spec.op });
      const e = await c.waitFor((f) => f.op === 'error' && String(f.message).startsWith(`"${spec.op}" `));
      expect(e, spec.op).toMatchObject({ code: 'BAD_REQUEST', details: { field: 'id' }, retryable: false });
      expect(e.id).toBeUndefined();
    }
  });
});

describe('while the broker stops accepting', () => {
  let stopping: TestBroker;
  let sc: RawClient;
  beforeAll(async () => {
    stopping = await startTestBroker();
    sc = await RawClient.connect(stopping.url);
    stopping.broker.core.stopAccepting();
  });
  afterAll(async () => {
    sc?.close();
    await stopping?.stop();
  });

  it('refuses the ops declared "refuse" with SHUTTING_DOWN, and serves the others', async () => {
    let id = 1_000_000;
    for (const spec of table) {
      const opId = id++;
      const pingId = id++;
      sc.send({ op: spec.op, id: opId });
      // A refusal is answered at once, so before the ping that follows in the same read.
      sc.send({ op: 'ping', id: pingId });
      await sc.waitFor((f) => f.id === pingId && f.op === 'result');
      const refused = sc.frames.find((f: Frame) => f.id === opId && f.code === 'SHUTTING_DOWN');
      if (spec.whenStopping === 'refuse') expect(refused, spec.op).toMatchObject({ op: 'error', retryable: true });
      else expect(refused, spec.op).toBeUndefined();
    }
    expect(table.filter((s) => s.whenStopping === 'refuse').map((s) => s.op).sort()).toEqual(['alter_topic', 'create_topic', 'produce']);
  });
});
