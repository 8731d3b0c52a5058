/**
 * Every op of the op table (core.ops(): built-in and feature ops alike), tried by a principal
 * without the permission it needs, on a real broker with a users file over real sockets: it is
 * refused with FORBIDDEN naming the action and the resource (or, for ops on the session's own
 * things, reaches only its own), before `hello` with UNAUTHORIZED, and nothing of the broker's
 * state changes (topics, configs, offsets, data, transactions, group offsets). The cases are keyed
 * by op: an op added to the table without a case here fails the first test.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpSpec } from '../../src/core/ops.js';
import { BatchBuilder } from '../../src/protocol/batch-builder.js';
import { Header } from '../../src/protocol/headers.js';
import type { Action } from '../../src/security/index.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { RawClient, type Frame } from '../support/raw-client.js';
import { SUPERUSER, writeRolesFile, writeUsersFile } from '../support/security.js';
import { tmpDir } from '../support/tmp-dir.js';

const records = (...values: string[]): Uint8Array => {
  const b = new BatchBuilder();
  for (const v of values) b.add(null, v);
  return b.take();
};

/** What the setup made that the cases name. */
interface Fixture {
  txn: number;
  adminInbox: string;
  adminProducer: { producerId: number; secret: Uint8Array };
  readerSub: number;
  readerQueueSub: number;
}

type Who = 'nobody' | 'reader';

/** Refused by the op's declared access: FORBIDDEN with `action` on `resource`. */
interface ForbiddenCase {
  kind: 'forbidden';
  as: Who;
  frame: (fx: Fixture) => Frame;
  action: Action;
  resource: string;
}

/** An op on the session's own things (access 'session'): what it answers a principal without permissions. */
interface OwnCase {
  kind: 'own';
  frame: (fx: Fixture) => Frame;
  answer: (answer: Frame) => void;
}

/** hello (access 'none'): the credentials are what is checked. */
interface HelloCase {
  kind: 'hello';
  frame: Frame;
  code: string;
}

const forbid = (as: Who, action: Action, resource: string, frame: (fx: Fixture) => Frame): ForbiddenCase => ({ kind: 'forbidden', as, action, resource, frame });
const unknownSubscription = (answer: Frame): void => {
  expect(answer).toMatchObject({ op: 'error', code: 'UNKNOWN_SUBSCRIPTION' });
};

const CASES: Record<string, ForbiddenCase | OwnCase | HelloCase> = {
  hello: { kind: 'hello', frame: { op: 'hello', version: 1, token: 'weir_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }, code: 'UNAUTHORIZED' },
  ping: { kind: 'own', frame: () => ({ op: 'ping' }), answer: (a) => expect(a.op).toBe('result') },
  produce: forbid('nobody', 'produce', 'topic:orders', () => ({ op: 'produce', topic: 'orders', records: records('x') })),
  fetch: forbid('nobody', 'consume', 'topic:orders', () => ({ op: 'fetch', topic: 'orders', partition: 0, offset: 0 })),
  subscribe: forbid('nobody', 'consume', 'topic:orders', () => ({ op: 'subscribe', topic: 'orders', credits: 10 })),
  credit: { kind: 'own', frame: (fx) => ({ op: 'credit', sub: fx.readerSub, partition: 0, credits: 5 }), answer: unknownSubscription },
  commit: forbid('reader', 'commit', 'group:g', (fx) => ({ op: 'commit', sub: fx.readerSub, offsets: [[0, 1]] })),
  revoked: { kind: 'own', frame: (fx) => ({ op: 'revoked', sub: fx.readerSub, generation: 1 }), answer: unknownSubscription },
  unsubscribe: { kind: 'own', frame: (fx) => ({ op: 'unsubscribe', sub: fx.readerSub }), answer: unknownSubscription },
  create_topic: forbid('nobody', 'create', 'topic:fresh', () => ({ op: 'create_topic', topic: 'fresh', partitions: 1 })),
  alter_topic: forbid('nobody', 'alter', 'topic:orders', () => ({ op: 'alter_topic', topic: 'orders', config: { ttlMs: 1 } })),
  list_topics: { kind: 'own', frame: () => ({ op: 'list_topics' }), answer: (a) => expect(a).toMatchObject({ op: 'result', topics: [] }) },
  describe_topic: forbid('nobody', 'describe', 'topic:orders', () => ({ op: 'describe_topic', topic: 'orders' })),
  // routing
  unsubscribe_pattern: { kind: 'own', frame: () => ({ op: 'unsubscribe_pattern', patternSub: 1 }), answer: unknownSubscription },
  inbox: { kind: 'own', frame: () => ({ op: 'inbox' }), answer: (a) => expect(a).toMatchObject({ op: 'result', inbox: expect.stringMatching(/^_INBOX\./) }) },
  reply: forbid('nobody', 'respond', 'topic:orders', (fx) => ({ op: 'reply', to: fx.adminInbox, topic: 'orders', records: records('spoofed') })),
  reset_offsets: forbid('nobody', 'reset', 'group:g', () => ({ op: 'reset_offsets', group: 'g', topic: 'orders', to: 'earliest' })),
  // producers: an id of another principal cannot be reclaimed, even with its secret
  init_producer: {
    kind: 'own',
    frame: (fx) => ({ op: 'init_producer', producerId: fx.adminProducer.producerId, secret: fx.adminProducer.secret }),
    answer: (a) => expect(a).toMatchObject({ op: 'error', code: 'PRODUCER_ID_NOT_OWNED', details: { reason: 'principal' } }),
  },
  // transactions
  txn_begin: forbid('nobody', 'txn', 'txn:pg', () => ({ op: 'txn_begin', topic: 'orders', producerGroup: 'pg' })),
  txn_produce: forbid('nobody', 'txn', 'txn:pg', (fx) => ({ op: 'txn_produce', txn: fx.txn, records: records('half') })),
  txn_commit: forbid('nobody', 'txn', 'txn:pg', (fx) => ({ op: 'txn_commit', txn: fx.txn })),
  txn_rollback: forbid('nobody', 'txn', 'txn:pg', (fx) => ({ op: 'txn_rollback', txn: fx.txn, by: 'admin' })),
  txn_checker: forbid('nobody', 'txn', 'txn:pg', () => ({ op: 'txn_checker', producerGroup: 'pg' })),
  txn_list: forbid('nobody', 'describe', 'topic:orders', () => ({ op: 'txn_list', topic: 'orders', all: true })),
  // queues
  queue_subscribe: forbid('nobody', 'consume', 'topic:orders', () => ({ op: 'queue_subscribe', topic: 'orders', group: 'qg' })),
  ack: forbid('reader', 'ack', 'topic:orders', (fx) => ({ op: 'ack', sub: fx.readerQueueSub, partition: 0, ranges: [0, 1] })),
  nack: forbid('reader', 'ack', 'topic:orders', (fx) => ({ op: 'nack', sub: fx.readerQueueSub, partition: 0, ranges: [0, 1], action: 'fatal' })),
  queue_unsubscribe: { kind: 'own', frame: (fx) => ({ op: 'queue_unsubscribe', sub: fx.readerQueueSub }), answer: unknownSubscription },
  dlq_redrive: forbid('nobody', 'redrive', 'topic:orders', () => ({ op: 'dlq_redrive', topic: 'orders' })),
};

let tb: TestBroker;
let tmp: { dir: string; cleanup(): void };
let keys: Record<string, string>;
let admin: RawClient;
let reader: RawClient;
let table: OpSpec[];
const fx = {} as Fixture;
const clients: RawClient[] = [];

async function login(key: string): Promise<RawClient> {
  const c = await RawClient.connect(tb.url);
  clients.push(c);
  expect(await c.request({ op: 'hello', version: 1, token: key })).toMatchObject({ op: 'result' });
  return c;
}

/** What a client with every permission sees of the broker: any change an op makes shows here. */
async function brokerState(): Promise<unknown> {
  const topics = (await admin.request({ op: 'list_topics' })).topics as Array<{ topic: string }>;
  const described = [];
  for (const t of [...topics].sort((a, b) => a.topic.localeCompare(b.topic))) {
    const d = await admin.request({ op: 'describe_topic', topic: t.topic });
    const data = [];
    for (const o of d.offsets as Array<{ partition: number; start: number }>) {
      const f = await admin.request({ op: 'fetch', topic: t.topic, partition: o.partition, offset: o.start });
      data.push(Buffer.from(f.records as Uint8Array).toString('base64'));
    }
    described.push({ topic: d.topic, partitions: d.partitions, config: d.config, offsets: (d.offsets as Array<{ start: number; end: number }>).map((o) => [o.start, o.end]), data });
  }
  const txns = (await admin.request({ op: 'txn_list', all: true })).transactions;
  const offsets = ['g', 'qg'].flatMap((g) => [0, 1].map((p) => tb.broker.offsets.get(g, 'orders', p)));
  return { described, txns, offsets };
}

beforeAll(async () => {
  tmp = tmpDir('weir-op-permissions-');
  const roles = writeRolesFile(tmp.dir, {
    admin: [SUPERUSER],
    // may read `orders` in group g and queue group qg, and nothing else (not commit, not ack)
    reader: [{ allow: ['consume', 'join', 'describe'], topics: ['orders'], groups: ['g', 'qg'] }],
  });
  const users = await writeUsersFile(tmp.dir, [
    { name: 'admin', roles: ['admin'], apiKey: true },
    { name: 'reader', roles: ['reader'], apiKey: true },
    { name: 'nobody', roles: [], apiKey: true },
  ]);
  keys = users.keys;
  tb = await startTestBroker({ security: { usersFile: users.file, rolesFile: roles } });
  table = tb.broker.core.ops();

  admin = await login(keys['admin']!);
  expect(await admin.request({ op: 'create_topic', topic: 'orders', partitions: 2 })).toMatchObject({ op: 'result', created: true });
  expect(await admin.request({ op: 'produce', topic: 'orders', partition: 0, records: records('a', 'b', 'c') })).toMatchObject({ op: 'result' });
  expect(await admin.request({ op: 'produce', topic: 'orders', partition: 1, records: records('d') })).toMatchObject({ op: 'result' });
  const begun = await admin.request({ op: 'txn_begin', topic: 'orders', producerGroup: 'pg' });
  fx.txn = begun.txn as number;
  expect(await admin.request({ op: 'txn_produce', txn: fx.txn, records: records('pending') })).toMatchObject({ op: 'result' });
  fx.adminInbox = (await admin.request({ op: 'inbox' })).inbox as string;
  const produced = await admin.request({ op: 'init_producer' });
  fx.adminProducer = { producerId: produced.producerId as number, secret: produced.secret as Uint8Array };

  reader = await login(keys['reader']!);
  const sub = await reader.request({ op: 'subscribe', topic: 'orders', group: 'g', from: 'earliest', credits: 100 });
  fx.readerSub = sub.sub as number;
  const qsub = await reader.request({ op: 'queue_subscribe', topic: 'orders', group: 'qg' });
  fx.readerQueueSub = qsub.sub as number;
  // The reader holds what its subscriptions were given before the cases run.
  await reader.waitFor((f) => f.op === 'deliver' && f.sub === fx.readerQueueSub);
});

afterAll(async () => {
  for (const c of clients) c.close();
  await tb?.stop();
  tmp?.cleanup();
});

describe('every op of the op table, by a principal without its permission', () => {
  it('has a case here for every op (a new op needs one), of the kind its declared access calls for', () => {
    expect(Object.keys(CASES).sort()).toEqual(table.map((s) => s.op).sort());
    for (const spec of table) {
      const c = CASES[spec.op]!;
      if (spec.access === 'none') expect(c.kind, spec.op).toBe('hello');
      else if (spec.access === 'session') expect(c.kind, spec.op).toBe('own');
      else {
        expect(c.kind, spec.op).toBe('forbidden');
        expect(spec.access.map((a) => a.action), spec.op).toContain((c as ForbiddenCase).action);
      }
    }
  });

  it('is refused UNAUTHORIZED before hello, and nothing changes', async () => {
    const before = await brokerState();
    const anon = await RawClient.connect(tb.url);
    clients.push(anon);
    for (const spec of table) {
      if (spec.op === 'hello') continue;
      const c = CASES[spec.op]!;
      const frame = c.kind === 'hello' ? c.frame : c.frame(fx);
      expect(await anon.request(frame), spec.op).toMatchObject({ op: 'error', code: 'UNAUTHORIZED', retryable: false });
    }
    expect(await brokerState()).toEqual(before);
  });

  for (const [op, c] of Object.entries(CASES)) {
    it(`${op}: ${c.kind === 'forbidden' ? `FORBIDDEN (${c.action} on ${c.resource})` : c.kind === 'own' ? 'reaches only what the session holds' : 'UNAUTHORIZED with wrong credentials'}, and nothing changes`, async () => {
      const before = await brokerState();
      const forbiddenBefore = tb.broker.core.securityStats().forbidden;
      if (c.kind === 'hello') {
        const client = await RawClient.connect(tb.url);
        clients.push(client);
        expect(await client.request(c.frame)).toMatchObject({ op: 'error', code: c.code });
        // …and the connection is still not authenticated.
        expect(await client.request({ op: 'list_topics' })).toMatchObject({ op: 'error', code: 'UNAUTHORIZED' });
      } else if (c.kind === 'forbidden') {
        const client = c.as === 'reader' ? reader : await login(keys['nobody']!);
        const answer = await client.request(c.frame(fx));
        expect(answer).toMatchObject({ op: 'error', code: 'FORBIDDEN', retryable: false, details: { action: c.action, resource: c.resource } });
        expect(tb.broker.core.securityStats().forbidden).toBe(forbiddenBefore + 1);
      } else {
        const client = await login(keys['nobody']!);
        const id = 900_000 + Object.keys(CASES).indexOf(op);
        client.send({ ...c.frame(fx), id });
        // Ops without an answer (revoked) are followed by a ping: its answer comes after theirs.
        client.send({ op: 'ping', id: id + 100_000 });
        const answer = await client.waitFor((f) => f.id === id || f.id === id + 100_000);
        c.answer(answer);
      }
      expect(await brokerState()).toEqual(before);
      // No reply reached the admin's inbox, and the admin's transaction is still open.
      expect(admin.frames.filter((f) => f.op === 'reply')).toEqual([]);
    });
  }

  it('a reply that names no topic is FORBIDDEN too', async () => {
    const nobody = await login(keys['nobody']!);
    expect(await nobody.request({ op: 'reply', to: fx.adminInbox, records: records('spoofed') })).toMatchObject({
      op: 'error', code: 'FORBIDDEN', details: { action: 'respond', resource: 'topic:' },
    });
    expect(admin.frames.filter((f) => f.op === 'reply')).toEqual([]);
  });
});

describe('the same ops by a principal with the permission', () => {
  it('are served (the refusals above are the permission, not the request)', async () => {
    expect(await reader.request({ op: 'fetch', topic: 'orders', partition: 0, offset: 0 })).toMatchObject({ op: 'result', count: 3 });
    expect(await reader.request({ op: 'describe_topic', topic: 'orders' })).toMatchObject({ op: 'result', partitions: 2 });
    expect((await reader.request({ op: 'list_topics' })).topics).toEqual([{ topic: 'orders', partitions: 2 }]);
    expect(await admin.request({ op: 'txn_list', topic: 'orders' })).toMatchObject({ op: 'result', transactions: [{ txn: fx.txn, state: 'open' }] });
    const header = new BatchBuilder();
    header.add(null, 'answer', { [Header.CORRELATION_ID]: 'c1' });
    expect(await admin.request({ op: 'reply', to: fx.adminInbox, topic: 'orders', records: header.take() })).toMatchObject({ op: 'result' });
    await admin.waitFor((f) => f.op === 'reply' && f.inbox === fx.adminInbox);
  });
});
