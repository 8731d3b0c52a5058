/**
 * Per-topic permissions as a browser gets them, through the SDK over real sockets: a JSON Web
 * Token whose `weir` claim allows consuming `rooms.42.*` reads those topics, is FORBIDDEN the
 * others, and its pattern subscription `rooms.#` covers only what it may read, topics created
 * after it subscribed included. Then request-reply: a request needs `request` on its topic and an
 * inbox of its own, a reply `respond` on the request's topic.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Message, type WeirClient } from '../../src/client/index.js';
import { BatchBuilder } from '../../src/protocol/batch-builder.js';
import { Header } from '../../src/protocol/headers.js';
import type { Rule } from '../../src/security/index.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { RawClient } from '../support/raw-client.js';
import { SUPERUSER, signToken, writeJwtSecret } from '../support/security.js';
import { tmpDir } from '../support/tmp-dir.js';
import { refusal } from '../support/refusal.js';

const tmp = tmpDir('weir-topic-permissions-');
let tb: TestBroker;
let secret: Uint8Array;
let admin: WeirClient;
const clients: WeirClient[] = [];

async function as(sub: string, allow: Rule[], idempotent = false): Promise<WeirClient> {
  const c = await connect(tb.url, { token: await signToken(secret, sub, { allow }), reconnect: false, idempotent });
  clients.push(c);
  return c;
}

async function until(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

beforeAll(async () => {
  const jwt = writeJwtSecret(tmp.dir);
  secret = jwt.secret;
  tb = await startTestBroker({ security: { jwt: { secretFile: jwt.file } } });
  admin = await as('backend', [SUPERUSER]);
  for (const t of ['rooms.42.a', 'rooms.43.x']) {
    await admin.createTopic(t, { partitions: 1 });
    await admin.produce(t, [{ value: `hello ${t}` }]);
  }
});
afterEach(async () => {
  for (const c of clients.splice(1)) await c.close().catch(() => undefined);
});
afterAll(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => undefined);
  await tb?.stop();
  tmp.cleanup();
});

describe('a browser token that may consume rooms.42.*', () => {
  const browserRules: Rule[] = [{ allow: ['consume', 'describe'], topics: ['rooms.42.*'] }];

  it('consumes rooms.42.a and is FORBIDDEN rooms.43.x', async () => {
    const browser = await as('browser-1', browserRules);
    const got = await browser.fetch('rooms.42.a', 0, 0);
    expect(got.messages.map((m) => Buffer.from(m.value).toString())).toEqual(['hello rooms.42.a']);
    expect(await refusal(browser.fetch('rooms.43.x', 0, 0))).toEqual({ code: 'FORBIDDEN', details: { action: 'consume', resource: 'topic:rooms.43.x' } });
    expect(await refusal(browser.subscribe('rooms.43.x', { from: 'earliest' }, () => undefined))).toMatchObject({ code: 'FORBIDDEN' });
    expect(await refusal(browser.produce('rooms.42.a', [{ value: 'not mine to write' }]))).toEqual({ code: 'FORBIDDEN', details: { action: 'produce', resource: 'topic:rooms.42.a' } });
    expect((await browser.listTopics()).map((t) => t.topic)).toEqual(['rooms.42.a']);
  });

  it('its pattern subscription rooms.# receives only rooms.42.* messages, from topics created after it subscribed too', async () => {
    const browser = await as('browser-2', browserRules);
    const received: Message[] = [];
    const ps = await browser.subscribe({ pattern: 'rooms.#' }, { from: 'earliest' }, (m) => {
      received.push(m);
    });
    await until(() => received.length >= 1);
    for (const t of ['rooms.43.y', 'rooms.42.b']) {
      await admin.createTopic(t, { partitions: 1 });
      await admin.produce(t, [{ value: `later ${t}` }]);
    }
    await admin.produce('rooms.43.x', [{ value: 'more 43' }]);
    await until(() => received.some((m) => m.topic === 'rooms.42.b'));
    await admin.produce('rooms.42.a', [{ value: 'last' }]);
    await until(() => received.some((m) => Buffer.from(m.value).toString() === 'last'));
    expect(received.map((m) => `${m.topic}: ${Buffer.from(m.value).toString()}`).sort()).toEqual(['rooms.42.a: hello rooms.42.a', 'rooms.42.a: last', 'rooms.42.b: later rooms.42.b']);
    expect(ps.topics().sort()).toEqual(['rooms.42.a', 'rooms.42.b']);
  });
});

describe('request-reply', () => {
  beforeAll(async () => {
    await admin.createTopic('rpc.echo', { partitions: 1 });
  });

  it('a request needs `request` on its topic; a responder needs `respond` on it; both work when allowed', async () => {
    const responder = await as('service', [{ allow: ['consume', 'respond'], topics: ['rpc.*'] }]);
    await responder.respond('rpc.echo', { from: 'earliest' }, (m) => `echo ${Buffer.from(m.value).toString()}`);
    const caller = await as('caller', [{ allow: ['produce', 'request'], topics: ['rpc.echo'] }]);
    const reply = await caller.request('rpc.echo', { value: 'hi' }, { timeout: 5_000 });
    expect(Buffer.from(reply.value).toString()).toBe('echo hi');

    const producerOnly = await as('producer-only', [{ allow: ['produce'], topics: ['rpc.echo'] }]);
    expect(await refusal(producerOnly.request('rpc.echo', { value: 'hi' }, { timeout: 5_000 }))).toMatchObject({ code: 'FORBIDDEN', details: { action: 'request', resource: 'topic:rpc.echo' } });
    // An idempotent producer's batches skip the control interceptors, not this check.
    const idempotent = await as('idempotent-producer-only', [{ allow: ['produce', 'describe'], topics: ['rpc.echo'] }], true);
    expect(await refusal(idempotent.request('rpc.echo', { value: 'hi' }, { timeout: 5_000 }))).toMatchObject({ code: 'FORBIDDEN', details: { action: 'request' } });
    const idempotentCaller = await as('idempotent-caller', [{ allow: ['produce', 'request', 'describe'], topics: ['rpc.echo'] }], true);
    expect(Buffer.from((await idempotentCaller.request('rpc.echo', { value: 'again' }, { timeout: 5_000 })).value).toString()).toBe('echo again');
  });

  it('a responder without `respond` on the topic cannot reply', async () => {
    await admin.createTopic('rpc.mute', { partitions: 1 });
    const errors: unknown[] = [];
    const responder = await as('reader-only', [{ allow: ['consume'], topics: ['rpc.*'] }]);
    await responder.respond('rpc.mute', { from: 'earliest', onError: (e) => errors.push(e) }, () => 'never delivered');
    const caller = await as('caller-2', [{ allow: ['produce', 'request'], topics: ['rpc.mute'] }]);
    expect(await refusal(caller.request('rpc.mute', { value: 'hi' }, { timeout: 1_000 }))).toMatchObject({ code: 'TIMEOUT' });
    await until(() => errors.length > 0);
    expect(errors[0]).toMatchObject({ code: 'FORBIDDEN', details: { action: 'respond', resource: 'topic:rpc.mute' } });
  });

  it('a request whose reply-to is not an inbox of the sending connection is FORBIDDEN, and nothing is stored', async () => {
    const victim = await RawClient.connect(tb.url);
    const attacker = await RawClient.connect(tb.url);
    try {
      const token = await signToken(secret, 'raw', { allow: [SUPERUSER] });
      for (const c of [victim, attacker]) expect(await c.request({ op: 'hello', version: 1, token })).toMatchObject({ op: 'result' });
      const inbox = (await victim.request({ op: 'inbox' })).inbox as string;
      const b = new BatchBuilder();
      b.add(null, 'reply to someone else', { [Header.REPLY_TO]: inbox });
      const before = (await admin.describeTopic('rpc.echo')).offsets[0]!.end;
      expect(await attacker.request({ op: 'produce', topic: 'rpc.echo', records: b.take() })).toMatchObject({ op: 'error', code: 'FORBIDDEN' });
      expect((await admin.describeTopic('rpc.echo')).offsets[0]!.end).toBe(before);
    } finally {
      victim.close();
      attacker.close();
    }
  });
});
