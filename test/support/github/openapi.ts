// GitHub's official OpenAPI description (from @octokit/openapi, pinned) turned into request and
// response checks for the REST stand-in: path template → operationId, params, bodies, statuses.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const SPEC_ID = 'https://api.github.com/openapi.json';

export interface Operation {
  operationId: string;
  method: string;
  /** The spec's path template, e.g. `/repos/{owner}/{repo}/releases/{release_id}`. */
  template: string;
  /** Literal characters in the template: the most specific template wins a tie. */
  specificity: number;
  regex: RegExp;
  paramNames: string[];
  /** Served on another origin than the API (uploads). */
  servers: string[];
  raw: JsonObject;
}

export interface MatchedOperation {
  operation: Operation;
  pathParams: Record<string, string>;
}

export interface RequestToCheck {
  query: URLSearchParams;
  contentType: string | undefined;
  /** Parsed JSON, a Buffer for other content, undefined when the request had no body. */
  body: unknown;
}

export interface ResponseToCheck {
  status: number;
  contentType: string | undefined;
  /** Parsed JSON, or undefined for an empty or non-JSON body. */
  body: unknown;
  /** The request's Accept header: GitHub's custom media types (raw, octet-stream) change the answer. */
  accept: string | undefined;
}

/** Status codes GitHub returns on any operation (auth, permissions, limits, outages) though most
 *  operations leave them out of their description. Their bodies must still be a GitHub error. */
export const CROSS_CUTTING_STATUSES = new Set([400, 401, 403, 404, 409, 410, 422, 429, 500, 502, 503, 504]);

function specPath(): string {
  // Resolve the package folder without loading its index (which loads every GitHub spec).
  const require = createRequire(import.meta.url);
  const pkg = require.resolve('@octokit/openapi/package.json');
  return join(dirname(pkg), 'generated', 'api.github.com.json');
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * GitHub's `oneOf`s are seldom exclusive (an error body with only `message` matches both
 * `basic-error` and `repository-rule-violation-error`): real answers would fail them, so they are
 * read as `anyOf`, which still requires a body to match one of the alternatives.
 */
function rewriteOneOf(node: Json): void {
  if (Array.isArray(node)) return node.forEach(rewriteOneOf);
  if (!isObject(node)) return;
  if (Array.isArray(node['oneOf']) && !('anyOf' in node)) {
    node['anyOf'] = node['oneOf'];
    delete node['oneOf'];
  }
  for (const value of Object.values(node)) rewriteOneOf(value);
}

/**
 * OpenAPI 3.0 `nullable` is not JSON Schema: turn `{type: t, nullable: true}` into
 * `{type: [t, 'null']}` and a type-less `{nullable: true, allOf/anyOf/...}` into
 * `{anyOf: [{type: 'null'}, {...}]}` so a plain JSON Schema validator reads it right.
 */
function rewriteNullable(node: Json): Json {
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) node[i] = rewriteNullable(node[i]!);
    return node;
  }
  if (!isObject(node)) return node;
  for (const key of Object.keys(node)) node[key] = rewriteNullable(node[key]!);
  if (!('nullable' in node)) return node;
  const nullable = node['nullable'] === true;
  delete node['nullable'];
  if (!nullable) return node;
  const type = node['type'];
  if (typeof type === 'string') {
    node['type'] = [type, 'null'];
    if (Array.isArray(node['enum']) && !node['enum'].includes(null)) node['enum'].push(null);
    return node;
  }
  if (Array.isArray(type)) {
    if (!type.includes('null')) type.push('null');
    return node;
  }
  const { description, title, ...rest } = node;
  const wrapped: JsonObject = { anyOf: [{ type: 'null' }, rest] };
  if (description !== undefined) wrapped['description'] = description;
  if (title !== undefined) wrapped['title'] = title;
  return wrapped;
}

function escapePointer(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

function formatErrors(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? [])
    .slice(0, 5)
    .map((e) => `${e.instancePath || '(root)'} ${e.message ?? ''}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params['additionalProperty'])})` : ''}`)
    .join('; ');
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:?\d{2})$/;

export class OpenApiContract {
  readonly operations: Operation[] = [];
  private readonly byId = new Map<string, Operation>();
  private readonly ajv: Ajv;
  private readonly compiled = new Map<string, ValidateFunction>();
  private readonly spec: JsonObject;

  private constructor(spec: JsonObject) {
    this.spec = spec;
    const paths = spec['paths'] as Record<string, Record<string, JsonObject>>;
    for (const [template, item] of Object.entries(paths)) {
      for (const [method, op] of Object.entries(item)) {
        if (!isObject(op) || typeof op['operationId'] !== 'string') continue;
        const params = this.parameters(op);
        const multi = new Set(params.filter((p) => p['x-multi-segment'] === true).map((p) => String(p['name'])));
        const paramNames: string[] = [];
        const pattern = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{([^}]+)\\?\}|\{([^}]+)\}/g, (_m, a, b) => {
          const name = String(a ?? b);
          paramNames.push(name);
          return multi.has(name) ? '(.*)' : '([^/]+)';
        });
        const servers = Array.isArray(op['servers']) ? op['servers'].map((s) => String((s as JsonObject)['url'])) : [];
        const operation: Operation = {
          operationId: op['operationId'],
          method: method.toUpperCase(),
          template,
          specificity: template.replace(/\{[^}]+\}/g, '').length,
          regex: new RegExp(`^${pattern}$`),
          paramNames,
          servers,
          raw: op,
        };
        this.operations.push(operation);
        this.byId.set(operation.operationId, operation);
      }
    }
    // inlineRefs off: each component compiles once and is shared, instead of being inlined into
    // every operation that embeds it (issues embed repositories embed users...). One error is enough.
    this.ajv = new Ajv({ strict: false, allErrors: false, validateSchema: false, addUsedSchema: false, inlineRefs: false, code: { optimize: false } });
    this.ajv.addFormat('date-time', (s: string) => RFC3339.test(s) && !Number.isNaN(Date.parse(s)));
    this.ajv.addFormat('date', /^\d{4}-\d{2}-\d{2}$/);
    this.ajv.addFormat('uri', (s: string) => URL.canParse(s));
    this.ajv.addFormat('uri-template', true);
    this.ajv.addFormat('email', /^[^\s@]+@[^\s@]+$/);
    this.ajv.addFormat('repo.nwo', /^[^/\s]+\/[^/\s]+$/);
    this.ajv.addFormat('binary', true);
    this.ajv.addFormat('int32', { type: 'number', validate: (n: number) => Number.isInteger(n) && Math.abs(n) <= 2 ** 31 });
    this.ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isInteger(n) });
    this.ajv.addFormat('double', { type: 'number', validate: (n: number) => Number.isFinite(n) });
    // The whole description is one schema document: `#/components/...` refs resolve inside it,
    // and components are compiled once, on first use, then shared by every operation.
    this.ajv.addSchema({ ...spec, $id: SPEC_ID } as object, undefined, undefined, false);
  }

  private static cached: OpenApiContract | undefined;

  /** The contract for api.github.com, loaded once per test worker (~0.5 s). */
  static load(): OpenApiContract {
    if (!OpenApiContract.cached) {
      const spec = JSON.parse(readFileSync(specPath(), 'utf8')) as JsonObject;
      rewriteNullable(spec['paths']!);
      rewriteNullable(spec['components']!);
      rewriteOneOf(spec['paths']!);
      rewriteOneOf(spec['components']!);
      OpenApiContract.cached = new OpenApiContract(spec);
    }
    return OpenApiContract.cached;
  }

  /** The description's version (`info.version`), for messages. */
  get version(): string {
    return String((this.spec['info'] as JsonObject)['version']);
  }

  operation(operationId: string): Operation {
    const op = this.byId.get(operationId);
    if (!op) throw new Error(`no operation ${operationId} in GitHub's OpenAPI description`);
    return op;
  }

  /** The operation a request is for, most specific template first (`/releases/latest` before `/releases/{id}`). */
  match(method: string, pathname: string): MatchedOperation | undefined {
    let best: MatchedOperation | undefined;
    const upper = method.toUpperCase();
    for (const operation of this.operations) {
      if (operation.method !== upper) continue;
      const m = operation.regex.exec(pathname);
      if (!m) continue;
      if (best && best.operation.specificity >= operation.specificity) continue;
      const pathParams: Record<string, string> = {};
      operation.paramNames.forEach((name, i) => {
        pathParams[name] = decodeURIComponent(m[i + 1] ?? '');
      });
      best = { operation, pathParams };
    }
    return best;
  }

  /** Follow a local `$ref` (`#/components/parameters/owner`) to the object it names. */
  private deref(node: JsonObject): JsonObject {
    let current = node;
    for (let hops = 0; typeof current['$ref'] === 'string' && hops < 10; hops++) {
      const pointer = (current['$ref'] as string).replace(/^#\//, '').split('/');
      let target: Json = this.spec;
      for (const part of pointer) target = (target as JsonObject)[part.replace(/~1/g, '/').replace(/~0/g, '~')]!;
      current = target as JsonObject;
    }
    return current;
  }

  private parameters(op: JsonObject): JsonObject[] {
    const list = Array.isArray(op['parameters']) ? (op['parameters'] as JsonObject[]) : [];
    return list.map((p) => this.deref(p));
  }

  /** A validator for the schema at `pointer` inside the description, compiled once. */
  validator(pointer: string): ValidateFunction {
    let fn = this.compiled.get(pointer);
    if (!fn) {
      fn = this.ajv.compile({ $ref: `${SPEC_ID}#${pointer}` });
      this.compiled.set(pointer, fn);
    }
    return fn;
  }

  /** Errors of `value` against the component schema `name` (`release`, `basic-error`, …). */
  checkSchema(name: string, value: unknown): string[] {
    const fn = this.validator(`/components/schemas/${escapePointer(name)}`);
    return fn(value) ? [] : [`${name}: ${formatErrors(fn.errors)}`];
  }

  private operationPointer(op: Operation): string {
    return `/paths/${escapePointer(op.template)}/${op.method.toLowerCase()}`;
  }

  /** Pointer to a parameter's or body's object, through its `$ref` when it has one. */
  private pointerOf(operation: Operation, entry: JsonObject, local: string): string {
    return typeof entry['$ref'] === 'string' ? (entry['$ref'] as string).slice(1) : `${this.operationPointer(operation)}/${local}`;
  }

  /** Everything wrong with a request for `match` according to the description. */
  checkRequest(match: MatchedOperation, req: RequestToCheck): string[] {
    const { operation } = match;
    const problems: string[] = [];
    const entries = Array.isArray(operation.raw['parameters']) ? (operation.raw['parameters'] as JsonObject[]) : [];
    entries.forEach((entry, index) => {
      const p = this.deref(entry);
      const name = String(p['name']);
      const where = String(p['in']);
      let raw: string | undefined;
      if (where === 'path') raw = match.pathParams[name];
      else if (where === 'query') raw = req.query.get(name) ?? undefined;
      else return;
      if (raw === undefined) {
        if (p['required'] === true) problems.push(`missing required ${where} parameter \`${name}\``);
        return;
      }
      const schema = p['schema'] as JsonObject | undefined;
      if (!schema) return;
      const fn = this.validator(`${this.pointerOf(operation, entry, `parameters/${index}`)}/schema`);
      if (!fn(coerce(raw, schema))) problems.push(`${where} parameter \`${name}\`=${JSON.stringify(raw)}: ${formatErrors(fn.errors)}`);
    });
    const bodyEntry = operation.raw['requestBody'] as JsonObject | undefined;
    if (!bodyEntry) {
      if (req.body !== undefined && !(Buffer.isBuffer(req.body) && req.body.length === 0)) {
        problems.push(`${operation.operationId} takes no request body`);
      }
      return problems;
    }
    const body = this.deref(bodyEntry);
    const content = (body['content'] ?? {}) as JsonObject;
    const types = Object.keys(content);
    if (req.body === undefined) {
      if (body['required'] === true) problems.push(`missing required request body (${types.join(', ')})`);
      return problems;
    }
    // Bodies of other media (asset uploads) are bytes: any content type is stored as given.
    if (!('application/json' in content)) return problems;
    const ct = mediaType(req.contentType);
    if (ct !== 'application/json') problems.push(`request content-type ${ct ?? '(none)'} is not application/json`);
    if (Buffer.isBuffer(req.body)) return [...problems, 'request body is not JSON'];
    const fn = this.validator(`${this.pointerOf(operation, bodyEntry, 'requestBody')}/content/application~1json/schema`);
    if (!fn(req.body)) problems.push(`request body: ${formatErrors(fn.errors)}`);
    // GitHub ignores fields it does not know; a misspelt one (`draf: false`) is a bug in the caller.
    const schema = this.deref(((content['application/json'] as JsonObject)['schema'] ?? {}) as JsonObject);
    if (isObject(req.body) && isObject(schema['properties']) && schema['additionalProperties'] === undefined) {
      const known = schema['properties'];
      for (const key of Object.keys(req.body)) if (!(key in known)) problems.push(`request body: unknown property \`${key}\``);
    }
    return problems;
  }

  /** Everything wrong with a response to `operationId` according to the description. */
  checkResponse(operationId: string, res: ResponseToCheck): string[] {
    const problems = this.checkDeclaredResponse(operationId, res);
    // `basic-error` requires nothing, but every GitHub error body carries a message.
    if (res.status >= 400 && res.body !== undefined && !(isObject(res.body) && typeof res.body['message'] === 'string')) {
      problems.push(`error ${res.status} body has no \`message\``);
    }
    return problems;
  }

  private checkDeclaredResponse(operationId: string, res: ResponseToCheck): string[] {
    const operation = this.operation(operationId);
    const responses = operation.raw['responses'] as JsonObject;
    const declared = responses[String(res.status)] as JsonObject | undefined;
    const ct = mediaType(res.contentType);
    if (!declared) {
      if (!CROSS_CUTTING_STATUSES.has(res.status)) {
        return [`status ${res.status} is not declared for ${operationId} (declared: ${Object.keys(responses).join(', ')})`];
      }
      return this.checkErrorBody(res, ct);
    }
    const response = this.deref(declared);
    const content = response['content'] as JsonObject | undefined;
    if (!content || Object.keys(content).length === 0) {
      if (res.status === 204 && res.body !== undefined) return [`status 204 of ${operationId} must have no body`];
      if (res.status >= 400) return this.checkErrorBody(res, ct);
      return [];
    }
    // GitHub's custom media types (`Accept: application/vnd.github.raw`) answer with the raw bytes.
    if (ct && /^application\/vnd\.github(\.v3)?\.raw$/.test(ct) && /vnd\.github(\.v3)?\.raw/.test(res.accept ?? '')) return [];
    if (!ct || !(ct in content)) {
      return [`content-type ${ct ?? '(none)'} is not declared for ${operationId} ${res.status} (declared: ${Object.keys(content).join(', ')})`];
    }
    const media = content[ct] as JsonObject;
    if (!media['schema']) return [];
    const base = this.pointerOf(operation, declared, `responses/${res.status}`);
    const fn = this.validator(`${base}/content/${escapePointer(ct)}/schema`);
    return fn(res.body) ? [] : [`response ${res.status} body: ${formatErrors(fn.errors)}`];
  }

  private checkErrorBody(res: ResponseToCheck, ct: string | undefined): string[] {
    if (ct !== 'application/json') return [`error ${res.status} must be JSON, got ${ct ?? '(none)'}`];
    const schema = res.status === 422 && isObject(res.body) && 'errors' in res.body ? 'validation-error' : 'basic-error';
    return this.checkSchema(schema, res.body).map((e) => `response ${res.status}: ${e}`);
  }

  /** A named example from `components.examples` (a deep copy). */
  example<T = unknown>(name: string): T {
    const examples = (this.spec['components'] as JsonObject)['examples'] as JsonObject;
    const example = examples[name] as JsonObject | undefined;
    if (!example) throw new Error(`no example ${name} in GitHub's OpenAPI description`);
    return structuredClone(example['value']) as T;
  }
}

/** `application/json; charset=utf-8` → `application/json`. */
export function mediaType(header: string | undefined): string | undefined {
  const t = header?.split(';')[0]?.trim().toLowerCase();
  return t ? t : undefined;
}

function coerce(raw: string, schema: JsonObject): unknown {
  const type = schema['type'];
  const types = Array.isArray(type) ? type : [type];
  if (types.includes('integer') || types.includes('number')) {
    return /^-?\d+(\.\d+)?$/.test(raw) ? Number(raw) : raw;
  }
  if (types.includes('boolean')) return raw === 'true' ? true : raw === 'false' ? false : raw;
  return raw;
}
