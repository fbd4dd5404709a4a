// The one runner behind every stage action: read inputs, load pipeline.yaml with those overrides,
// bring that single stage up to date (upstream stages are earlier steps of the job), and report
// through outputs, the job summary and setFailed. The stage logic lives in pipeline/ only.

import * as core from '@actions/core';
import { ConfigurationError, errorMessage } from '../../pipeline/core/errors.ts';
import { suggestion } from '../../pipeline/core/suggest.ts';
import { loadPipeline, repro } from '../../pipeline/engine/index.ts';
import type { ReproReport, StageRun } from '../../pipeline/engine/types.ts';
import { stageKinds } from '../../pipeline/stages.ts';
import { actionOutputs, DEFAULT_CONFIG } from './action-yaml.ts';
import { ActionsLogger } from './logger.ts';
import { createActionsCache } from './remote-cache.ts';

export interface StageActionInputs {
  config: string;
  stage: string;
  force: boolean;
  /** Non-empty param inputs, raw strings, parsed by the engine like pipeline.yaml values. */
  overrides: Record<string, string>;
}

/** Read the inputs of a `kind` action from the runner's INPUT_* environment. */
export function readStageInputs(kind: string): StageActionInputs {
  const spec = stageKinds.get(kind);
  if (!spec) throw new ConfigurationError(`unknown stage kind \`${kind}\``, { hint: suggestion(kind, [...stageKinds.keys()]) });
  const stage = core.getInput('stage');
  if (!stage) throw new ConfigurationError('input `stage` is required: the name of a stage instance in pipeline.yaml', { field: 'stage' });
  const forceText = core.getInput('force');
  if (forceText !== '' && !/^(true|false)$/i.test(forceText)) {
    throw new ConfigurationError(`input \`force\` must be true or false, got \`${forceText}\``, { field: 'force' });
  }
  const overrides: Record<string, string> = {};
  for (const name of Object.keys(spec.params)) {
    // "" means "keep pipeline.yaml's value": action.yml gives param inputs no default.
    const value = core.getInput(name);
    if (value !== '') overrides[name] = value;
  }
  return {
    config: core.getInput('config') || DEFAULT_CONFIG,
    stage,
    force: forceText.toLowerCase() === 'true',
    overrides,
  };
}

/** The message a failed run reports: the same text the CLI prints for it. */
export function failureMessage(report: ReproReport, stage: string): string {
  const run = report.stages.find((s) => s.stage === stage) ?? report.stages.find((s) => s.action === 'failed');
  return run?.error ?? `stage \`${stage}\` failed`;
}

function setAllOutputs(values: Record<string, string>): void {
  for (const [name, value] of Object.entries(values)) core.setOutput(name, value);
}

export function summaryOf(run: StageRun): string {
  if (run.action === 'failed') {
    const body = run.summary.trim() ? `${run.summary.trim()}\n\n` : '';
    return `### \`${run.stage}\` (${run.kind}) failed\n\n${body}\`\`\`\n${run.error ?? 'failed'}\n\`\`\`\n`;
  }
  const body = run.summary.trim() ? `${run.summary.trim()}\n` : `### \`${run.stage}\` (${run.kind})\n`;
  // A skipped or restored stage shows its last summary: say so, so nobody reads it as a fresh run.
  if (run.action === 'skipped') return `${body}\n_Up to date: not run again._\n`;
  if (run.action === 'restored') return `${body}\n_Restored from the cache: not run again._\n`;
  return body;
}

export async function writeSummary(markdown: string): Promise<void> {
  // Outside a runner (or a harness without the file) there is no job summary to write.
  if (!process.env.GITHUB_STEP_SUMMARY) return;
  await core.summary.addRaw(markdown, true).write();
}

/** Entry point of every stage action. Never throws: failures end in `core.setFailed`. */
export async function runStageAction(kind: string): Promise<void> {
  const spec = stageKinds.get(kind);
  // Every documented output is set first, so downstream steps can read them even after a failure.
  const defaults: Record<string, string> = {};
  for (const name of Object.keys(spec ? actionOutputs(spec) : {})) defaults[name] = '';
  Object.assign(defaults, {
    status: 'not-run',
    stage: core.getInput('stage'),
    kind,
    outs: '[]',
    reports: '[]',
    reasons: '[]',
    'duration-ms': '0',
  });
  setAllOutputs(defaults);

  const controller = new AbortController();
  const abort = (): void => controller.abort();
  process.once('SIGINT', abort);
  process.once('SIGTERM', abort);
  let stageName = defaults.stage ?? '';
  const logger = new ActionsLogger();
  try {
    const inputs = readStageInputs(kind);
    stageName = inputs.stage;
    const root = process.cwd();
    const overrides = Object.keys(inputs.overrides).length ? { overrides: { [inputs.stage]: inputs.overrides } } : {};
    const pipeline = await loadPipeline({ root, file: inputs.config, ...overrides });
    const definition = pipeline.stages.get(inputs.stage);
    // An unknown stage is left to repro's own check of its targets, so the CLI and the action say the same thing.
    if (definition && definition.kind.kind !== kind) {
      throw new ConfigurationError(
        `stage \`${inputs.stage}\` is of kind \`${definition.kind.kind}\`, not \`${kind}\`: use ./actions/${definition.kind.kind}`,
        { field: 'stage' },
      );
    }
    const remoteCache = createActionsCache(process.env, logger);
    const report = await repro(pipeline, {
      targets: [inputs.stage],
      upstream: false,
      force: inputs.force,
      logger,
      signal: controller.signal,
      env: process.env,
      ...(remoteCache ? { remoteCache } : {}),
    });
    const run = report.stages.find((s) => s.stage === inputs.stage);
    if (run) {
      setAllOutputs({
        ...run.outputs,
        status: run.action,
        stage: run.stage,
        kind: run.kind,
        outs: JSON.stringify(run.outs),
        reports: JSON.stringify(run.reports),
        reasons: JSON.stringify(run.reasons),
        'duration-ms': String(Math.round(run.durationMs)),
      });
      await writeSummary(summaryOf(run));
    }
    if (!report.ok) {
      const message = failureMessage(report, inputs.stage);
      if (!run) await writeSummary(`### \`${inputs.stage}\` failed\n\n${message}\n`);
      logger.fail(message);
    }
  } catch (error) {
    const message = errorMessage(error);
    core.setOutput('status', 'failed');
    try {
      await writeSummary(`### \`${stageName || kind}\` failed\n\n\`\`\`\n${message}\n\`\`\`\n`);
    } catch {
      // The failure itself is what matters; a summary that cannot be written must not hide it.
    }
    logger.fail(message);
  } finally {
    process.off('SIGINT', abort);
    process.off('SIGTERM', abort);
  }
}
