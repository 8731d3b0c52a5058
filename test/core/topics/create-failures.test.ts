/**
 * A topic whose files cannot be made is refused with a documented code that says what failed
 * (docs/protocol.md, "Error codes"), never the supervisor's CHILD_START_FAILED, and is not left
 * half-created: once the cause is gone, the same create_topic creates it, and it survives a restart.
 *
 * Real causes: a full tmpfs (ENOSPC), an immutable
 * directory or file (chattr +i as root, since root ignores modes; chmod otherwise) for EPERM/EACCES,
 * and a read-only tmpfs for a data directory that does not exist yet. Running out of file
 * descriptors (RESOURCE_LIMIT) is tested in test/e2e/idle-partitions.test.ts: idle partitions hold
 * none, so creating topics alone no longer runs a broker out of them.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Broker } from '../../../src/broker.js';
import { WeirError } from '../../../src/common/errors.js';
import { brokerFixture, startTestBroker } from '../../support/broker.js';
import { tmpDir } from '../../support/tmp-dir.js';
import { canMountTmpfs, tryMount, unmount } from '../../support/small-fs.js';

const isRoot = process.getuid?.() === 0;
const tmp = tmpDir('weir-create-fail-');
const mounts: string[] = [];
const undo: Array<() => void> = [];
const fx = brokerFixture({
  after: () => {
    for (const u of undo.splice(0)) u();
    for (const m of mounts.splice(0)) unmount(m);
    tmp.cleanup();
  },
});

/** A fresh directory for one test (the fixture removes them all after each). */
function sub(name: string): string {
  const dir = path.join(tmp.dir, name);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

async function failure(p: Promise<unknown>): Promise<WeirError> {
  try {
    await p;
  } catch (err) {
    if (WeirError.isWeirError(err)) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

/** Make `file` unwritable for this process: immutable as root (root ignores modes), read-only otherwise. */
function lock(file: string): void {
  if (isRoot) {
    execFileSync('chattr', ['+i', file]);
    undo.push(() => execFileSync('chattr', ['-i', file]));
  } else {
    const mode = fs.statSync(file).mode & 0o777;
    fs.chmodSync(file, 0o555);
    undo.push(() => fs.chmodSync(file, mode));
  }
}
const canLock = (() => {
  if (!isRoot) return true;
  const probe = tmpDir('weir-chattr-probe-');
  try {
    execFileSync('chattr', ['+i', probe.dir], { stdio: 'ignore' });
    execFileSync('chattr', ['-i', probe.dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    probe.cleanup();
  }
})();

describe.skipIf(!canMountTmpfs)('on a full disk (tmpfs; skipped when mount(8) is not permitted)', () => {
  it('create_topic answers STORAGE_FULL (retryable, naming ENOSPC), and the same create works once space is freed', async () => {
    const mnt = sub('mnt');
    expect(tryMount(mnt, '4m')).toBe(true);
    mounts.push(mnt);
    const dataDir = path.join(mnt, 'data');
    fx.tb = await startTestBroker({ dataDir, segmentBytes: 1 << 20 });
    const c = await fx.client(fx.tb.url, { reconnect: false });
    const filler = path.join(mnt, 'filler');
    expect(() => fs.writeFileSync(filler, Buffer.alloc(8 << 20))).toThrow(/ENOSPC/);

    const err = await failure(c.createTopic('orders', { partitions: 2 }));
    expect(err.code).toBe('STORAGE_FULL');
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/ENOSPC/);
    expect(err.message).toContain(path.join(dataDir, 'topics', 'orders'));
    expect(await c.listTopics()).toEqual([]);

    fs.unlinkSync(filler);
    expect(await c.createTopic('orders', { partitions: 2 })).toMatchObject({ created: true, partitions: 2 });
    await c.produce('orders', [{ key: 'k', value: 'v' }]);
    await fx.closeClients();
    await fx.tb.stop({ keepData: true });
    fx.tb = await startTestBroker({ dataDir, segmentBytes: 1 << 20 });
    const c2 = await fx.client(fx.tb.url, { reconnect: false });
    expect(await c2.listTopics()).toEqual([{ topic: 'orders', partitions: 2 }]);
  });
});

describe.skipIf(!canLock)('on a directory or file the broker may not write (EPERM / EACCES)', () => {
  it('create_topic answers STORAGE_ERROR naming the errno and the path, and works once the directory is writable', async () => {
    fx.tb = await startTestBroker({ dataDir: sub('eperm') });
    const c = await fx.client(fx.tb.url, { reconnect: false });
    await c.createTopic('first', { partitions: 1 });
    const topicsDir = path.join(fx.tb.dir, 'topics');
    lock(topicsDir);
    const err = await failure(c.createTopic('orders', { partitions: 1 }));
    expect(err.code).toBe('STORAGE_ERROR');
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(isRoot ? /EPERM/ : /EACCES/);
    expect(err.message).toContain(path.join(topicsDir, 'orders'));
    expect((await c.listTopics()).map((t) => t.topic)).toEqual(['first']);
    for (const u of undo.splice(0)) u();
    expect(await c.createTopic('orders', { partitions: 1 })).toMatchObject({ created: true });
  });

  it('a topic whose topics.json entry cannot be written is not created: STORAGE_ERROR, and a later create creates it', async () => {
    fx.tb = await startTestBroker({ dataDir: sub('persist') });
    const c = await fx.client(fx.tb.url, { reconnect: false });
    await c.createTopic('first', { partitions: 1 });
    // topics.json is replaced by a rename: lock the file as root (immutable), the directory otherwise.
    lock(isRoot ? path.join(fx.tb.dir, 'topics.json') : fx.tb.dir);
    const err = await failure(c.createTopic('orders', { partitions: 2 }));
    expect(err.code).toBe('STORAGE_ERROR');
    expect(err.message).toContain('topics.json');
    expect(err.message).toMatch(isRoot ? /EPERM/ : /EACCES/);
    expect((await c.listTopics()).map((t) => t.topic)).toEqual(['first']);
    for (const u of undo.splice(0)) u();
    expect(await c.createTopic('orders', { partitions: 2 })).toMatchObject({ created: true, partitions: 2 });
    const dataDir = fx.tb.dir;
    await fx.closeClients();
    await fx.tb.stop({ keepData: true });
    fx.tb = await startTestBroker({ dataDir });
    const c2 = await fx.client(fx.tb.url, { reconnect: false });
    expect((await c2.listTopics()).map((t) => t.topic).sort()).toEqual(['first', 'orders']);
  });
});

describe.skipIf(!canMountTmpfs)('a data directory on a read-only file system (tmpfs mounted ro)', () => {
  it('refuses to start with BAD_DATA_DIR naming EROFS and the directory it could not make, not "ENOENT mkdir"', async () => {
    const mnt = sub('ro');
    expect(tryMount(mnt, '64k', { readOnly: true })).toBe(true);
    mounts.push(mnt);
    const err = await failure(Broker.start({ dataDir: path.join(mnt, 'weir', 'data'), port: 0 }));
    expect(err.code).toBe('BAD_DATA_DIR');
    expect(err.message).toMatch(/EROFS/);
    expect(err.message).toContain(path.join(mnt, 'weir'));
    expect(err.message).not.toMatch(/ENOENT/);
  });
});

it('refuses a data path that is a file with a message that says so', async () => {
  const file = path.join(sub('file'), 'a-file');
  fs.writeFileSync(file, 'x');
  const err = await failure(Broker.start({ dataDir: file, port: 0 }));
  expect(err.code).toBe('BAD_DATA_DIR');
  expect(err.message).toContain(file);
  expect(err.message).toMatch(/not a directory/);
});

