import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { parseParams } from '../../pipeline/core/params.ts';
import { loadPipeline, pipelineJsonSchema, renderPipelineJsonSchema } from '../../pipeline/engine/index.ts';
import { testKinds, workspace, type Workspace } from './helpers.ts';

let ws: Workspace | undefined;
afterEach(async () => {
  await ws?.cleanup();
  ws = undefined;
});

async function loadError(yaml: string, files: Record<string, string> = {}): Promise<Error & { more?: Error[] }> {
  ws = await workspace(yaml, files);
  try {
    await loadPipeline({ root: ws.root, kinds: testKinds });
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected loadPipeline to fail');
}

describe('parseParams', () => {
  const specs = { size: { type: 'string', description: 'size', choices: ['tiny', 'small'] } } as const;
  const messageOf = (raw: Record<string, unknown>): string => {
    try {
      parseParams(specs, raw, { what: 'stage `s`', locate: () => ({ file: 'pipeline.yaml', line: 4 }) });
    } catch (error) {
      return (error as Error).message;
    }
    throw new Error('expected parseParams to fail');
  };

  it('names a wrong choice once, with a hint only when one is close', () => {
    expect(messageOf({ size: 'smal' })).toBe('pipeline.yaml:4: stage `s`: param `size` must be one of `tiny`, `small`, got `smal` (did you mean `small`?)');
    expect(messageOf({ size: 'enormous' })).toBe('pipeline.yaml:4: stage `s`: param `size` must be one of `tiny`, `small`, got `enormous`');
  });
});

describe('loadPipeline', () => {
  it('loads settings, params with defaults, and a topological order', async () => {
    ws = await workspace(
      `settings:\n  seed: 7\n  jobs: 3\nstages:\n  b:\n    kind: concat\n    desc: second\n    deps: [./out/a.txt]\n    outs: [out/b.txt]\n  a:\n    kind: concat\n    params:\n      prefix: P\n    deps: [in.txt]\n    outs: [out/a.txt]\n`,
      { 'in.txt': 'x' },
    );
    const p = await loadPipeline({ root: ws.root, kinds: testKinds });
    expect(p.settings).toEqual({ seed: 7, jobs: 3, cacheDir: '.skintwin/cache' });
    expect(p.order).toEqual(['a', 'b']);
    expect(p.stages.get('b')).toMatchObject({ deps: ['out/a.txt'], upstream: ['a'], desc: 'second' });
    expect(p.stages.get('a')!.params).toEqual({ prefix: 'P', epochs: 1, fail: false, 'skip-out': false });
  });

  it('applies overrides like YAML values', async () => {
    ws = await workspace(`stages:\n  a:\n    kind: concat\n    outs: [a]\n`);
    const p = await loadPipeline({ root: ws.root, kinds: testKinds, overrides: { a: { epochs: '5' } } });
    expect(p.stages.get('a')!.params.epochs).toBe(5);
    await expect(loadPipeline({ root: ws.root, kinds: testKinds, overrides: { a: { epoch: '5' } } })).rejects.toThrow(
      'command line: stage `a`: unknown param `epoch` (did you mean `epochs`?)',
    );
    await expect(loadPipeline({ root: ws.root, kinds: testKinds, overrides: { b: {} } })).rejects.toThrow(/unknown stage `b`/);
  });

  it('YAML syntax error: file, line and column', async () => {
    const e = await loadError(`stages:\n  a:\n    kind: concat\n    outs: [a\n`);
    expect(e.name).toBe('ConfigurationError');
    expect(e.message).toMatch(/^pipeline\/pipeline\.yaml:5:1: YAML syntax error/);
  });

  it('unknown param with did-you-mean at the param line', async () => {
    const e = await loadError(`stages:\n  train-skin-type:\n    kind: concat\n    params:\n      epoch: 3\n    outs: [a]\n`);
    expect(e.message).toBe('pipeline/pipeline.yaml:5:7: stage `train-skin-type`: unknown param `epoch` (did you mean `epochs`?)');
  });

  it('unknown kind and unknown keys, all reported in one pass', async () => {
    const e = await loadError(`setings: {}\nstages:\n  a:\n    kind: concatt\n    outs: [a]\n  b:\n    kind: concat\n    dep: [x]\n    outs: [b]\n`);
    expect(e.message).toContain('pipeline/pipeline.yaml:1:1: unknown key `setings` (did you mean `settings`?)');
    expect(e.message).toContain('pipeline/pipeline.yaml:4:11: stage `a`: unknown stage kind `concatt` (did you mean `concat`?)');
    expect(e.message).toContain('pipeline/pipeline.yaml:8:5: stage `b`: unknown key `dep` (did you mean `deps`?)');
    expect(e.more).toHaveLength(3);
  });

  it('a dependency cycle is named', async () => {
    const e = await loadError(
      `stages:\n  a:\n    kind: concat\n    deps: [c.txt]\n    outs: [a.txt]\n  b:\n    kind: concat\n    deps: [a.txt]\n    outs: [b.txt]\n  c:\n    kind: concat\n    deps: [b.txt]\n    outs: [c.txt]\n`,
    );
    expect(e.message).toMatch(/^pipeline\/pipeline\.yaml:\d+:3: dependency cycle: `\w` → `\w` → `\w` → `\w`$/);
    expect(e.message).toContain('`a` → `b` → `c` → `a`');
  });

  it('a dep that neither exists nor is an out', async () => {
    const e = await loadError(`stages:\n  a:\n    kind: concat\n    outs: [data/raw]\n  b:\n    kind: concat\n    deps: [data/rwa]\n    outs: [b]\n`);
    expect(e.message).toBe(
      'pipeline/pipeline.yaml:7:12: stage `b`: dep `data/rwa` does not exist and no stage declares it as an out (did you mean `data/raw`?)',
    );
  });

  it('the same or nested out in two stages', async () => {
    const e = await loadError(
      `stages:\n  a:\n    kind: concat\n    outs: [data/x]\n  b:\n    kind: concat\n    outs: [data/x]\n  c:\n    kind: concat\n    outs: [data/x/y]\n`,
    );
    expect(e.message).toContain('pipeline/pipeline.yaml:7:12: stage `b`: out `data/x` is also declared by stage `a`');
    expect(e.message).toContain('pipeline/pipeline.yaml:10:12: stage `c`: out `data/x/y` lies inside out `data/x` of stage `a`');
  });

  it('bad settings, paths and param types', async () => {
    const e = await loadError(`settings:\n  jobs: 0\nstages:\n  a:\n    kind: concat\n    params: { epochs: many }\n    outs: [../escape]\n`);
    expect(e.message).toContain('pipeline/pipeline.yaml:2:9: settings: `jobs` must be an integer ≥ 1');
    expect(e.message).toContain('pipeline/pipeline.yaml:6:15: stage `a`: param `epochs` must be a integer, got `many`');
    expect(e.message).toContain('pipeline/pipeline.yaml:7:12: stage `a`: each of `outs` must be a relative path inside the repository');
  });

  it('a missing pipeline file', async () => {
    ws = await workspace('stages: {}\n');
    await expect(loadPipeline({ root: ws.root, file: 'nope.yaml' })).rejects.toThrow(/nope\.yaml: pipeline file not found/);
  });
});

describe('pipeline.schema.json', () => {
  it('the committed file is what pipelineJsonSchema() produces (regenerate: skintwin schema > pipeline/pipeline.schema.json)', async () => {
    const committed = await readFile(join(import.meta.dirname, '../../pipeline/pipeline.schema.json'), 'utf8');
    expect(committed).toBe(renderPipelineJsonSchema());
  });

  it('accepts a valid definition and rejects unknown params', () => {
    const ajv = new Ajv({ strict: false });
    const validate = ajv.compile(pipelineJsonSchema(testKinds));
    const good = parse(`stages:\n  a:\n    kind: concat\n    params: { epochs: 2 }\n    outs: [a]\n  s:\n    kind: command\n    params: { cmd: 'true' }\n`);
    expect(validate(good)).toBe(true);
    expect(validate(parse(`stages:\n  a:\n    kind: concat\n    params: { epoch: 2 }\n`))).toBe(false);
    expect(validate(parse(`stages:\n  s:\n    kind: command\n`))).toBe(false);
  });
});
