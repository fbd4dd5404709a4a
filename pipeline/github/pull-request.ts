// Which pull request and commit an evaluation belongs to. On `workflow_run` the facts GitHub
// states (the run's head sha, its pull requests) are trusted; the artifact's pull-request.json was
// written next to the code under evaluation, so it is untrusted data, checked against those facts.

import { ConfigurationError, DataError } from '../core/errors.ts';
import type { Forge } from './forge.ts';

/** The file the evaluation job writes beside the reports: which pull request and head it evaluated. */
export const PULL_REQUEST_FILE = 'pull-request.json';

export interface PullRequestMetadata {
  format: 'skintwin-pr-evaluation';
  version: 1;
  pr: number;
  headSha: string;
}

export interface PullRequestTarget {
  pr: number;
  headSha: string;
  /** How it was established, for the log. */
  source: string;
}

const SHA = /^[0-9a-f]{40}$/;

/** Parse pull-request.json's text (untrusted): exact fields, exact types. */
export function parsePullRequestMetadata(text: string, file: string): PullRequestMetadata {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(text) as Record<string, unknown>;
  } catch (error) {
    throw new DataError(`not valid JSON: ${(error as Error).message}`, { file });
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new DataError('must hold a JSON object', { file });
  const problems: string[] = [];
  if (v.format !== 'skintwin-pr-evaluation') problems.push('`format` must be "skintwin-pr-evaluation"');
  if (v.version !== 1) problems.push('`version` must be 1');
  if (typeof v.pr !== 'number' || !Number.isInteger(v.pr) || v.pr < 1) problems.push('`pr` must be a positive integer');
  if (typeof v.headSha !== 'string' || !SHA.test(v.headSha)) problems.push('`headSha` must be a 40-hex commit sha');
  if (problems.length) throw new DataError(problems.join('; '), { file });
  return { format: 'skintwin-pr-evaluation', version: 1, pr: v.pr as number, headSha: v.headSha as string };
}

interface WorkflowRunEvent {
  workflow_run?: {
    event?: string;
    head_sha?: string;
    pull_requests?: { number?: number }[];
  };
}

interface PullRequestEvent {
  pull_request?: { number?: number; head?: { sha?: string } };
}

/**
 * The pull request to publish on. `workflow_run`: the metadata must name the run's own head sha,
 * and a pull request GitHub lists for the run, or (fork pull requests, which GitHub does not list)
 * one whose head the forge confirms. `pull_request`: the event itself. Anything else: explicit values.
 */
export async function resolvePullRequest(o: {
  eventName: string;
  event: unknown;
  metadata?: PullRequestMetadata;
  /** Explicit values (action inputs / CLI flags); on `workflow_run` they must agree with the run. */
  pr?: number;
  headSha?: string;
  forge: Forge;
  file?: string;
}): Promise<PullRequestTarget> {
  const file = o.file ?? PULL_REQUEST_FILE;
  if (o.eventName === 'workflow_run') {
    const run = (o.event as WorkflowRunEvent).workflow_run;
    if (!run || typeof run.head_sha !== 'string' || !SHA.test(run.head_sha)) throw new DataError('the workflow_run event has no head_sha', { field: 'workflow_run.head_sha' });
    if (run.event !== 'pull_request') throw new ConfigurationError(`the triggering run was a \`${run.event}\` event, not a pull_request: nothing to publish on`, { field: 'workflow_run.event' });
    const m = o.metadata;
    if (!m) throw new DataError('missing: the evaluation job writes it next to the reports', { file });
    if (m.headSha !== run.head_sha) {
      throw new DataError(`names commit ${m.headSha}, but the run evaluated ${run.head_sha}: refusing to publish`, { file, field: 'headSha' });
    }
    if (o.pr !== undefined && o.pr !== m.pr) throw new ConfigurationError(`pull request ${o.pr} was given, but ${file} names #${m.pr}`, { field: 'pull-request' });
    const listed = (run.pull_requests ?? []).map((p) => p.number).filter((n): n is number => typeof n === 'number');
    if (listed.length) {
      if (!listed.includes(m.pr)) {
        throw new DataError(`names #${m.pr}, but the run belongs to ${listed.map((n) => `#${n}`).join(', ')}: refusing to publish`, { file, field: 'pr' });
      }
      return { pr: m.pr, headSha: run.head_sha, source: `workflow_run of #${m.pr}` };
    }
    const head = await o.forge.pullRequestHead(m.pr);
    if (head !== run.head_sha) {
      throw new DataError(`names #${m.pr}, whose head is ${head ?? 'unknown'}, not the evaluated ${run.head_sha}: refusing to publish`, { file, field: 'pr' });
    }
    return { pr: m.pr, headSha: run.head_sha, source: `workflow_run of fork pull request #${m.pr} (head confirmed)` };
  }
  if (o.eventName === 'pull_request' || o.eventName === 'pull_request_target') {
    const pr = (o.event as PullRequestEvent).pull_request;
    if (!pr?.number || !pr.head?.sha) throw new DataError(`the ${o.eventName} event has no pull_request.number / head.sha`, { field: 'pull_request' });
    return { pr: o.pr ?? pr.number, headSha: o.headSha ?? pr.head.sha, source: `${o.eventName} event` };
  }
  const problems: ConfigurationError[] = [];
  if (o.pr === undefined) problems.push(new ConfigurationError('a pull request number is required outside pull_request and workflow_run events', { field: 'pull-request' }));
  if (o.headSha === undefined) problems.push(new ConfigurationError('a head commit sha is required outside pull_request and workflow_run events', { field: 'head-sha' }));
  if (problems.length) throw ConfigurationError.all(problems);
  return { pr: o.pr!, headSha: o.headSha!, source: 'given' };
}
