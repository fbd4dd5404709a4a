// JSON Schema of pipeline.yaml for editors, generated from the stage kinds' param specs.
// pipeline/pipeline.schema.json is its committed output (`skintwin schema` regenerates it;
// a test fails when the two differ).

import type { ParamSpec } from '../core/params.ts';
import type { AnyStageKind } from '../core/stage.ts';
import { stageKinds } from '../stages.ts';
import { DEFAULT_SETTINGS } from './load.ts';

type Schema = Record<string, unknown>;

function paramSchema(spec: ParamSpec): Schema {
  const s: Schema = { description: spec.description };
  switch (spec.type) {
    case 'string':
      s.type = 'string';
      if (spec.choices) s.enum = [...spec.choices];
      break;
    case 'integer':
    case 'number':
      s.type = spec.type;
      if (spec.min !== undefined) s.minimum = spec.min;
      if (spec.max !== undefined) s.maximum = spec.max;
      break;
    case 'boolean':
      s.type = 'boolean';
      break;
    case 'string-list':
      s.type = 'array';
      s.items = spec.choices ? { type: 'string', enum: [...spec.choices] } : { type: 'string' };
      break;
    case 'mapping':
      s.type = 'object';
      s.additionalProperties = { type: ['string', 'number', 'boolean'] };
      break;
  }
  if (spec.default !== undefined) s.default = spec.default;
  return s;
}

export function pipelineJsonSchema(kinds: ReadonlyMap<string, AnyStageKind> = stageKinds): Schema {
  const names = [...kinds.keys()].sort();
  const paths = { type: 'array', items: { type: 'string', minLength: 1 }, uniqueItems: true };
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'https://skin-twin.local/pipeline.schema.json',
    title: 'Skin-Twin pipeline definition (pipeline/pipeline.yaml)',
    type: 'object',
    additionalProperties: false,
    required: ['stages'],
    properties: {
      settings: {
        type: 'object',
        additionalProperties: false,
        properties: {
          seed: { type: 'integer', default: DEFAULT_SETTINGS.seed, description: 'Seed for every stochastic step unless a stage overrides it' },
          'cache-dir': { type: 'string', default: DEFAULT_SETTINGS.cacheDir, description: 'Local content-addressed cache directory' },
          jobs: { type: 'integer', minimum: 1, default: DEFAULT_SETTINGS.jobs, description: 'How many independent stages may run at once' },
        },
      },
      stages: {
        type: 'object',
        propertyNames: { pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' },
        additionalProperties: { $ref: '#/definitions/stage' },
      },
    },
    definitions: {
      stage: {
        type: 'object',
        additionalProperties: false,
        required: ['kind'],
        properties: {
          kind: { type: 'string', enum: names, description: 'Stage kind' },
          desc: { type: 'string', description: 'One-line description' },
          params: { type: 'object' },
          deps: { ...paths, description: 'Paths this stage reads (files or folders), relative to the repository root' },
          outs: { ...paths, description: 'Paths this stage writes, relative to the repository root' },
        },
        allOf: names.map((name) => {
          const kind = kinds.get(name)!;
          const specs = Object.entries(kind.params);
          const required = specs.filter(([, s]) => s.required && s.default === undefined).map(([n]) => n);
          return {
            if: { properties: { kind: { const: name } }, required: ['kind'] },
            then: {
              description: kind.title,
              properties: {
                params: {
                  type: 'object',
                  additionalProperties: false,
                  properties: Object.fromEntries(specs.map(([n, s]) => [n, paramSchema(s)])),
                  ...(required.length ? { required } : {}),
                },
              },
              ...(required.length ? { required: ['params'] } : {}),
            },
          };
        }),
      },
    },
  };
}

/** The committed file's exact text. */
export function renderPipelineJsonSchema(kinds?: ReadonlyMap<string, AnyStageKind>): string {
  return JSON.stringify(pipelineJsonSchema(kinds), null, 2) + '\n';
}
