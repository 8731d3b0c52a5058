/**
 * One broker per port: real `weir start` processes (bin/weir.js, so `npm run build` first).
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
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
