/**
 * The import rules of src/ (docs/architecture.md, "Layers"; .dependency-cruiser.cjs): no cycle, and
 * imports only down the layers. Also shows the check fails on a violation (a fixture tree where the
 * core imports a front door).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const depcruise = path.join(root, 'node_modules', '.bin', 'depcruise');

interface Violation {
  from: string;
  to: string;
  rule: { name: string };
}

/** Violations of the project's rules in `dir/src`. */
function violations(dir: string): Violation[] {
  const out = execFileSync(depcruise, ['src', '--config', path.join(root, '.dependency-cruiser.cjs'), '--output-type', 'json'], { cwd: dir, encoding: 'utf8', maxBuffer: 64 << 20 });
  return (JSON.parse(out) as { summary: { violations: Violation[] } }).summary.violations;
}

const fixtures: string[] = [];
afterAll(() => {
  for (const d of fixtures) fs.rmSync(d, { recursive: true, force: true });
});

it('src/ has no import cycle and imports only down the layers', () => {
  const found = violations(root).map((v) => `${v.rule.name}: ${v.from} → ${v.to}`);
  expect(found).toEqual([]);
}, 60_000);

it('the check finds a core module that imports a front door, and a cycle', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weir-layers-'));
  fixtures.push(dir);
  const write = (file: string, text: string): void => {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), text);
  };
  fs.copyFileSync(path.join(root, 'tsconfig.json'), path.join(dir, 'tsconfig.json'));
  write('src/core/a.ts', "import { b } from '../gateway/b.js';\nexport const a = (): number => b();\n");
  write('src/gateway/b.ts', "export const b = (): number => 1;\n");
  write('src/log/c.ts', "import { d } from './d.js';\nexport const c = (): number => d();\n");
  write('src/log/d.ts', "import { c } from './c.js';\nexport const d = (): number => c();\n");
  const found = violations(dir).map((v) => `${v.rule.name}: ${v.from} → ${v.to}`).sort();
  // depcruise reports a cycle once, from whichever of its modules it reaches first.
  expect(found).toHaveLength(2);
  expect(found[0]).toMatch(/^no-circular: src\/log\/[cd]\.ts → src\/log\/[cd]\.ts$/);
  expect(found[1]).toBe('the-core-knows-no-front-door-and-no-feature: src/core/a.ts → src/gateway/b.ts');
}, 60_000);
