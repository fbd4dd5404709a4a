// A small evaluator for GitHub Actions expressions (`${{ … }}` and `if:`), enough for the
// project's workflows: literals, context property access, ! && || == != < <= > >=, and the
// functions success() failure() always() cancelled() contains() startsWith() endsWith()
// format() join() toJSON() fromJSON(). Semantics follow GitHub's: loose, case-insensitive
// string equality, `&&`/`||` yield operands, missing properties are null.

export type Value = null | boolean | number | string | Value[] | { [key: string]: Value };

export interface ExpressionContext {
  /** Named contexts: github, env, inputs, secrets, steps, vars, runner, job, matrix, needs. */
  contexts: Readonly<Record<string, Value>>;
  /** Status of the job so far, for success()/failure()/always()/cancelled(). */
  jobStatus: 'success' | 'failure' | 'cancelled';
}

export class ExpressionError extends Error {
  override name = 'ExpressionError';
}

type Token =
  | { type: 'num'; value: number }
  | { type: 'str'; value: string }
  | { type: 'ident'; value: string }
  | { type: 'op'; value: string };

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === "'") {
      let value = '';
      i++;
      for (;;) {
        if (i >= source.length) throw new ExpressionError(`unterminated string in: ${source}`);
        if (source[i] === "'") {
          if (source[i + 1] === "'") {
            value += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += source[i++];
      }
      tokens.push({ type: 'str', value });
    } else if (/[0-9]/.test(c) || (c === '-' && /[0-9]/.test(source[i + 1] ?? '') && !prevIsOperand(tokens))) {
      const m = /^-?(0x[0-9a-fA-F]+|[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?)/.exec(source.slice(i))!;
      tokens.push({ type: 'num', value: Number(m[0]) });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(source.slice(i))!;
      tokens.push({ type: 'ident', value: m[0] });
      i += m[0].length;
    } else {
      const two = source.slice(i, i + 2);
      if (['==', '!=', '<=', '>=', '&&', '||'].includes(two)) {
        tokens.push({ type: 'op', value: two });
        i += 2;
      } else if ('!<>().,[]*'.includes(c)) {
        tokens.push({ type: 'op', value: c });
        i++;
      } else {
        throw new ExpressionError(`unexpected character '${c}' in: ${source}`);
      }
    }
  }
  return tokens;
}

function prevIsOperand(tokens: Token[]): boolean {
  const prev = tokens[tokens.length - 1];
  return !!prev && (prev.type !== 'op' || prev.value === ')' || prev.value === ']');
}

type Node =
  | { kind: 'lit'; value: Value }
  | { kind: 'ctx'; name: string }
  | { kind: 'prop'; object: Node; key: Node | '*' }
  | { kind: 'not'; operand: Node }
  | { kind: 'bin'; op: string; left: Node; right: Node }
  | { kind: 'call'; name: string; args: Node[] };

class Parser {
  private i = 0;
  constructor(
    private readonly tokens: Token[],
    private readonly source: string,
  ) {}

  parse(): Node {
    const node = this.or();
    if (this.i < this.tokens.length) throw this.error('unexpected token');
    return node;
  }

  private error(what: string): ExpressionError {
    const t = this.tokens[this.i];
    return new ExpressionError(`${what}${t ? ` '${String(t.value)}'` : ' end'} in expression: ${this.source}`);
  }

  private peekOp(...ops: string[]): string | undefined {
    const t = this.tokens[this.i];
    return t?.type === 'op' && ops.includes(t.value) ? t.value : undefined;
  }

  private expectOp(op: string): void {
    if (!this.peekOp(op)) throw this.error(`expected '${op}' but found`);
    this.i++;
  }

  private or(): Node {
    let left = this.and();
    while (this.peekOp('||')) {
      this.i++;
      left = { kind: 'bin', op: '||', left, right: this.and() };
    }
    return left;
  }

  private and(): Node {
    let left = this.equality();
    while (this.peekOp('&&')) {
      this.i++;
      left = { kind: 'bin', op: '&&', left, right: this.equality() };
    }
    return left;
  }

  private equality(): Node {
    let left = this.comparison();
    for (let op = this.peekOp('==', '!='); op; op = this.peekOp('==', '!=')) {
      this.i++;
      left = { kind: 'bin', op, left, right: this.comparison() };
    }
    return left;
  }

  private comparison(): Node {
    let left = this.unary();
    for (let op = this.peekOp('<', '<=', '>', '>='); op; op = this.peekOp('<', '<=', '>', '>=')) {
      this.i++;
      left = { kind: 'bin', op, left, right: this.unary() };
    }
    return left;
  }

  private unary(): Node {
    if (this.peekOp('!')) {
      this.i++;
      return { kind: 'not', operand: this.unary() };
    }
    return this.postfix(this.primary());
  }

  private primary(): Node {
    const t = this.tokens[this.i];
    if (!t) throw this.error('unexpected');
    this.i++;
    if (t.type === 'num' || t.type === 'str') return { kind: 'lit', value: t.value };
    if (t.type === 'op' && t.value === '(') {
      const inner = this.or();
      this.expectOp(')');
      return inner;
    }
    if (t.type === 'ident') {
      if (t.value === 'true' || t.value === 'false') return { kind: 'lit', value: t.value === 'true' };
      if (t.value === 'null') return { kind: 'lit', value: null };
      if (this.peekOp('(')) {
        this.i++;
        const args: Node[] = [];
        if (!this.peekOp(')')) {
          args.push(this.or());
          while (this.peekOp(',')) {
            this.i++;
            args.push(this.or());
          }
        }
        this.expectOp(')');
        return { kind: 'call', name: t.value.toLowerCase(), args };
      }
      return { kind: 'ctx', name: t.value };
    }
    this.i--;
    throw this.error('unexpected');
  }

  private postfix(node: Node): Node {
    for (;;) {
      if (this.peekOp('.')) {
        this.i++;
        const t = this.tokens[this.i];
        if (t?.type === 'op' && t.value === '*') {
          this.i++;
          node = { kind: 'prop', object: node, key: '*' };
        } else if (t?.type === 'ident') {
          this.i++;
          node = { kind: 'prop', object: node, key: { kind: 'lit', value: t.value } };
        } else {
          throw this.error('expected a property name after');
        }
      } else if (this.peekOp('[')) {
        this.i++;
        const key = this.or();
        this.expectOp(']');
        node = { kind: 'prop', object: node, key };
      } else {
        return node;
      }
    }
  }
}

export function truthy(v: Value): boolean {
  if (v === null || v === false || v === '' || v === 0) return false;
  if (typeof v === 'number' && Number.isNaN(v)) return false;
  return true;
}

function toNumber(v: Value): number {
  if (v === null) return 0;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return v.trim() === '' ? 0 : Number(v);
  return NaN;
}

/** How a value is written into a string (`${{ }}` substitution, action inputs, env). */
export function toText(v: Value): string {
  if (v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean' || typeof v === 'number') return String(v);
  return JSON.stringify(v, null, 2);
}

function looseEquals(a: Value, b: Value): boolean {
  if (typeof a === 'string' && typeof b === 'string') return a.toLowerCase() === b.toLowerCase();
  if (a === null && b === null) return true;
  const objectA = typeof a === 'object' && a !== null;
  const objectB = typeof b === 'object' && b !== null;
  if (objectA || objectB) return a === b;
  if (typeof a === typeof b) return a === b;
  return toNumber(a) === toNumber(b);
}

function compare(op: string, a: Value, b: Value): boolean {
  let x: number | string;
  let y: number | string;
  if (typeof a === 'string' && typeof b === 'string') {
    x = a.toLowerCase();
    y = b.toLowerCase();
  } else {
    x = toNumber(a);
    y = toNumber(b);
  }
  switch (op) {
    case '<':
      return x < y;
    case '<=':
      return x <= y;
    case '>':
      return x > y;
    default:
      return x >= y;
  }
}

function property(object: Value, key: Value): Value {
  if (object === null || typeof object !== 'object') return null;
  if (Array.isArray(object)) {
    const index = toNumber(key);
    return Number.isInteger(index) ? (object[index] ?? null) : null;
  }
  const name = toText(key);
  if (Object.hasOwn(object, name)) return object[name] ?? null;
  // Context and property names are case-insensitive.
  const found = Object.keys(object).find((k) => k.toLowerCase() === name.toLowerCase());
  return found === undefined ? null : (object[found] ?? null);
}

function usesStatusFunction(node: Node): boolean {
  switch (node.kind) {
    case 'call':
      return ['success', 'failure', 'always', 'cancelled'].includes(node.name) || node.args.some(usesStatusFunction);
    case 'not':
      return usesStatusFunction(node.operand);
    case 'bin':
      return usesStatusFunction(node.left) || usesStatusFunction(node.right);
    case 'prop':
      return usesStatusFunction(node.object) || (node.key !== '*' && usesStatusFunction(node.key));
    default:
      return false;
  }
}

function evaluate(node: Node, ctx: ExpressionContext): Value {
  switch (node.kind) {
    case 'lit':
      return node.value;
    case 'ctx': {
      const found = Object.keys(ctx.contexts).find((k) => k.toLowerCase() === node.name.toLowerCase());
      if (found === undefined) throw new ExpressionError(`unknown context '${node.name}'`);
      return ctx.contexts[found] ?? null;
    }
    case 'prop': {
      const object = evaluate(node.object, ctx);
      if (node.key === '*') {
        if (object === null || typeof object !== 'object') return [];
        return Array.isArray(object) ? object : Object.values(object);
      }
      return property(object, evaluate(node.key, ctx));
    }
    case 'not':
      return !truthy(evaluate(node.operand, ctx));
    case 'bin': {
      if (node.op === '&&') {
        const left = evaluate(node.left, ctx);
        return truthy(left) ? evaluate(node.right, ctx) : left;
      }
      if (node.op === '||') {
        const left = evaluate(node.left, ctx);
        return truthy(left) ? left : evaluate(node.right, ctx);
      }
      const left = evaluate(node.left, ctx);
      const right = evaluate(node.right, ctx);
      if (node.op === '==') return looseEquals(left, right);
      if (node.op === '!=') return !looseEquals(left, right);
      return compare(node.op, left, right);
    }
    case 'call':
      return call(node.name, node.args.map((a) => evaluate(a, ctx)), ctx);
  }
}

function call(name: string, args: Value[], ctx: ExpressionContext): Value {
  const arity = (n: number, max = n) => {
    if (args.length < n || args.length > max) throw new ExpressionError(`${name}() takes ${n === max ? n : `${n}..${max}`} arguments, got ${args.length}`);
  };
  switch (name) {
    case 'success':
      arity(0);
      return ctx.jobStatus === 'success';
    case 'failure':
      arity(0);
      return ctx.jobStatus === 'failure';
    case 'always':
      arity(0);
      return true;
    case 'cancelled':
      arity(0);
      return ctx.jobStatus === 'cancelled';
    case 'contains': {
      arity(2);
      const [search, item] = args as [Value, Value];
      if (Array.isArray(search)) return search.some((v) => looseEquals(v, item));
      return toText(search).toLowerCase().includes(toText(item).toLowerCase());
    }
    case 'startswith':
      arity(2);
      return toText(args[0]!).toLowerCase().startsWith(toText(args[1]!).toLowerCase());
    case 'endswith':
      arity(2);
      return toText(args[0]!).toLowerCase().endsWith(toText(args[1]!).toLowerCase());
    case 'format': {
      arity(1, 99);
      const [template, ...rest] = args;
      return toText(template!).replace(/\{\{|\}\}|\{(\d+)\}/g, (m, i: string | undefined) => {
        if (m === '{{') return '{';
        if (m === '}}') return '}';
        const v = rest[Number(i)];
        if (v === undefined) throw new ExpressionError(`format(): no argument {${i}}`);
        return toText(v);
      });
    }
    case 'join': {
      arity(1, 2);
      const sep = args.length > 1 ? toText(args[1]!) : ',';
      const v = args[0]!;
      return Array.isArray(v) ? v.map(toText).join(sep) : toText(v);
    }
    case 'tojson':
      arity(1);
      return JSON.stringify(args[0], null, 2);
    case 'fromjson':
      arity(1);
      try {
        return JSON.parse(toText(args[0]!)) as Value;
      } catch {
        throw new ExpressionError(`fromJSON(): not JSON: ${toText(args[0]!)}`);
      }
    default:
      throw new ExpressionError(`function ${name}() is not supported by the job executor`);
  }
}

function parse(source: string): Node {
  return new Parser(tokenize(source), source).parse();
}

/** Evaluate one expression (without the `${{ }}` wrapper). */
export function evaluateExpression(source: string, ctx: ExpressionContext): Value {
  return evaluate(parse(source), ctx);
}

/**
 * Evaluate an `if:` condition. A condition without a status function is implicitly
 * `success() && (…)`, as on GitHub; a fully wrapped `${{ … }}` is unwrapped.
 */
export function evaluateCondition(condition: string | boolean | undefined, ctx: ExpressionContext): boolean {
  if (condition === undefined || condition === '') return ctx.jobStatus === 'success';
  if (typeof condition === 'boolean') return ctx.jobStatus === 'success' && condition;
  let source = condition.trim();
  const wrapped = /^\$\{\{([\s\S]*)\}\}$/.exec(source);
  if (wrapped && !wrapped[1]!.includes('}}')) source = wrapped[1]!;
  const node = parse(source);
  const value = truthy(evaluate(node, ctx));
  return usesStatusFunction(node) ? value : ctx.jobStatus === 'success' && value;
}

/** Replace every `${{ expr }}` in `text` by its value as text. */
export function interpolate(text: string, ctx: ExpressionContext): string {
  let out = '';
  let i = 0;
  for (;;) {
    const start = text.indexOf('${{', i);
    if (start < 0) return out + text.slice(i);
    out += text.slice(i, start);
    const end = findClose(text, start + 3);
    out += toText(evaluateExpression(text.slice(start + 3, end), ctx));
    i = end + 2;
  }
}

/** The index of the `}}` closing an expression, skipping string literals. */
function findClose(text: string, from: number): number {
  let inString = false;
  for (let i = from; i < text.length; i++) {
    if (text[i] === "'") inString = !inString;
    else if (!inString && text.startsWith('}}', i)) return i;
  }
  throw new ExpressionError(`unterminated \${{ in: ${text}`);
}

/** Whether a value written in YAML contains any expression. */
export function hasExpression(text: string): boolean {
  return text.includes('${{');
}
