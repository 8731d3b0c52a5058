#!/usr/bin/env node
/**
 * `npm install` hook: build native/weir_io.c (the log's page-cache drop-behind and hardware CRC32C,
 * the gateway thread's scheduler slice; the load generator's client threads' slice and timer slack) with the node-gyp that npm bundles. Optional by design: without a C compiler or
 * Node's headers the broker still runs, with these off (CRCs in JavaScript), and says so at start. Node's headers come from the local Node
 * install when npm has no `nodedir` set (this machine has no internet but the npm registry, and
 * node-gyp would otherwise try to download them).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

function nodeGypScript() {
  if (process.env.npm_config_node_gyp) return process.env.npm_config_node_gyp;
  // Outside npm: npm's own copy, next to the npm that runs this Node.
  const npmDir = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm');
  try {
    return createRequire(path.join(npmDir, 'package.json')).resolve('node-gyp/bin/node-gyp.js');
  } catch {
    return null;
  }
}

const gyp = nodeGypScript();
const args = ['rebuild'];
const localHeaders = path.join(path.dirname(process.execPath), '..');
if (!process.env.npm_config_nodedir && fs.existsSync(path.join(localHeaders, 'include', 'node', 'node_api.h'))) {
  args.push(`--nodedir=${path.resolve(localHeaders)}`);
}
const result = gyp ? spawnSync(process.execPath, [gyp, ...args], { stdio: 'inherit' }) : null;
if (!result || result.status !== 0) {
  console.warn(
    'weir: the native I/O helper (native/weir_io.c) was not built' +
      (gyp ? ` (node-gyp exited with ${result?.status ?? result?.signal})` : ' (node-gyp not found)') +
      '. The broker runs without it, with page-cache drop-behind and the scheduler slice off and record CRCs computed in JavaScript. To build it: python3, make and a C compiler, then `npm rebuild weir` or `node scripts/build-native.mjs`.',
  );
}
