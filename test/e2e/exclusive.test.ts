/**
 * One broker per port and per data directory, and data paths it cannot use refused clearly: real
 * `weir start` processes (bin/weir.js, so `npm run build` first) and embedded brokers.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker.js';
import { connect } from '../../src/client/index.js';
import { exited, runBrokerToExit, startBrokerProcess } from '../support/child-broker.js';
import { tmpDir } from '../support/tmp-dir.js';

const procs: ChildProcess[] = [];
const cleanups: Array<() => void> = [];
afterEach(async () => {
  for (const p of procs.splice(0)) {
    p.kill('SIGKILL');
    await exited(p);
  }
  for (const c of cleanups.splice(0)) c();
});

function dir(): string {
  const t = tmpDir('weir-exclusive-');
  cleanups.push(t.cleanup);
  return t.dir;
}

async function started(dataDir: string, port?: number): Promise<{ proc: ChildProcess; url: string }> {
  const b = await startBrokerProcess(dataDir, port === undefined ? {} : { port });
  procs.push(b.proc);
  return b;
}

/** A port nothing listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Every entry under `root` with what a write, a create or a replace would change. */
function listing(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const name of fs.readdirSync(d)) {
      const p = path.join(d, name);
      const st = fs.lstatSync(p);
      out[path.relative(root, p)] = `${st.isDirectory() ? 'dir' : 'file'} ino ${st.ino} size ${st.size} mtime ${st.mtimeMs} ctime ${st.ctimeMs}`;
      if (st.isDirectory()) walk(p);
    }
  };
  const st = fs.statSync(root);
  out['.'] = `mtime ${st.mtimeMs} ctime ${st.ctimeMs}`;
  walk(root);
  return out;
}

async function createTopic(url: string, topic: string): Promise<void> {
  const c = await connect(url, { reconnect: false });
  try {
    await c.createTopic(topic, { partitions: 2 });
  } finally {
    await c.close();
  }
}

/** `times` fresh connections to `url`, each sees `topic`: a second listener on the port would take some of them. */
async function servesEveryConnection(url: string, topic: string, times: number): Promise<void> {
  for (let i = 0; i < times; i++) {
    const c = await connect(url, { reconnect: false });
    try {
      expect((await c.listTopics()).map((t) => t.topic)).toContain(topic);
    } finally {
      await c.close();
    }
  }
}

describe('one broker per port', () => {
  it('a second `weir start` on a port in use exits non-zero naming host:port, before creating its data directory; the first keeps every connection', async () => {
    const port = await freePort();
    const first = await started(dir(), port);
    await createTopic(first.url, 'first.only');
    const secondData = path.join(dir(), 'data');
    const second = await runBrokerToExit(['--port', String(port), '--data', secondData]);
    expect(second.started).toBe(false);
    expect(second.hung).toBe(false);
    expect(second.code).not.toBe(0);
    expect(second.output).toContain('LISTEN_FAILED');
    expect(second.output).toContain(`127.0.0.1:${port}`);
    expect(fs.existsSync(secondData)).toBe(false);
    await servesEveryConnection(first.url, 'first.only', 12);
  });
});

describe('one broker per data directory', () => {
  it('a second `weir start` on a directory in use fails naming the holder\'s pid, changes nothing in it, and the first keeps serving', async () => {
    const data = dir();
    const first = await started(data);
    await createTopic(first.url, 'held');
    const before = listing(data);
    expect(Object.keys(before)).toContain('.weir.lock');
    expect(fs.readFileSync(path.join(data, '.weir.lock'), 'utf8').trim()).toBe(String(first.proc.pid));
    const second = await runBrokerToExit(['--port', '0', '--data', data]);
    expect(second.started).toBe(false);
    expect(second.code).not.toBe(0);
    expect(second.output).toContain('DATA_DIR_LOCKED');
    expect(second.output).toContain(data);
    expect(second.output).toContain(`pid ${first.proc.pid}`);
    expect(listing(data)).toEqual(before);
    await servesEveryConnection(first.url, 'held', 3);
  });

  it('the directory can be taken again after the holder stops cleanly (SIGTERM) and after it is SIGKILLed', async () => {
    const data = dir();
    let b = await started(data);
    await createTopic(b.url, 'kept');
    b.proc.kill('SIGTERM');
    await exited(b.proc);
    expect(b.proc.exitCode).toBe(0);
    expect(fs.existsSync(path.join(data, '.weir.lock'))).toBe(false); // a clean stop leaves no lock file

    b = await started(data);
    await servesEveryConnection(b.url, 'kept', 1);
    b.proc.kill('SIGKILL');
    await exited(b.proc);
    expect(fs.existsSync(path.join(data, '.weir.lock'))).toBe(true); // left behind, but no longer locked

    b = await started(data);
    await servesEveryConnection(b.url, 'kept', 1);
    expect(fs.readFileSync(path.join(data, '.weir.lock'), 'utf8').trim()).toBe(String(b.proc.pid));
  });

  it('holds for embedded brokers too: a second Broker.start on the directory in one process is refused until the first closes', async () => {
    const data = dir();
    const first = await Broker.start({ dataDir: data, port: 0 });
    try {
      await expect(Broker.start({ dataDir: data, port: 0 })).rejects.toMatchObject({
        code: 'DATA_DIR_LOCKED',
        message: expect.stringContaining(`pid ${process.pid}`) as unknown,
      });
    } finally {
      await first.close();
    }
    const again = await Broker.start({ dataDir: data, port: 0 });
    await again.close();
  });
});

describe('data paths a broker cannot use', () => {
  const asRoot = process.getuid?.() === 0;

  it.each([
    ['under /proc', () => `/proc/weir-x-${process.pid}/data`, /under \/proc/],
    ['under /sys', () => `/sys/weir-x-${process.pid}`, /under \/sys/],
    [
      'an existing file',
      () => {
        const f = path.join(dir(), 'data');
        fs.writeFileSync(f, 'not a directory');
        return f;
      },
      /not a directory/,
    ],
  ])('refuses a data path %s with BAD_DATA_DIR naming it, and exits non-zero without hanging', async (_name, make, why) => {
    const data = make();
    const r = await runBrokerToExit(['--port', '0', '--data', data]);
    expect(r.hung).toBe(false);
    expect(r.started).toBe(false);
    expect(r.code).not.toBe(0);
    expect(r.output).toContain('BAD_DATA_DIR');
    expect(r.output).toContain(data);
    expect(r.output).toMatch(why);
  });

  // Root ignores directory modes: as root the broker runs as `nobody` (uid 65534) for this case.
  it(`refuses a fresh data path inside a read-only directory with BAD_DATA_DIR naming it${asRoot ? ' (run as nobody: root ignores modes)' : ''}`, async () => {
    const base = dir();
    fs.chmodSync(base, 0o755);
    const ro = path.join(base, 'ro');
    fs.mkdirSync(ro, { mode: 0o555 });
    fs.chmodSync(ro, 0o555);
    const data = path.join(ro, 'fresh', 'data');
    const r = await runBrokerToExit(['--port', '0', '--data', data], asRoot ? { spawn: { uid: 65534, gid: 65534 } } : {});
    expect(r.hung).toBe(false);
    expect(r.started).toBe(false);
    expect(r.code).not.toBe(0);
    expect(r.output).toContain('BAD_DATA_DIR');
    expect(r.output).toContain(data);
    expect(r.output).toMatch(/permission denied/i);
    expect(fs.readdirSync(ro)).toEqual([]);
  });
});
