/**
 * What a broker with `security.auditLog` writes there, over real sockets: failed and successful
 * authentications, denials, and each administrative action (topic create and alter, offset reset,
 * redrive, a transaction decided by an admin), one JSON line each with principal, address and
 * outcome; never a secret.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BatchBuilder } from '../../src/protocol/batch-builder.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { RawClient } from '../support/raw-client.js';
import { SUPERUSER, writeRolesFile, writeUsersFile } from '../support/security.js';
import { tmpDir } from '../support/tmp-dir.js';

const tmp = tmpDir('weir-audit-events-');
let tb: TestBroker;
let keys: Record<string, string>;
const auditFile = path.join(tmp.dir, 'audit.log');

beforeAll(async () => {
  const roles = writeRolesFile(tmp.dir, { admin: [SUPERUSER] });
  const users = await writeUsersFile(tmp.dir, [
    { name: 'root', roles: ['admin'], apiKey: true },
    { name: 'guest', roles: [], password: 'guest-password' },
  ]);
  keys = users.keys;
  tb = await startTestBroker({ security: { usersFile: users.file, rolesFile: roles, auditLog: auditFile } });
});
afterAll(async () => {
  await tb?.stop();
  tmp.cleanup();
});

it('records authentications, denials and administrative actions, one line each', async () => {
  const guest = await RawClient.connect(tb.url);
  const root = await RawClient.connect(tb.url);
  try {
    expect(await guest.request({ op: 'hello', version: 1, user: 'guest', password: 'not it' })).toMatchObject({ code: 'UNAUTHORIZED' });
    expect(await guest.request({ op: 'hello', version: 1, user: 'guest', password: 'guest-password' })).toMatchObject({ op: 'result' });
    expect(await guest.request({ op: 'create_topic', topic: 'secret', partitions: 1 })).toMatchObject({ code: 'FORBIDDEN' });

    expect(await root.request({ op: 'hello', version: 1, token: keys['root']! })).toMatchObject({ op: 'result' });
    expect(await root.request({ op: 'create_topic', topic: 'orders', partitions: 1 })).toMatchObject({ op: 'result' });
    expect(await root.request({ op: 'alter_topic', topic: 'orders', config: { ttlMs: 60_000 } })).toMatchObject({ op: 'result' });
    expect(await root.request({ op: 'reset_offsets', group: 'g', topic: 'orders', to: 'earliest' })).toMatchObject({ op: 'result' });
    expect(await root.request({ op: 'dlq_redrive', topic: 'orders' })).toMatchObject({ op: 'result' });
    const txn = (await root.request({ op: 'txn_begin', topic: 'orders', producerGroup: 'pg' })).txn;
    const b = new BatchBuilder();
    b.add(null, 'x');
    expect(await root.request({ op: 'txn_produce', txn, records: b.take() })).toMatchObject({ op: 'result' });
    expect(await root.request({ op: 'txn_rollback', txn, by: 'admin' })).toMatchObject({ op: 'result' });
    // Not administrative: not audited.
    expect(await root.request({ op: 'list_topics' })).toMatchObject({ op: 'result' });
  } finally {
    guest.close();
    root.close();
  }

  const text = fs.readFileSync(auditFile, 'utf8');
  expect(text).not.toContain('guest-password');
  expect(text).not.toContain(keys['root']!.slice(22));
  const events = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const brief = events.map((e) => [e['principal'], e['action'], e['resource'] ?? null, e['outcome']]);
  expect(brief).toEqual([
    [null, 'authenticate', null, 'failed'],
    ['guest', 'authenticate', null, 'ok'],
    ['guest', 'create', 'topic:secret', 'denied'],
    ['root', 'authenticate', null, 'ok'],
    ['root', 'create', 'topic:orders', 'ok'],
    ['root', 'alter', 'topic:orders', 'ok'],
    ['root', 'reset', 'group:g', 'ok'],
    ['root', 'redrive', 'topic:orders', 'ok'],
    ['root', 'txn', 'txn:pg', 'ok'],
  ]);
  expect(events[0]).toMatchObject({ address: expect.stringMatching(/127\.0\.0\.1/), code: 'UNAUTHORIZED', details: { reason: 'password' } });
  expect(events[2]).toMatchObject({ code: 'FORBIDDEN' });
  expect(events[8]).toMatchObject({ details: { txn: expect.any(String), decision: 'rollback' } });
});
