// Stage params: one spec per param, shared by pipeline.yaml, CLI flags and action inputs
// (same kebab-case names everywhere). Parsing happens here and only here.

import { ConfigurationError, type ErrorLocation } from './errors.ts';
import { nearest, suggestion } from './suggest.ts';

export type ParamType = 'string' | 'integer' | 'number' | 'boolean' | 'string-list' | 'mapping';

export interface ParamSpec {
  type: ParamType;
  description: string;
  default?: string | number | boolean | readonly string[] | Readonly<Record<string, string>>;
  required?: boolean;
  choices?: readonly string[];
  min?: number;
  max?: number;
}

export type ParamSpecs = Readonly<Record<string, ParamSpec>>;

type ValueOf<S extends ParamSpec> = S['type'] extends 'integer' | 'number'
  ? number
  : S['type'] extends 'boolean'
    ? boolean
    : S['type'] extends 'string-list'
      ? string[]
      : S['type'] extends 'mapping'
        ? Record<string, string>
        : S extends { choices: readonly (infer C)[] }
          ? C
          : string;

/** The typed params object of a stage kind, keyed by the kebab-case names. */
export type ParamsOf<T extends ParamSpecs> = {
  -readonly [K in keyof T]: T[K] extends { required: true } | { default: unknown }
    ? ValueOf<T[K]>
    : ValueOf<T[K]> | undefined;
};

export type ParamValue = string | number | boolean | string[] | Record<string, string>;

/** Where each raw value came from, so errors can point at the YAML line or the CLI flag. */
export type LocateParam = (name: string) => ErrorLocation;

/**
 * Parse raw values into typed params. Strings (CLI flags, action inputs) are coerced;
 * `""` means absent. Every bad field is reported at once.
 */
export function parseParams<T extends ParamSpecs>(
  specs: T,
  raw: Readonly<Record<string, unknown>>,
  context: { what: string; locate?: LocateParam },
): ParamsOf<T> {
  const errors: ConfigurationError[] = [];
  const out: Record<string, ParamValue | undefined> = {};
  const names = Object.keys(specs);
  const locate = context.locate ?? (() => ({}));

  for (const key of Object.keys(raw)) {
    if (!(key in specs)) {
      errors.push(
        new ConfigurationError(`${context.what}: unknown param \`${key}\``, {
          ...locate(key),
          field: key,
          hint: suggestion(key, names),
        }),
      );
    }
  }

  for (const [name, spec] of Object.entries(specs)) {
    const value = raw[name];
    const where = { ...locate(name), field: name };
    if (value === undefined || value === null || value === '') {
      if (spec.default !== undefined) out[name] = cloneDefault(spec.default);
      else if (spec.required) errors.push(new ConfigurationError(`${context.what}: param \`${name}\` is required`, where));
      else out[name] = undefined;
      continue;
    }
    try {
      out[name] = coerce(spec, value);
    } catch (error) {
      errors.push(new ConfigurationError(`${context.what}: param \`${name}\` ${(error as Error).message}`, where));
    }
  }

  if (errors.length) throw ConfigurationError.all(errors);
  return out as ParamsOf<T>;
}

function cloneDefault(value: NonNullable<ParamSpec['default']>): ParamValue {
  if (Array.isArray(value)) return [...value];
  if (typeof value === 'object') return { ...(value as Record<string, string>) };
  return value as string | number | boolean;
}

function coerce(spec: ParamSpec, value: unknown): ParamValue {
  switch (spec.type) {
    case 'string': {
      if (typeof value !== 'string' && typeof value !== 'number') throw new Error(`must be a string, got ${describe(value)}`);
      const s = String(value);
      if (spec.choices && !spec.choices.includes(s)) {
        // The choices are listed already: only a close match adds anything.
        const close = nearest(s, spec.choices);
        throw new Error(`must be one of ${spec.choices.map((c) => `\`${c}\``).join(', ')}, got \`${s}\`${close ? ` (did you mean \`${close}\`?)` : ''}`);
      }
      return s;
    }
    case 'integer':
    case 'number': {
      const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
      if (!Number.isFinite(n)) throw new Error(`must be a ${spec.type}, got ${describe(value)}`);
      if (spec.type === 'integer' && !Number.isInteger(n)) throw new Error(`must be an integer, got ${n}`);
      if (spec.min !== undefined && n < spec.min) throw new Error(`must be ≥ ${spec.min}, got ${n}`);
      if (spec.max !== undefined && n > spec.max) throw new Error(`must be ≤ ${spec.max}, got ${n}`);
      return n;
    }
    case 'boolean': {
      if (typeof value === 'boolean') return value;
      if (typeof value === 'string' && /^(true|false)$/i.test(value)) return value.toLowerCase() === 'true';
      throw new Error(`must be true or false, got ${describe(value)}`);
    }
    case 'string-list': {
      // From YAML: a list. From a flag or an action input: JSON array, or comma/newline separated.
      let list: unknown = value;
      if (typeof value === 'string') {
        const trimmed = value.trim();
        list = trimmed.startsWith('[') ? parseJson(trimmed) : trimmed.split(/[\n,]/).map((s) => s.trim()).filter(Boolean);
      }
      if (!Array.isArray(list) || !list.every((v) => typeof v === 'string' || typeof v === 'number')) {
        throw new Error(`must be a list of strings, got ${describe(value)}`);
      }
      const strings = list.map(String);
      if (spec.choices) {
        const bad = strings.filter((s) => !spec.choices!.includes(s));
        if (bad.length) throw new Error(`has unknown value(s) ${bad.map((b) => `\`${b}\``).join(', ')} (${suggestion(bad[0]!, spec.choices)})`);
      }
      return strings;
    }
    case 'mapping': {
      const map = typeof value === 'string' ? parseJson(value) : value;
      if (typeof map !== 'object' || map === null || Array.isArray(map)) throw new Error(`must be a mapping, got ${describe(value)}`);
      const result: Record<string, string> = {};
      for (const [k, v] of Object.entries(map)) {
        if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') throw new Error(`entry \`${k}\` must be a scalar`);
        result[k] = String(v);
      }
      return result;
    }
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`is not valid JSON: ${text.slice(0, 60)}`);
  }
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `\`${value}\``;
  return String(value);
}
