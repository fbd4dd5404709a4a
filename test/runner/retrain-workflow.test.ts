// The retrain workflow driven end to end from a push to main: every step of its `retrain` job
// runs the built stage action in a fresh checkout on the embedded default pipeline, with the
// stage cache going through the Actions results stand-in. A second run on a clean runner (no
// local outputs, no local cache) restores every stage from that cache instead of running it.

import { createHash } from 'node:crypto';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseDocument } from 'yaml';
import { startResultsStandIn, type ResultsStandIn } from '../support/actions-runtime/index.ts';
import { prepareCheckout, pushEvent, runWorkflowJob, type JobRun } from '../support/runner/index.ts';

// Every stage step of the `retrain` job, in order, and the outs they write.
const stages = [
  'fetch-synthetic',
  'build-fusion',
  'prepare-face-troubles',
  'prepare-skin-type',
  'prepare-fusion',
  'train-context-correction',
  'train-skin-type',
  'train-skin-detection',
  'evaluate-context-correction',
  'evaluate-skin-type',
  'evaluate-skin-detection',
  'evaluate-chain',
];
const outs = [
  'data/raw/synthetic',
  'data/fusion/synthetic',
  'data/processed/face-troubles',
  'data/processed/skin-type',
  'data/processed/fusion',
  'models/context-correction',
  'models/skin-type',
  'models/skin-detection',
  'reports/context-correction',
  'reports/skin-type',
  'reports/skin-detection',
  'reports/chain',
];

let checkout: string;
let results: ResultsStandIn;

/** sha256 of every file under `dir`, by relative path: what a restore must reproduce exactly. */
async function treeHashes(dir: string): Promise<Record<string, string>> {
  const found: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    found[relative(dir, path)] = createHash('sha256').update(await readFile(path)).digest('hex');
  }
  return found;
}

function retrain(): Promise<JobRun> {
  return runWorkflowJob({
    workflowFile: '.github/workflows/retrain.yml',
    job: 'retrain',
    eventName: 'push',
    eventPayload: pushEvent({ modified: ['pipeline/pipeline.yaml'], message: 'Tune the data preparation' }),
    cwd: checkout,
    resultsEnv: results.env,
  });
}

function stageStatus(job: JobRun): Record<string, string | undefined> {
  return Object.fromEntries(stages.map((s) => [s, job.steps.find((step) => step.id === s)?.outputs.status]));
}

function describeFailure(job: JobRun): string {
  return job.steps
    .filter((s) => s.conclusion === 'failure')
    .map((s) => `${s.name} (exit ${s.exitCode}):\n${s.annotations.map((a) => a.message).join('\n')}\n${s.stderr.slice(-2000)}`)
    .join('\n');
}

beforeAll(async () => {
  expect(inject('buildError')).toBe('');
  checkout = await prepareCheckout('retrain-workflow-');
  // The pushed change: the embedded default with the synthetic dataset at its test size, so the
  // whole job takes seconds (the default `small` takes minutes on two cores).
  const file = join(checkout, 'pipeline/pipeline.yaml');
  const doc = parseDocument(await readFile(file, 'utf8'));
  expect(doc.getIn(['stages', 'fetch-synthetic', 'params', 'source'])).toBe('synthetic');
  doc.setIn(['stages', 'fetch-synthetic', 'params', 'size'], 'tiny');
  // A few epochs and no champion lookup: the job checks the plumbing, not the models.
  for (const stage of ['train-skin-type', 'train-skin-detection']) doc.setIn(['stages', stage, 'params', 'epochs'], 3);
  for (const stage of stages.filter((s) => s.startsWith('evaluate-'))) doc.setIn(['stages', stage, 'params', 'champion'], 'none');
  await writeFile(file, doc.toString());
  results = await startResultsStandIn();
});
afterAll(async () => {
  await results?.close();
  if (checkout) await rm(checkout, { recursive: true, force: true });
});

describe('retrain.yml on a push to main', () => {
  let first: Record<string, Record<string, string>>;

  it('runs every stage and saves each to the Actions cache', { timeout: 180_000 }, async () => {
    const job = await retrain();
    expect(job.status, describeFailure(job)).toBe('success');
    expect(job.steps.filter((s) => s.kind === 'prepared').map((s) => s.name)).toEqual([
      expect.stringMatching(/^uses actions\/checkout@[0-9a-f]{40}$/),
      'uses ./actions/setup',
    ]);
    // Every step that reports a stage status is listed here: a stage added to the job is covered too.
    expect(job.steps.filter((s) => s.outputs.status !== undefined).map((s) => s.id)).toEqual(stages);
    expect(stageStatus(job)).toEqual(Object.fromEntries(stages.map((s) => [s, 'ran'])));
    first = {};
    for (const out of outs) {
      first[out] = await treeHashes(join(checkout, out));
      expect(Object.keys(first[out]!).length, out).toBeGreaterThan(0);
    }
    const saved = results.cacheEntries().filter((e) => e.finalized);
    expect(saved).toHaveLength(stages.length);
    for (const stage of stages) expect(job.steps.find((s) => s.id === stage)!.summary, stage).not.toBe('');
  });

  it('restores every stage from the Actions cache on a clean runner, byte for byte', { timeout: 180_000 }, async () => {
    for (const dir of ['data/raw', 'data/fusion', 'data/processed', 'models', 'reports', '.skintwin']) {
      await rm(join(checkout, dir), { recursive: true, force: true });
    }
    const lock = join(checkout, 'pipeline/pipeline.lock');
    await rm(lock, { force: true });
    const before = results.calls.length;
    const job = await retrain();
    expect(job.status, describeFailure(job)).toBe('success');
    expect(stageStatus(job)).toEqual(Object.fromEntries(stages.map((s) => [s, 'restored'])));
    for (const out of outs) expect(await treeHashes(join(checkout, out)), out).toEqual(first[out]);
    const calls = results.calls.slice(before);
    expect(calls.filter((c) => c.method === 'CacheService/CreateCacheEntry')).toEqual([]);
    expect(calls.filter((c) => c.method === 'CacheService/GetCacheEntryDownloadURL' && c.status === 200)).toHaveLength(stages.length);
  });
});
