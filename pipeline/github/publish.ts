// Publish evaluation results on a pull request: per model, one comment found again by its hidden
// marker and edited in place (never a second one), and one check run `evaluate / <model>` whose
// conclusion is the gate verdict. Re-running with the same reports sends no write at all. A model
// whose evaluation.json is missing or invalid (schema of pipeline/report/schema.ts) is reported by
// file and skipped; the others still go.

import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { DataError, errorMessage } from '../core/errors.ts';
import { exists } from '../core/fs.ts';
import type { Logger } from '../core/logger.ts';
import type { EvaluationReport } from '../evaluate/types.ts';
import { evaluationProblems } from '../report/schema.ts';
import { checkTitle, evaluationMarker, evaluationMarkdown } from './body.ts';
import { CHECK_OUTPUT_LIMIT, COMMENT_LIMIT, truncate, type CheckConclusion, type Forge, type ForgeComment } from './forge.ts';

export const EVALUATION_JSON = 'evaluation.json';

export interface PublishEvaluationOptions {
  forge: Forge;
  /** Pull request (issue) number. */
  pr: number;
  /** The commit evaluated: check runs attach to it. */
  headSha: string;
  /** Folder holding <model>/evaluation.json (and the plots). */
  reportsDir?: string;
  /** Reports already in memory, instead of or besides `reportsDir`. */
  reports?: EvaluationReport[];
  /** Only these models; each must have a report (default: every report found). */
  models?: readonly string[];
  /** Where the plots and full reports are (the run's artifacts page). */
  artifactUrl?: string;
  /** Link of the check runs (the workflow run). */
  detailsUrl?: string;
  logger: Logger;
  /** Root for shorter file names in messages. */
  root?: string;
}

export type WriteAction = 'created' | 'updated' | 'unchanged';

export interface PublishedModel {
  model: string;
  verdict: 'pass' | 'fail';
  conclusion: CheckConclusion;
  comment: { id: number; action: WriteAction; url?: string };
  checkRun: { id: number; action: WriteAction; url?: string };
}

export interface PublishFailure {
  model: string;
  /** The file at fault, when the failure is about a file. */
  file?: string;
  error: string;
}

export interface PublishResult {
  ok: boolean;
  published: PublishedModel[];
  failed: PublishFailure[];
  /** The same content as the comments, for a job summary or a terminal. */
  summary: string;
}

/** The check run of a model (GitHub shows it as `<workflow> / evaluate / <model>` nowhere else). */
export function checkRunName(model: string): string {
  return `evaluate / ${model}`;
}

/** pass with at least one gate passed → success; fail → failure; nothing actually gated → neutral. */
export function conclusionOf(report: EvaluationReport): CheckConclusion {
  if (report.verdict === 'fail') return 'failure';
  return report.gates.some((g) => g.status === 'pass') ? 'success' : 'neutral';
}

const MODEL_NAME = /^[a-z0-9][a-z0-9._-]*$/i;

/** Check a parsed evaluation.json against the shipped schema; every problem at once, by field. */
export function validateEvaluation(value: unknown, file: string, model?: string): EvaluationReport {
  const problems = evaluationProblems(value);
  const named = (value as { model?: unknown } | null)?.model;
  if (model !== undefined && typeof named === 'string' && named !== model) problems.push(`/model is "${named}" but the report is in the folder of "${model}"`);
  if (problems.length) {
    throw new DataError(problems.length === 1 ? problems[0]! : `${problems.length} problems:\n  - ${problems.join('\n  - ')}`, { file });
  }
  return value as EvaluationReport;
}

/** Read and check <dir>/evaluation.json. */
export async function loadEvaluation(dir: string, model: string, shown = dir): Promise<EvaluationReport> {
  const file = join(shown, EVALUATION_JSON);
  let text: string;
  try {
    text = await readFile(join(dir, EVALUATION_JSON), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new DataError('missing: the evaluate stage writes it', { file });
    throw error;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new DataError(`not valid JSON: ${errorMessage(error)}`, { file });
  }
  return validateEvaluation(parsed, file, model);
}

/** Model folders under `reportsDir`: those holding an evaluation.json (or an evaluation.md without it). */
export async function discoverModels(reportsDir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(reportsDir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const found: string[] = [];
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    const dir = join(reportsDir, e.name);
    if ((await exists(join(dir, EVALUATION_JSON))) || (await exists(join(dir, 'evaluation.md')))) found.push(e.name);
  }
  return found.sort();
}

/** The comment body: the marker first (so it is found again), capped to GitHub's comment size. */
export function commentBody(report: EvaluationReport, artifactUrl?: string): string {
  const marker = evaluationMarker(report.model);
  let text = evaluationMarkdown(report, artifactUrl).trim();
  if (!text.startsWith(marker)) text = `${marker}\n${text}`;
  const note = `_Report cut to GitHub's size limit${artifactUrl ? `: the full report is in the [run's artifacts](${artifactUrl})` : ''}._`;
  return truncate(`${text}\n`, COMMENT_LIMIT, note);
}

/** The marker must open the body: a comment that merely quotes it (`> <!-- … -->`) is someone else's. */
function isOwnEvaluationComment(c: ForgeComment, marker: string, author: string): boolean {
  return c.author === author && c.body.trimStart().startsWith(marker);
}

async function findComment(forge: Forge, pr: number, marker: string, logger: Logger): Promise<ForgeComment | undefined> {
  let first: ForgeComment | undefined;
  // Every page is read: on a busy pull request the comment can be far back.
  for await (const c of forge.comments(pr)) {
    if (!isOwnEvaluationComment(c, marker, forge.author)) continue;
    if (!first) first = c;
    else logger.warn(`comment ${c.id} on #${pr} repeats ${marker}; only comment ${first.id} is kept up to date`);
  }
  return first;
}

async function publishOne(o: PublishEvaluationOptions, report: EvaluationReport): Promise<PublishedModel> {
  const { forge, pr, logger } = o;
  const model = report.model;
  const body = commentBody(report, o.artifactUrl);
  const marker = evaluationMarker(model);

  const existing = await findComment(forge, pr, marker, logger);
  let comment: PublishedModel['comment'];
  if (!existing) {
    const c = await forge.createComment(pr, body);
    comment = { id: c.id, action: 'created', ...(c.url ? { url: c.url } : {}) };
  } else if (existing.body === body) {
    comment = { id: existing.id, action: 'unchanged', ...(existing.url ? { url: existing.url } : {}) };
  } else {
    const c = await forge.updateComment(existing.id, body);
    comment = { id: c.id, action: 'updated', ...(c.url ? { url: c.url } : {}) };
  }

  const conclusion = conclusionOf(report);
  const run = {
    name: checkRunName(model),
    headSha: o.headSha,
    conclusion,
    title: checkTitle(report),
    summary: truncate(body.slice(marker.length).trim(), CHECK_OUTPUT_LIMIT, '_Summary cut to GitHub\'s size limit: see the pull request comment or the run\'s artifacts._'),
    ...(o.detailsUrl ? { detailsUrl: o.detailsUrl } : {}),
  };
  const found = await forge.findCheckRun(o.headSha, run.name);
  let checkRun: PublishedModel['checkRun'];
  if (!found) {
    const c = await forge.createCheckRun(run);
    checkRun = { id: c.id, action: 'created', ...(c.url ? { url: c.url } : {}) };
  } else if (found.status === 'completed' && found.conclusion === conclusion && found.title === run.title && found.summary === run.summary) {
    checkRun = { id: found.id, action: 'unchanged', ...(found.url ? { url: found.url } : {}) };
  } else {
    const c = await forge.updateCheckRun(found.id, run);
    checkRun = { id: c.id, action: 'updated', ...(c.url ? { url: c.url } : {}) };
  }
  logger.info(`${model}: ${report.verdict} → comment ${comment.id} ${comment.action}, check run ${checkRun.id} ${checkRun.action} (${conclusion})`);
  return { model, verdict: report.verdict, conclusion, comment, checkRun };
}

export async function publishEvaluation(o: PublishEvaluationOptions): Promise<PublishResult> {
  const { logger } = o;
  if (!Number.isInteger(o.pr) || o.pr < 1) throw new DataError(`pull request number must be a positive integer, got ${o.pr}`, { field: 'pr' });
  if (!/^[0-9a-f]{40}$/i.test(o.headSha)) throw new DataError(`head sha must be a 40-hex commit sha, got ${JSON.stringify(o.headSha)}`, { field: 'head-sha' });

  const failed: PublishFailure[] = [];
  const loaded = new Map<string, EvaluationReport>();
  for (const r of o.reports ?? []) loaded.set(r.model, validateEvaluation(r, `${r.model}/${EVALUATION_JSON}`));
  if (o.reportsDir) {
    const names = o.models ? o.models.filter((m) => !loaded.has(m)) : await discoverModels(o.reportsDir);
    for (const model of names) {
      const shown = o.root ? relative(o.root, join(o.reportsDir, model)) || '.' : join(o.reportsDir, model);
      if (!MODEL_NAME.test(model)) {
        failed.push({ model, error: `\`${model}\` is not a model name` });
        continue;
      }
      try {
        loaded.set(model, await loadEvaluation(join(o.reportsDir, model), model, shown));
      } catch (error) {
        const file = (error as DataError).location?.file ?? join(shown, EVALUATION_JSON);
        failed.push({ model, file, error: errorMessage(error) });
      }
    }
  }
  for (const m of o.models ?? []) {
    if (!loaded.has(m) && !failed.some((f) => f.model === m)) failed.push({ model: m, error: `no evaluation report for model \`${m}\`` });
  }
  for (const f of failed) logger.error(`${f.model}: nothing posted: ${f.error}`);
  if (!loaded.size && !failed.length) {
    throw new DataError('no evaluation reports found: expected <model>/evaluation.json folders', { file: o.reportsDir ?? '(none)' });
  }

  const published: PublishedModel[] = [];
  const wanted = [...loaded.values()].filter((r) => !o.models || o.models.includes(r.model)).sort((a, b) => a.model.localeCompare(b.model));
  for (const r of wanted) {
    try {
      published.push(await publishOne(o, r));
    } catch (error) {
      const message = errorMessage(error);
      logger.error(`${r.model}: publishing on ${o.forge.name} failed: ${message}`);
      failed.push({ model: r.model, error: message });
    }
  }

  const parts = wanted.map((r) => commentBody(r, o.artifactUrl));
  for (const f of failed) parts.push(`### \`${f.model}\`: not published\n\n\`\`\`\n${f.error}\n\`\`\`\n`);
  return { ok: failed.length === 0, published, failed, summary: parts.join('\n---\n\n') };
}
