/**
 * Every error code the broker can send has a row in one of docs/protocol.md's error tables: the
 * codes of src/protocol/codes.ts, less those the SDK raises itself (CLIENT_ONLY_CODES), which the
 * document must still name; and every start-up code of the registry has a row in its start-up
 * table. A code added without its row fails here.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { CLIENT_ONLY_CODES, ErrorCode, codesOfKind } from '../../src/protocol/codes.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const doc = fs.readFileSync(path.join(root, 'docs/protocol.md'), 'utf8');
/** `| \`CODE\` | retryable | meaning |` rows of the error tables. */
const documented = new Set([...doc.matchAll(/^\| `([A-Z_]+)` \| (?:yes|no)\b[^|]*\|/gm)].map((m) => m[1]!));

it('documents every code the broker can send in an error table of docs/protocol.md', () => {
  const sent = Object.values(ErrorCode).filter((c) => !CLIENT_ONLY_CODES.has(c));
  expect(sent.length).toBeGreaterThan(20);
  expect(sent.filter((c) => !documented.has(c))).toEqual([]);
});

it('names the client-side-only codes in docs/protocol.md, and they are codes of the registry', () => {
  const codes = new Set<string>(Object.values(ErrorCode));
  for (const c of CLIENT_ONLY_CODES) {
    expect(codes.has(c), c).toBe(true);
    expect(doc.includes(`\`${c}\``), c).toBe(true);
  }
});

it('documents every start-up code of the registry in the start-up table of docs/protocol.md', () => {
  const section = doc.slice(doc.indexOf('## Start-up errors'));
  const table = section.slice(0, section.indexOf('\n## '));
  const rows = new Set([...table.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]!));
  expect(codesOfKind('start-up').filter((c) => !rows.has(c))).toEqual([]);
});
