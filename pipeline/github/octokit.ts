// The forge on GitHub: the `octokit` package's Octokit (retries and rate-limit throttling built
// in), built with an explicit base URL and token so nothing depends on the process environment.

import { Octokit } from 'octokit';
import type { Logger } from '../core/logger.ts';
import type { CheckRunInput, Forge, ForgeCheckRun, ForgeComment } from './forge.ts';

/** Who comments with a workflow's GITHUB_TOKEN (the token cannot ask: GET /user answers 403). */
export const DEFAULT_AUTHOR = 'github-actions[bot]';

export interface OctokitForgeOptions {
  token: string;
  /** REST base URL, e.g. https://api.github.com (GITHUB_API_URL on a runner). */
  apiUrl: string;
  /** `owner/name`. */
  repository: string;
  /** Login the token posts as (default `github-actions[bot]`, the GITHUB_TOKEN's identity). */
  author?: string;
  logger?: Logger;
  /** Extra Octokit options (tests turn retries and throttling off). */
  octokit?: Record<string, unknown>;
}

type CheckRunData = {
  id: number;
  name: string;
  head_sha: string;
  status: string;
  conclusion: string | null;
  html_url: string | null;
  output: { title: string | null; summary: string | null; text: string | null };
};

function checkRun(d: CheckRunData): ForgeCheckRun {
  return {
    id: d.id,
    name: d.name,
    headSha: d.head_sha,
    status: d.status,
    conclusion: d.conclusion,
    title: d.output.title,
    summary: d.output.summary,
    text: d.output.text,
    ...(d.html_url ? { url: d.html_url } : {}),
  };
}

function comment(d: { id: number; body?: string; user: { login: string } | null; html_url: string }): ForgeComment {
  return { id: d.id, body: d.body ?? '', author: d.user?.login ?? '', url: d.html_url };
}

function output(run: CheckRunInput): { title: string; summary: string; text?: string } {
  return { title: run.title, summary: run.summary, ...(run.text !== undefined ? { text: run.text } : {}) };
}

export function createOctokitForge(options: OctokitForgeOptions): Forge {
  const [owner = '', repo = ''] = options.repository.split('/');
  const logger = options.logger;
  const octokit = new Octokit({
    auth: options.token,
    baseUrl: options.apiUrl.replace(/\/$/, ''),
    userAgent: 'skintwin-mlops',
    log: {
      debug: (m: string) => logger?.debug(m),
      info: (m: string) => logger?.info(m),
      warn: (m: string) => logger?.warn(m),
      error: (m: string) => logger?.error(m),
    },
    ...options.octokit,
  });
  const at = { owner, repo };

  return {
    name: 'github',
    author: options.author || DEFAULT_AUTHOR,
    async *comments(issue) {
      const pages = octokit.paginate.iterator(octokit.rest.issues.listComments, { ...at, issue_number: issue, per_page: 100 });
      for await (const page of pages) for (const c of page.data) yield comment(c);
    },
    async createComment(issue, body) {
      const { data } = await octokit.rest.issues.createComment({ ...at, issue_number: issue, body });
      return comment(data);
    },
    async updateComment(id, body) {
      const { data } = await octokit.rest.issues.updateComment({ ...at, comment_id: id, body });
      return comment(data);
    },
    async findCheckRun(headSha, name) {
      const { data } = await octokit.rest.checks.listForRef({ ...at, ref: headSha, check_name: name, filter: 'latest', per_page: 1 });
      const found = data.check_runs[0];
      return found ? checkRun(found as CheckRunData) : null;
    },
    async createCheckRun(run) {
      const { data } = await octokit.rest.checks.create({
        ...at,
        name: run.name,
        head_sha: run.headSha,
        status: 'completed',
        conclusion: run.conclusion,
        output: output(run),
        ...(run.detailsUrl ? { details_url: run.detailsUrl } : {}),
      });
      return checkRun(data as CheckRunData);
    },
    async updateCheckRun(id, run) {
      const { data } = await octokit.rest.checks.update({
        ...at,
        check_run_id: id,
        status: 'completed',
        conclusion: run.conclusion,
        output: output(run),
        ...(run.detailsUrl ? { details_url: run.detailsUrl } : {}),
      });
      return checkRun(data as CheckRunData);
    },
    async removeLabel(issue, name) {
      try {
        await octokit.rest.issues.removeLabel({ ...at, issue_number: issue, name });
        return true;
      } catch (error) {
        // 404: the pull request does not carry the label (any more): nothing to remove.
        if ((error as { status?: number }).status === 404) return false;
        throw error;
      }
    },
    async pullRequestHead(pr) {
      try {
        const { data } = await octokit.rest.pulls.get({ ...at, pull_number: pr });
        return data.head.sha;
      } catch (error) {
        if ((error as { status?: number }).status === 404) return null;
        throw error;
      }
    },
  };
}
