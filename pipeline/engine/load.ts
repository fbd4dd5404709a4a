// Loading and validating pipeline.yaml: every mistake is reported at once, each naming the
// file, line and key with a "did you mean" hint; the result is a checked, ordered stage graph.

import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Node, type Pair, type YAMLMap } from 'yaml';
import { ConfigurationError, type ErrorLocation } from '../core/errors.ts';
import { parseParams } from '../core/params.ts';
import type { AnyStageKind, Settings } from '../core/stage.ts';
import { suggestion } from '../core/suggest.ts';
import { stageKinds } from '../stages.ts';
import type { LoadOptions, Pipeline, StageDefinition } from './types.ts';

export const DEFAULT_PIPELINE_FILE = 'pipeline/pipeline.yaml';
export const DEFAULT_SETTINGS: Settings = { seed: 42, cacheDir: '.skintwin/cache', jobs: 2 };

const TOP_KEYS = ['settings', 'stages'] as const;
const SETTINGS_KEYS = ['seed', 'cache-dir', 'jobs'] as const;
const STAGE_KEYS = ['kind', 'desc', 'params', 'deps', 'outs'] as const;
const STAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** True when `a` equals `b` or lies under it (paths relative, `/`-separated, normalised). */
export function within(a: string, b: string): boolean {
  return a === b || a.startsWith(b + '/');
}

export function overlaps(a: string, b: string): boolean {
  return within(a, b) || within(b, a);
}

/** Normalise a declared path; undefined when it is absolute or leaves the root. */
export function normalisePath(raw: string): string | undefined {
  if (isAbsolute(raw) || /^[A-Za-z]:[\\/]/.test(raw)) return undefined;
  const parts: string[] = [];
  for (const part of raw.replace(/\\/g, '/').split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') return undefined;
    parts.push(part);
  }
  return parts.length ? parts.join('/') : undefined;
}

export async function loadPipeline(opts: LoadOptions): Promise<Pipeline> {
  const root = resolve(opts.root);
  const file = (opts.file ?? DEFAULT_PIPELINE_FILE).replace(/\\/g, '/');
  const kinds = opts.kinds ?? stageKinds;
  const abs = resolve(root, file);

  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch {
    throw new ConfigurationError(`pipeline file not found: ${abs}`, { file, hint: 'pass --config <path> or run from the repository' });
  }

  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const at = (node: Node | null | undefined, field?: string): ErrorLocation => {
    const offset = node?.range?.[0];
    if (offset === undefined) return { file, ...(field ? { field } : {}) };
    const pos = lines.linePos(offset);
    return { file, line: pos.line, column: pos.col, ...(field ? { field } : {}) };
  };

  if (doc.errors.length) {
    throw ConfigurationError.all(
      doc.errors.map((e) => {
        const pos = lines.linePos(e.pos[0]);
        return new ConfigurationError(`YAML syntax error: ${e.message.split('\n')[0]}`, { file, line: pos.line, column: pos.col });
      }),
    );
  }

  const errors: ConfigurationError[] = [];
  const fail = (message: string, loc: ErrorLocation): void => void errors.push(new ConfigurationError(message, loc));
  const addAll = (error: unknown): void => {
    if (error instanceof ConfigurationError) errors.push(...(error.more.length ? error.more : [error]));
    else throw error;
  };

  const top = doc.contents;
  if (top !== null && !isMap(top)) {
    throw new ConfigurationError('the pipeline file must be a mapping with `settings` and `stages`', at(top as Node));
  }
  const checkKeys = (map: YAMLMap, allowed: readonly string[], what: string): void => {
    for (const pair of map.items) {
      const key = keyOf(pair);
      if (!allowed.includes(key)) fail(`${what}unknown key \`${key}\``, { ...at(pair.key as Node, key), hint: suggestion(key, allowed) });
    }
  };

  // settings
  const settings: Settings = { ...DEFAULT_SETTINGS };
  const settingsNode = top ? top.get('settings', true) : undefined;
  if (settingsNode !== undefined && settingsNode !== null && !(isScalar(settingsNode) && settingsNode.value === null)) {
    if (!isMap(settingsNode)) fail('`settings` must be a mapping', at(settingsNode as Node, 'settings'));
    else {
      checkKeys(settingsNode, SETTINGS_KEYS, 'settings: ');
      for (const pair of settingsNode.items) {
        const key = keyOf(pair);
        const value = isScalar(pair.value) ? pair.value.value : undefined;
        const loc = at(pair.value as Node, key);
        if (key === 'seed') {
          if (typeof value === 'number' && Number.isInteger(value)) settings.seed = value;
          else fail('settings: `seed` must be an integer', loc);
        } else if (key === 'cache-dir') {
          const path = typeof value === 'string' ? (isAbsolute(value) ? value : normalisePath(value)) : undefined;
          if (path) settings.cacheDir = path;
          else fail('settings: `cache-dir` must be a path inside the repository or an absolute path', loc);
        } else if (key === 'jobs') {
          if (typeof value === 'number' && Number.isInteger(value) && value >= 1) settings.jobs = value;
          else fail('settings: `jobs` must be an integer ≥ 1', loc);
        }
      }
    }
  }

  // stages
  const stages = new Map<string, StageDefinition>();
  const outOwners: { stage: string; out: string; loc: ErrorLocation }[] = [];
  const depDecls: { stage: string; dep: string; loc: ErrorLocation }[] = [];
  const stageLoc = new Map<string, ErrorLocation>();
  const stagesNode = top ? top.get('stages', true) : undefined;
  if (top) checkKeys(top, TOP_KEYS, '');
  if (stagesNode === undefined || stagesNode === null) {
    fail('no `stages` mapping', { file });
  } else if (!isMap(stagesNode)) {
    fail('`stages` must be a mapping of stage name → definition', at(stagesNode as Node, 'stages'));
  } else {
    for (const pair of stagesNode.items) {
      const name = keyOf(pair);
      const loc = at(pair.key as Node, name);
      stageLoc.set(name, loc);
      if (!STAGE_NAME.test(name)) fail(`stage name \`${name}\` may only use letters, digits, \`-\`, \`_\` and \`.\``, loc);
      const what = `stage \`${name}\``;
      const body = pair.value;
      if (!isMap(body)) {
        fail(`${what} must be a mapping with \`kind\`, \`params\`, \`deps\` and \`outs\``, at(body as Node, name));
        continue;
      }
      checkKeys(body, STAGE_KEYS, `${what}: `);

      const kindNode = body.get('kind', true) as Node | undefined;
      const kindName = isScalar(kindNode) && typeof kindNode.value === 'string' ? kindNode.value : undefined;
      let kind: AnyStageKind | undefined;
      if (!kindName) fail(`${what}: \`kind\` is required (one of the stage kinds)`, { ...loc, hint: suggestion('', [...kinds.keys()]) });
      else {
        kind = kinds.get(kindName);
        if (!kind) fail(`${what}: unknown stage kind \`${kindName}\``, { ...at(kindNode, 'kind'), hint: suggestion(kindName, [...kinds.keys()]) });
      }

      const descNode = body.get('desc', true) as Node | undefined;
      const desc = isScalar(descNode) ? String(descNode.value) : undefined;

      const deps = pathList(body, 'deps', what, at, fail);
      const outs = pathList(body, 'outs', what, at, fail);
      for (const o of outs) {
        if (!isAbsolute(settings.cacheDir) && overlaps(o.path, settings.cacheDir)) {
          fail(`${what}: out \`${o.path}\` overlaps the cache directory \`${settings.cacheDir}\``, o.loc);
        }
        outOwners.push({ stage: name, out: o.path, loc: o.loc });
      }
      for (const d of deps) depDecls.push({ stage: name, dep: d.path, loc: d.loc });

      // params: YAML values, then overrides (CLI flags, action inputs) on top
      const paramsNode = body.get('params', true) as Node | undefined;
      const raw: Record<string, unknown> = {};
      const paramLoc = new Map<string, ErrorLocation>();
      if (paramsNode !== undefined && paramsNode !== null && !(isScalar(paramsNode) && paramsNode.value === null)) {
        if (!isMap(paramsNode)) fail(`${what}: \`params\` must be a mapping`, at(paramsNode, 'params'));
        else {
          for (const p of paramsNode.items) {
            const key = keyOf(p);
            raw[key] = p.value === null || p.value === undefined ? null : (p.value as Node).toJSON();
            paramLoc.set(key, at(p.key as Node, key));
          }
        }
      }
      const override = opts.overrides?.[name];
      if (override) {
        for (const [key, value] of Object.entries(override)) {
          raw[key] = value;
          paramLoc.set(key, { file: 'command line', field: key });
        }
      }
      let params: Record<string, unknown> = {};
      if (kind) {
        try {
          params = parseParams(kind.params, raw, { what, locate: (key) => paramLoc.get(key) ?? loc });
          kind.validate?.(params as never, { name, deps: deps.map((d) => d.path), outs: outs.map((o) => o.path) });
        } catch (error) {
          addAll(error);
        }
        stages.set(name, {
          name,
          kind,
          params,
          deps: deps.map((d) => d.path),
          outs: outs.map((o) => o.path),
          upstream: [],
          ...(desc !== undefined ? { desc } : {}),
        });
      }
    }
  }

  for (const name of Object.keys(opts.overrides ?? {})) {
    if (!stageLoc.has(name)) fail(`unknown stage \`${name}\``, { file: 'command line', hint: suggestion(name, [...stageLoc.keys()]) });
  }

  // Two stages (or one stage twice) must never write the same place.
  for (let i = 0; i < outOwners.length; i++) {
    for (let j = 0; j < i; j++) {
      const a = outOwners[j]!;
      const b = outOwners[i]!;
      if (overlaps(a.out, b.out)) {
        const rel = a.out === b.out ? 'is also declared by' : within(b.out, a.out) ? 'lies inside out' : 'contains out';
        fail(
          `stage \`${b.stage}\`: out \`${b.out}\` ${rel === 'is also declared by' ? `${rel} stage \`${a.stage}\`` : `${rel} \`${a.out}\` of stage \`${a.stage}\``}`,
          { ...b.loc, hint: 'each path may be the out of one stage only' },
        );
      }
    }
  }

  // Edges: a dep that equals, lies under or contains another stage's out.
  for (const { stage, dep, loc } of depDecls) {
    const producers = outOwners.filter((o) => overlaps(dep, o.out));
    const own = producers.find((o) => o.stage === stage);
    if (own) {
      fail(`stage \`${stage}\`: dep \`${dep}\` overlaps its own out \`${own.out}\``, loc);
      continue;
    }
    if (producers.length) {
      const def = stages.get(stage);
      for (const p of producers) if (def && !def.upstream.includes(p.stage)) def.upstream.push(p.stage);
      continue;
    }
    if (!(await stat(join(root, dep)).catch(() => undefined))) {
      fail(`stage \`${stage}\`: dep \`${dep}\` does not exist and no stage declares it as an out`, {
        ...loc,
        hint: suggestion(dep, outOwners.map((o) => o.out)) || 'create it, or add the stage that produces it',
      });
    }
  }

  const order = errors.length ? [] : topoOrder(stages, stageLoc, fail);
  if (errors.length) throw ConfigurationError.all(errors);
  return { root, file, settings, stages, order };
}

function keyOf(pair: Pair<unknown, unknown>): string {
  const key = pair.key;
  return isScalar(key) ? String(key.value) : String(key);
}

function pathList(
  body: YAMLMap,
  key: 'deps' | 'outs',
  what: string,
  at: (node: Node | null | undefined, field?: string) => ErrorLocation,
  fail: (message: string, loc: ErrorLocation) => void,
): { path: string; loc: ErrorLocation }[] {
  const node = body.get(key, true) as Node | undefined;
  if (node === undefined || node === null || (isScalar(node) && node.value === null)) return [];
  if (!isSeq(node)) {
    fail(`${what}: \`${key}\` must be a list of paths`, at(node, key));
    return [];
  }
  const result: { path: string; loc: ErrorLocation }[] = [];
  for (const item of node.items) {
    const loc = at(item as Node, key);
    const raw = isScalar(item) && typeof item.value === 'string' ? item.value : undefined;
    const path = raw === undefined ? undefined : normalisePath(raw);
    if (path === undefined) {
      fail(`${what}: each of \`${key}\` must be a relative path inside the repository, got ${isPair(item) ? 'a mapping' : JSON.stringify(raw ?? String(item))}`, loc);
    } else if (!result.some((r) => r.path === path)) result.push({ path, loc });
  }
  return result;
}

/** Kahn's algorithm, ties broken by declaration order; a leftover cycle is named. */
function topoOrder(
  stages: Map<string, StageDefinition>,
  stageLoc: Map<string, ErrorLocation>,
  fail: (message: string, loc: ErrorLocation) => void,
): string[] {
  const names = [...stages.keys()];
  const indegree = new Map(names.map((n) => [n, stages.get(n)!.upstream.length]));
  const order: string[] = [];
  const ready = names.filter((n) => indegree.get(n) === 0);
  while (ready.length) {
    const n = ready.shift()!;
    order.push(n);
    for (const m of names) {
      if (stages.get(m)!.upstream.includes(n)) {
        indegree.set(m, indegree.get(m)! - 1);
        if (indegree.get(m) === 0) {
          ready.push(m);
          ready.sort((a, b) => names.indexOf(a) - names.indexOf(b));
        }
      }
    }
  }
  if (order.length < names.length) {
    const left = new Set(names.filter((n) => !order.includes(n)));
    // Walk upstream edges inside the leftover set until a stage repeats: that is a cycle.
    let cur = [...left][0]!;
    const path: string[] = [];
    while (!path.includes(cur)) {
      path.push(cur);
      cur = stages.get(cur)!.upstream.find((u) => left.has(u))!;
    }
    const loop = path.slice(path.indexOf(cur)).reverse();
    // Start the cycle at the stage declared first, so the message is stable.
    const first = loop.reduce((best, n) => (names.indexOf(n) < names.indexOf(best) ? n : best));
    const cycle = [...loop.slice(loop.indexOf(first)), ...loop.slice(0, loop.indexOf(first))];
    fail(`dependency cycle: ${[...cycle, cycle[0]].map((s) => `\`${s}\``).join(' → ')}`, stageLoc.get(cycle[0]!) ?? {});
  }
  return order;
}
