// A built stage action, spawned as the runner does, carries on with a warning when the Actions
// cache service is down (saving and restoring through it: test/runner/retrain-workflow.test.ts).

import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startResultsStandIn } from '../support/actions-runtime/index.ts';
import { prepareCheckout, pushEvent, runAction } from '../support/runner/index.ts';

const pipeline = `settings: { seed: 42 }
stages:
  fetch-synthetic:
    kind: fetch-dataset
    params: { source: synthetic, size: tiny }
    outs: [data/raw/synthetic]
`;

let checkout: string;

beforeAll(async () => {
  expect(inject('buildError')).toBe('');
  checkout = await prepareCheckout('stage-action-cache-');
  await writeFile(join(checkout, 'pipeline/pipeline.yaml'), pipeline);
});
afterAll(async () => {
  if (checkout) await rm(checkout, { recursive: true, force: true });
});

const fetchSynthetic = (resultsEnv: Readonly<Record<string, string>>) =>
  runAction({
    actionDir: join(checkout, 'actions/fetch-dataset'),
    inputs: { stage: 'fetch-synthetic' },
    eventName: 'push',
    eventPayload: pushEvent(),
    cwd: checkout,
    resultsEnv,
  });

describe('a stage action and the Actions cache', () => {
  it('runs and still succeeds, with a warning, when the cache service is unreachable', async () => {
    const gone = await startResultsStandIn();
    await gone.close();
    const run = await fetchSynthetic(gone.env);
    expect(run.exitCode, run.stderr + run.stdout.slice(-3000)).toBe(0);
    expect(run.outputs.status).toBe('ran');
    const warnings = run.annotations.filter((a) => a.level === 'warning').map((a) => a.message);
    expect(warnings.join('\n')).toMatch(/Remote cache: .* was not saved/);
    expect(run.annotations.filter((a) => a.level === 'error')).toEqual([]);
  });
});
