/**
 * Finds the string error codes a set of TypeScript sources emits, by walking their syntax trees
 * (the TypeScript compiler's parser; comments and messages are not codes). A code is a string
 * literal (or a `? :`/`??`/`||` branch of one) in one of these places:
 *
 * - the first argument of `new C(...)` where C takes a code first: WeirError, and every subclass
 *   (in any of the files) that has no constructor of its own or forwards its first parameter as
 *   the first argument of `super` (LogError, RingError, WeirClientError, SupervisorError…);
 * - the first argument of `super(...)` in a subclass of such a class: the fixed code of
 *   `StorageError`-style classes (whose own first argument is then a message, not a code);
 * - a `code:` property of an object literal, a class field `code = …`;
 * - a comparison `x.code === '…'` / `!==`, and a `case '…':` of `switch (x.code)`;
 * - a value of an `as const` object whose name ends in `Code`/`Codes` (LogErrorCode…).
 *
 * A template literal with substitutions in those places is reported as `${…}` (a code must be a
 * constant). Node's own codes are foreign, not weir's: errno names (os.constants.errno: ENOENT,
 * ENOSPC…) and `ERR_…` (ERR_WORKER_OUT_OF_MEMORY); they are not reported.
 */
import os from 'node:os';
import ts from 'typescript';

export interface SourceText {
  /** Shown in reports (a path relative to the repository). */
  file: string;
  text: string;
}

export interface CodeUse {
  file: string;
  line: number;
  code: string;
  /** Which rule found it. */
  where: string;
}

const ERRNO = new Set(Object.keys(os.constants.errno));
const NODE_CODE = /^ERR_[A-Z0-9_]+$/;
const CODE_MAP_NAME = /Codes?$/;

export function isForeignCode(code: string): boolean {
  return ERRNO.has(code) || NODE_CODE.test(code);
}

interface ClassFacts {
  parent: string | null;
  /** No constructor of its own, or one passing its first parameter to `super` first. */
  takesCodeFirst: boolean;
}

function heritageParent(node: ts.ClassLikeDeclaration): string | null {
  for (const clause of node.heritageClauses ?? []) {
    if (clause.token !== ts.SyntaxKind.ExtendsKeyword) continue;
    const e = clause.types[0]?.expression;
    if (e !== undefined && ts.isIdentifier(e)) return e.text;
    if (e !== undefined && ts.isPropertyAccessExpression(e)) return e.name.text;
  }
  return null;
}

function forwardsFirstParam(node: ts.ClassLikeDeclaration): boolean {
  const ctor = node.members.find(ts.isConstructorDeclaration);
  if (ctor === undefined) return true;
  const first = ctor.parameters[0]?.name;
  if (first === undefined || !ts.isIdentifier(first)) return false;
  let forwards = false;
  const visit = (n: ts.Node): void => {
    if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.SuperKeyword) {
      const a = n.arguments[0];
      if (a !== undefined && ts.isIdentifier(a) && a.text === first.text) forwards = true;
    }
    ts.forEachChild(n, visit);
  };
  if (ctor.body !== undefined) visit(ctor.body);
  return forwards;
}

/** The string literals an expression can evaluate to (through parentheses, casts and fallbacks). */
function literals(e: ts.Expression | undefined): string[] {
  if (e === undefined) return [];
  if (ts.isStringLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e)) return [e.text];
  if (ts.isTemplateExpression(e)) return ['${…}'];
  if (ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isSatisfiesExpression(e) || ts.isNonNullExpression(e)) return literals(e.expression);
  if (ts.isConditionalExpression(e)) return [...literals(e.whenTrue), ...literals(e.whenFalse)];
  if (ts.isBinaryExpression(e)) {
    const op = e.operatorToken.kind;
    if (op === ts.SyntaxKind.QuestionQuestionToken || op === ts.SyntaxKind.BarBarToken) return [...literals(e.left), ...literals(e.right)];
  }
  return [];
}

function isCodeAccess(e: ts.Expression): boolean {
  while (ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isNonNullExpression(e)) e = e.expression;
  if (ts.isPropertyAccessExpression(e)) return e.name.text === 'code';
  if (ts.isElementAccessExpression(e)) return ts.isStringLiteral(e.argumentExpression) && e.argumentExpression.text === 'code';
  return false;
}

function propertyName(n: ts.PropertyName): string | null {
  return ts.isIdentifier(n) || ts.isStringLiteral(n) ? n.text : null;
}

/** `{…} as const`, possibly inside `Object.freeze(…)` or `satisfies`. */
function constObject(e: ts.Expression | undefined, asConst = false): ts.ObjectLiteralExpression | null {
  if (e === undefined) return null;
  if (ts.isAsExpression(e)) return constObject(e.expression, asConst || (ts.isTypeReferenceNode(e.type) && e.type.getText() === 'const'));
  if (ts.isSatisfiesExpression(e) || ts.isParenthesizedExpression(e)) return constObject(e.expression, asConst);
  if (ts.isCallExpression(e) && e.expression.getText() === 'Object.freeze') return constObject(e.arguments[0], asConst);
  return ts.isObjectLiteralExpression(e) && asConst ? e : null;
}

/** Every string code the sources emit (registered or not; foreign Node codes left out). */
export function scanErrorCodes(sources: readonly SourceText[]): CodeUse[] {
  const parsed = sources.map((s) => ({ file: s.file, sf: ts.createSourceFile(s.file, s.text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS) }));

  // Pass 1: the class hierarchy across all files, to know which constructors take a code first.
  const classes = new Map<string, ClassFacts>();
  for (const { sf } of parsed) {
    const visit = (n: ts.Node): void => {
      if ((ts.isClassDeclaration(n) || ts.isClassExpression(n)) && n.name !== undefined) {
        classes.set(n.name.text, { parent: heritageParent(n), takesCodeFirst: forwardsFirstParam(n) });
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  const codeFirst = new Set<string>(['WeirError']);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [name, c] of classes) {
      if (!codeFirst.has(name) && c.parent !== null && codeFirst.has(c.parent) && c.takesCodeFirst) {
        codeFirst.add(name);
        grew = true;
      }
    }
  }

  // Pass 2: the places a code is emitted.
  const uses: CodeUse[] = [];
  for (const { file, sf } of parsed) {
    const report = (node: ts.Node, codes: string[], where: string): void => {
      for (const code of codes) {
        if (isForeignCode(code)) continue;
        uses.push({ file, line: sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1, code, where });
      }
    };
    const visit = (n: ts.Node, cls: string | null): void => {
      if (ts.isNewExpression(n)) {
        const callee = ts.isIdentifier(n.expression) ? n.expression.text : ts.isPropertyAccessExpression(n.expression) ? n.expression.name.text : null;
        if (callee !== null && codeFirst.has(callee)) report(n, literals(n.arguments?.[0]), `new ${callee}(code, …)`);
      } else if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.SuperKeyword && cls !== null) {
        const parent = classes.get(cls)?.parent;
        if (parent !== undefined && parent !== null && codeFirst.has(parent)) report(n, literals(n.arguments[0]), `super(code, …) in ${cls}`);
      } else if (ts.isPropertyAssignment(n) && propertyName(n.name) === 'code') {
        report(n, literals(n.initializer), 'code: property');
      } else if (ts.isPropertyDeclaration(n) && propertyName(n.name) === 'code') {
        report(n, literals(n.initializer), 'code field');
      } else if (ts.isBinaryExpression(n)) {
        const op = n.operatorToken.kind;
        if (op === ts.SyntaxKind.EqualsEqualsEqualsToken || op === ts.SyntaxKind.ExclamationEqualsEqualsToken || op === ts.SyntaxKind.EqualsEqualsToken || op === ts.SyntaxKind.ExclamationEqualsToken) {
          if (isCodeAccess(n.left)) report(n, literals(n.right), '.code comparison');
          else if (isCodeAccess(n.right)) report(n, literals(n.left), '.code comparison');
        }
      } else if (ts.isSwitchStatement(n) && isCodeAccess(n.expression)) {
        for (const clause of n.caseBlock.clauses) if (ts.isCaseClause(clause)) report(clause, literals(clause.expression), 'case of switch (x.code)');
      } else if (ts.isVariableDeclaration(n) && ts.isIdentifier(n.name) && CODE_MAP_NAME.test(n.name.text)) {
        const map = constObject(n.initializer);
        if (map !== null) {
          for (const p of map.properties) if (ts.isPropertyAssignment(p)) report(p, literals(p.initializer), `${n.name.text} map`);
        }
      }
      const inner = (ts.isClassDeclaration(n) || ts.isClassExpression(n)) && n.name !== undefined ? n.name.text : cls;
      ts.forEachChild(n, (c) => visit(c, inner));
    };
    visit(sf, null);
  }
  return uses;
}

/** The emitted codes `isRegistered` does not know, each with its file and line. */
export function unregisteredCodes(sources: readonly SourceText[], isRegistered: (code: string) => boolean): CodeUse[] {
  return scanErrorCodes(sources).filter((u) => !isRegistered(u.code));
}
