/**
 * The error-code registry (src/protocol/error-codes.ts) is the one list of weir's codes: the
 * committed docs/errors.md is what it generates, every string code src/ emits is registered in it,
 * and the sets the broker and the SDK use (RETRYABLE, RING_ERROR_CODES…) say what it says.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CLIENT_ONLY_CODES, ERROR_CODES, ErrorCode, RETRYABLE, RING_ERROR_CODES, WeirCode, isWeirCode } from '../../src/protocol/codes.js';
import { renderErrorsDoc } from '../../src/protocol/errors-doc.js';
import * as logErrors from '../../src/log/errors.js';
import * as ringErrors from '../../src/ring/errors.js';
import * as supervisorErrors from '../../src/supervisor/errors.js';
import { ClientErrorCode } from '../../src/client/errors.js';
import { scanErrorCodes, unregisteredCodes, type SourceText } from '../support/error-code-scan.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const codes = Object.keys(ERROR_CODES) as WeirCode[];

function srcSources(): SourceText[] {
  const dir = path.join(root, 'src');
  return (fs.readdirSync(dir, { recursive: true }) as string[])
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .sort()
    .map((f) => ({ file: path.join('src', f), text: fs.readFileSync(path.join(dir, f), 'utf8') }));
}

describe('docs/errors.md', () => {
  it('is exactly what `npm run docs:errors` generates from the registry', () => {
    const committed = fs.readFileSync(path.join(root, 'docs/errors.md'), 'utf8');
    // On failure: run `npm run docs:errors` and commit docs/errors.md.
    expect(committed).toBe(renderErrorsDoc());
  });

  it('has one row per registered code, under its kind', () => {
    const doc = renderErrorsDoc();
    for (const c of codes) expect(doc.split('\n').filter((l) => l.startsWith(`| \`${c}\` |`)), c).toHaveLength(1);
    const startUp = doc.slice(doc.indexOf('## Start-up codes'), doc.indexOf('## Internal codes'));
    expect(startUp).toContain('| `LISTEN_FAILED` | no |');
    expect(startUp).not.toContain('`LOG_CORRUPT`');
  });
});

describe('every code emitted in src/ is registered', () => {
  it('finds no unregistered string code in src/**/*.ts', () => {
    const sources = srcSources();
    expect(sources.length).toBeGreaterThan(100);
    const unknown = unregisteredCodes(sources, isWeirCode).map((u) => `${u.file}:${u.line}: ${u.code} (${u.where})`);
    expect(unknown).toEqual([]);
  });

  // The scanner is what makes the test above fail: show it catches each way a code is emitted.
  const fixture: SourceText[] = [
    {
      file: 'fixture/errors.ts',
      text: `
import { WeirError } from '../common/errors.js';
export class ModError extends WeirError {
  constructor(code: string, message: string) { super(code, message); }
}
export class FixedError extends ModError {
  constructor(message: string) {
    super('FIXED_CODE', message);
  }
}
export class DefaultedError extends WeirError {}
export class BatchLikeError extends Error {
  readonly code = 'FIELD_CODE';
}
export const FooErrorCode = { A: 'MAP_CODE', B: WeirCode.INTERNAL } as const;
`,
    },
    {
      file: 'fixture/use.ts',
      text: `
// new WeirError('IN_A_COMMENT', 'comments are not code')
throw new WeirError('NEW_CODE', 'an unregistered code');
throw new WeirError(ErrorCode.INTERNAL, 'a constant: checked by the compiler');
throw new WeirError('INTERNAL', 'a registered literal');
throw new FixedError('SOME_MESSAGE_TEXT');
throw new ModError('FORWARDED_CODE', 'message');
throw new DefaultedError('INHERITED_CTOR_CODE', 'message');
throw new Error('PLAIN_ERROR_MESSAGE');
throw Object.assign(new Error('disk full'), { code: 'ENOSPC' });
const plain = { code: ok ? 'OBJECT_CODE' : 'INTERNAL', message: 'm' };
const fallback = { code: errno ?? 'FALLBACK_CODE' };
if (err.code === 'COMPARED_CODE' || (err as NodeJS.ErrnoException).code !== 'ENOENT') {}
if (e.code === 'ERR_WORKER_OUT_OF_MEMORY') {}
switch (err.code) { case 'CASE_CODE': break; }
throw new WeirError(\`DYNAMIC_\${kind}\`, 'm');
`,
    },
  ];

  it('reports an unregistered code with its file and line, whichever way it is emitted', () => {
    const found = unregisteredCodes(fixture, isWeirCode).map((u) => `${u.file}:${u.line} ${u.code}`);
    expect(found.sort()).toEqual(
      [
        'fixture/errors.ts:8 FIXED_CODE',
        'fixture/errors.ts:13 FIELD_CODE',
        'fixture/errors.ts:15 MAP_CODE',
        'fixture/use.ts:3 NEW_CODE',
        'fixture/use.ts:7 FORWARDED_CODE',
        'fixture/use.ts:8 INHERITED_CTOR_CODE',
        'fixture/use.ts:11 OBJECT_CODE',
        'fixture/use.ts:12 FALLBACK_CODE',
        'fixture/use.ts:13 COMPARED_CODE',
        'fixture/use.ts:15 CASE_CODE',
        'fixture/use.ts:16 ${…}',
      ].sort(),
    );
  });

  it('sees registered literals as codes too, and leaves messages, comments and Node codes alone', () => {
    const all = scanErrorCodes(fixture).map((u) => u.code);
    expect(all).toContain('INTERNAL');
    for (const notACode of ['SOME_MESSAGE_TEXT', 'PLAIN_ERROR_MESSAGE', 'IN_A_COMMENT', 'ENOSPC', 'ENOENT', 'ERR_WORKER_OUT_OF_MEMORY']) {
      expect(all, notACode).not.toContain(notACode);
    }
  });

  it('would have caught the raw literals src/ had before the registry', () => {
    const before: SourceText = {
      file: 'src/broker.ts',
      text: `throw new WeirError('BAD_CONFIG', 'x');\nthrow new WeirClientError('BAD_RESPONSE', 'y', {});\n`,
    };
    const withClient: SourceText = {
      file: 'src/client/errors.ts',
      text: `export class WeirClientError extends WeirError { constructor(code: string, message: string, o: object) { super(code, message, o); } }`,
    };
    expect(scanErrorCodes([withClient, before]).map((u) => u.code)).toEqual(['BAD_CONFIG', 'BAD_RESPONSE']);
    expect(unregisteredCodes([withClient, before], (c) => c !== 'BAD_CONFIG').map((u) => u.code)).toEqual(['BAD_CONFIG']);
  });
});

describe('the derived sets agree with the registry', () => {
  it('RETRYABLE is exactly the retryable codes of ErrorCode', () => {
    const protocol = Object.values(ErrorCode) as WeirCode[];
    expect(new Set(RETRYABLE)).toEqual(new Set(protocol.filter((c) => ERROR_CODES[c].retryable)));
    // What clients rely on today (docs/protocol.md's "yes" rows and the SDK's two).
    expect([...RETRYABLE].sort()).toEqual(
      ['AUTH_RATE_LIMITED', 'CONNECTION_CLOSED', 'PARTITION_UNAVAILABLE', 'RESOURCE_LIMIT', 'SHUTTING_DOWN', 'STORAGE_FULL', 'THROTTLED', 'TIMEOUT', 'TOO_MANY_CONNECTIONS'].sort(),
    );
  });

  it("says of each code what docs/protocol.md's error tables say (retryable yes/no)", () => {
    const doc = fs.readFileSync(path.join(root, 'docs/protocol.md'), 'utf8');
    const rows = [...doc.matchAll(/^\| `([A-Z_]+)` \| (yes|no)\b/gm)];
    expect(rows.length).toBeGreaterThan(30);
    for (const [, code, yes] of rows) {
      expect(isWeirCode(code!), code).toBe(true);
      expect(ERROR_CODES[code as WeirCode].retryable, code).toBe(yes === 'yes');
    }
  });

  it('ErrorCode is the wire codes plus the client codes marked inErrorCode; CLIENT_ONLY_CODES those client codes', () => {
    expect(Object.keys(ErrorCode)).toEqual(codes.filter((c) => ERROR_CODES[c].kind === 'wire' || ERROR_CODES[c].inErrorCode === true));
    for (const [k, v] of Object.entries(ErrorCode)) expect(v).toBe(k);
    expect([...CLIENT_ONLY_CODES]).toEqual(['TIMEOUT', 'CONNECTION_CLOSED', 'RESPONDER_ERROR']);
  });

  it('RING_ERROR_CODES keeps its numbering (a wire format inside the partition rings)', () => {
    expect(RING_ERROR_CODES).toEqual([
      'INTERNAL',
      'STORAGE_FULL',
      'STORAGE_ERROR',
      'OFFSET_OUT_OF_RANGE',
      'SHUTTING_DOWN',
      'MESSAGE_TOO_LARGE',
      'PARTITION_UNAVAILABLE',
      'OUT_OF_ORDER_SEQUENCE',
      'DUPLICATE_SEQUENCE',
      'DATA_LOSS',
      'RESOURCE_LIMIT',
    ]);
    RING_ERROR_CODES.forEach((c, n) => expect(ERROR_CODES[c].ring, c).toBe(n));
    expect(codes.filter((c) => ERROR_CODES[c].ring !== undefined)).toHaveLength(RING_ERROR_CODES.length);
  });

  it("the modules' code sets name registered codes, and their errors' retryable is the registry's", () => {
    const sets = { LogErrorCode: logErrors.LogErrorCode, RingErrorCode: ringErrors.RingErrorCode, SupervisorErrorCode: supervisorErrors.SupervisorErrorCode, ClientErrorCode };
    for (const [name, set] of Object.entries(sets)) for (const c of Object.values(set)) expect(isWeirCode(c), `${name}: ${c}`).toBe(true);

    const details = { id: 'c', supervisor: 's', childId: 'c', intensity: 1, period: 1, timeoutMs: 1, exitCode: 1 };
    const made = [
      new logErrors.StorageFullError({ path: 'p' }),
      new logErrors.StorageError('m', {}),
      new logErrors.OffsetOutOfRangeError(1, 0, 0),
      new logErrors.LogCorruptError('m', {}),
      new logErrors.LogClosedError(),
      new logErrors.LogArgumentError('m'),
      new ringErrors.RingRecordTooLargeError(2, 1),
      new ringErrors.RingClosedError(),
      new ringErrors.RingTimeoutError('w', 1),
      new ringErrors.RingStateError('m'),
      new ringErrors.RingLayoutError('m'),
      new ringErrors.RingCorruptError('m', {}),
      new supervisorErrors.SupervisorEscalationError(details),
      new supervisorErrors.SupervisorConfigError('s', ['p']),
      new supervisorErrors.SupervisorNotRunningError('s', 'stopped'),
      new supervisorErrors.SupervisorKilledError('s'),
      new supervisorErrors.ChildStartFailedError(details),
      new supervisorErrors.ChildStartTimeoutError(details),
      new supervisorErrors.ChildCrashedError(details),
      new supervisorErrors.ChildOutOfMemoryError(details),
      new supervisorErrors.ChildExitedError(details),
      new supervisorErrors.ChildKilledError(details),
      new supervisorErrors.ChildNotFoundError('s', 'c'),
      new supervisorErrors.ChildAlreadyExistsError('s', 'c'),
      new supervisorErrors.ChildRunningError('s', 'c', 'running'),
    ];
    for (const e of made) {
      expect(isWeirCode(e.code), e.code).toBe(true);
      expect(e.retryable, e.code).toBe(ERROR_CODES[e.code as WeirCode].retryable);
    }
  });
});
