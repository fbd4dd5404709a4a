// Action entry for repro: the CLI's `skintwin repro` with the Actions cache as remote cache, each
// stage's summary (evaluation reports included) in the job summary. The logic is pipeline/engine's.

import * as core from '@actions/core';
import { ConfigurationError, errorMessage } from '../../pipeline/core/errors.ts';
import { loadPipeline, repro } from '../../pipeline/engine/index.ts';
import { DEFAULT_CONFIG } from '../lib/action-yaml.ts';
import { ActionsLogger } from '../lib/logger.ts';
import { createActionsCache } from '../lib/remote-cache.ts';
import { summaryOf, writeSummary } from '../lib/runner.ts';

async function run(): Promise<void> {
  core.setOutput('ok', 'false');
  core.setOutput('stages', '[]');
  const controller = new AbortController();
  const abort = (): void => controller.abort();
  process.once('SIGINT', abort);
  process.once('SIGTERM', abort);
  const logger = new ActionsLogger();
  try {
    const forceText = core.getInput('force');
    if (forceText !== '' && !/^(true|false)$/i.test(forceText)) {
      throw new ConfigurationError(`input \`force\` must be true or false, got \`${forceText}\``, { field: 'force' });
    }
    const targets = core.getInput('stages').split(/[\s,]+/).filter(Boolean);
    const pipeline = await loadPipeline({ root: process.cwd(), file: core.getInput('config') || DEFAULT_CONFIG });
    const remoteCache = createActionsCache(process.env, logger);
    const report = await repro(pipeline, {
      ...(targets.length ? { targets } : {}),
      force: forceText.toLowerCase() === 'true',
      logger,
      signal: controller.signal,
      env: process.env,
      ...(remoteCache ? { remoteCache } : {}),
    });
    core.setOutput('ok', String(report.ok));
    core.setOutput('stages', JSON.stringify(report.stages.map((s) => ({ stage: s.stage, kind: s.kind, action: s.action }))));
    const table = ['| stage | kind | action |', '|---|---|---|', ...report.stages.map((s) => `| \`${s.stage}\` | ${s.kind} | ${s.action} |`)].join('\n');
    await writeSummary(`## Pipeline\n\n${table}\n\n${report.stages.filter((s) => s.action !== 'not-run').map(summaryOf).join('\n')}`);
    if (!report.ok) {
      const failed = report.stages.filter((s) => s.action === 'failed');
      logger.fail(failed.map((s) => s.error ?? `stage \`${s.stage}\` failed`).join('\n') || 'a stage failed');
    }
  } catch (error) {
    logger.fail(errorMessage(error));
  } finally {
    process.off('SIGINT', abort);
    process.off('SIGTERM', abort);
  }
}

await run();
