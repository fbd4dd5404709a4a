// Action entry for publish-evaluation: read inputs and the event, establish the pull request
// (pull-request.json checked against the workflow_run), publish through the Octokit forge, and
// report in outputs and the job summary. The logic is pipeline/github's, shared with the CLI.

import * as core from '@actions/core';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ConfigurationError, errorMessage } from '../../pipeline/core/errors.ts';
import { exists } from '../../pipeline/core/fs.ts';
import { createOctokitForge } from '../../pipeline/github/octokit.ts';
import { publishEvaluation } from '../../pipeline/github/publish.ts';
import { parsePullRequestMetadata, PULL_REQUEST_FILE, resolvePullRequest } from '../../pipeline/github/pull-request.ts';
import { ActionsLogger } from '../lib/logger.ts';

async function writeSummary(markdown: string): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return;
  await core.summary.addRaw(markdown, true).write();
}

function parseInputs(): { reportsDir: string; pr?: number; headSha?: string; models?: string[]; token: string } {
  const problems: ConfigurationError[] = [];
  const prText = core.getInput('pull-request');
  let pr: number | undefined;
  if (prText !== '') {
    if (/^[1-9]\d*$/.test(prText)) pr = Number(prText);
    else problems.push(new ConfigurationError(`input \`pull-request\` must be a positive integer, got \`${prText}\``, { field: 'pull-request' }));
  }
  const headSha = core.getInput('head-sha') || undefined;
  if (headSha !== undefined && !/^[0-9a-f]{40}$/.test(headSha)) {
    problems.push(new ConfigurationError(`input \`head-sha\` must be a 40-hex commit sha, got \`${headSha}\``, { field: 'head-sha' }));
  }
  const token = core.getInput('token');
  if (!token) problems.push(new ConfigurationError('input `token` is empty: pass a token with pull-requests, issues and checks write', { field: 'token' }));
  if (problems.length) throw ConfigurationError.all(problems);
  const models = core.getInput('models').split(/[\s,]+/).filter(Boolean);
  return {
    reportsDir: resolve(process.cwd(), core.getInput('reports-dir') || 'reports'),
    token,
    ...(pr !== undefined ? { pr } : {}),
    ...(headSha !== undefined ? { headSha } : {}),
    ...(models.length ? { models } : {}),
  };
}

async function run(): Promise<void> {
  for (const [name, value] of Object.entries({ 'pull-request': '', published: '[]', failed: '[]', verdicts: '{}' })) core.setOutput(name, value);
  const logger = new ActionsLogger();
  try {
    const inputs = parseInputs();
    logger.secret(inputs.token);
    const eventName = process.env.GITHUB_EVENT_NAME ?? '';
    const eventPath = process.env.GITHUB_EVENT_PATH;
    const event: unknown = eventPath && (await exists(eventPath)) ? JSON.parse(await readFile(eventPath, 'utf8')) : {};
    const repository = process.env.GITHUB_REPOSITORY ?? '';
    if (!/^[^/\s]+\/[^/\s]+$/.test(repository)) throw new ConfigurationError('GITHUB_REPOSITORY is not set to owner/name', { field: 'GITHUB_REPOSITORY' });

    const forge = createOctokitForge({
      token: inputs.token,
      apiUrl: process.env.GITHUB_API_URL || 'https://api.github.com',
      repository,
      author: core.getInput('comment-author'),
      logger,
    });
    const metadataFile = join(inputs.reportsDir, PULL_REQUEST_FILE);
    const shownFile = join(core.getInput('reports-dir') || 'reports', PULL_REQUEST_FILE);
    const metadata = (await exists(metadataFile)) ? parsePullRequestMetadata(await readFile(metadataFile, 'utf8'), shownFile) : undefined;
    const target = await resolvePullRequest({
      eventName,
      event,
      forge,
      file: shownFile,
      ...(metadata ? { metadata } : {}),
      ...(inputs.pr !== undefined ? { pr: inputs.pr } : {}),
      ...(inputs.headSha !== undefined ? { headSha: inputs.headSha } : {}),
    });
    core.setOutput('pull-request', String(target.pr));
    logger.info(`publishing on #${target.pr} at ${target.headSha} (${target.source})`);

    const triggering = (event as { workflow_run?: { html_url?: string } }).workflow_run?.html_url;
    const ownRun = `${process.env.GITHUB_SERVER_URL ?? 'https://github.com'}/${repository}/actions/runs/${process.env.GITHUB_RUN_ID ?? ''}`;
    const runUrl = core.getInput('run-url') || triggering || ownRun;
    const artifactUrl = core.getInput('artifact-url') || `${runUrl}#artifacts`;

    const result = await publishEvaluation({
      forge,
      pr: target.pr,
      headSha: target.headSha,
      reportsDir: inputs.reportsDir,
      ...(inputs.models ? { models: inputs.models } : {}),
      artifactUrl,
      detailsUrl: runUrl,
      logger,
      root: process.cwd(),
    });
    core.setOutput('published', JSON.stringify(result.published));
    core.setOutput('failed', JSON.stringify(result.failed));
    core.setOutput('verdicts', JSON.stringify(Object.fromEntries(result.published.map((p) => [p.model, p.verdict]))));
    await writeSummary(result.summary);
    if (!result.ok) logger.fail(`${result.failed.length} model(s) not published: ${result.failed.map((f) => f.model).join(', ')}`);
  } catch (error) {
    const message = errorMessage(error);
    try {
      await writeSummary(`### Evaluation not published\n\n\`\`\`\n${message}\n\`\`\`\n`);
    } catch {
      // The failure itself is what matters; a summary that cannot be written must not hide it.
    }
    logger.fail(message);
  }
}

await run();
