// Publish evaluation results on a pull request: per model, one comment found again by its hidden
// marker and edited in place (never a second one), and one check run `evaluate / <model>` whose
// conclusion is the gate verdict. Re-running with the same reports sends no write at all. A model
// whose evaluation.json is missing or invalid is reported by file and skipped; the others still go.

import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { DataError, errorMessage } from '../core/errors.ts';
import { exists } from '../core/fs.ts';
import type { Logger } from '../core/logger.ts';
import type { EvaluationReport } from '../evaluate/types.ts';
import { checkTitle, evaluationMarker, renderFallbackMarkdown } from './body.ts';
import { CHECK_OUTPUT_LIMIT, COMMENT_LIMIT, truncate, type CheckConclusion, type Forge, type ForgeComment } from './forge.ts';

export const EVALUATION_JSON = 'evaluation.json';
export const EVALUATION_MD = 'evaluation.md';

/** A report to publish, with the markdown a person reads (evaluation.md, or rendered). */
export interface LoadedEvaluation {
  report: EvaluationReport;
  markdown: string;
  /** evaluation.json, for messages. */
  file: string;
}

export interface PublishEvaluationOptions {
  forge: Forge;
  /** Pull request (issue) number. */
  pr: number;
  /** The commit evaluated: check runs attach to it. */
  headSha: string;
  /** Folder holding <model>/evaluation.json (+ evaluation.md, plots). */
  reportsDir?: string;
  /** Reports already in memory, instead of or besides `reportsDir`. */
  reports?: LoadedEvaluation[];
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

/** Check the fields publishing reads; every problem at once, each naming the field. */
export function validateEvaluation(value: unknown, file: string, model?: string): EvaluationReport {
  const problems: string[] = [];
  const v = value as Record<string, unknown> | null;
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new DataError('must hold a JSON object (an evaluation report)', { file });
  if (v.format !== 'skintwin-evaluation') problems.push(`\`format\` must be "skintwin-evaluation", got ${JSON.stringify(v.format)}`);
  if (v.version !== 1) problems.push(`\`version\` must be 1, got ${JSON.stringify(v.version)}`);
  if (typeof v.model !== 'string' || !MODEL_NAME.test(v.model)) problems.push(`\`model\` must be a model name, got ${JSON.stringify(v.model)}`);
  else if (model !== undefined && v.model !== model) problems.push(`\`model\` is "${v.model}" but the report is in the folder of "${model}"`);
  if (v.verdict !== 'pass' && v.verdict !== 'fail') problems.push(`\`verdict\` must be "pass" or "fail", got ${JSON.stringify(v.verdict)}`);
  if (!Array.isArray(v.gates)) problems.push('`gates` must be an array');
  else {
    v.gates.forEach((g: unknown, i) => {
      const gate = g as Record<string, unknown> | null;
      if (!gate || typeof gate.name !== 'string' || !['pass', 'fail', 'skipped'].includes(String(gate.status))) {
        problems.push(`\`gates[${i}]\` needs a \`name\` and a \`status\` of pass, fail or skipped`);
      }
    });
  }
  if (!Array.isArray(v.comparison)) problems.push('`comparison` must be an array');
  const champion = v.champion as Record<string, unknown> | undefined;
  if (!champion || typeof champion !== 'object' || typeof champion.source !== 'string') problems.push('`champion.source` is missing');
  const data = v.data as Record<string, unknown> | undefined;
  if (!data || typeof data !== 'object' || typeof data.rows !== 'number') problems.push('`data.rows` is missing');
  if (problems.length) {
    throw new DataError(problems.length === 1 ? problems[0]! : `${problems.length} problems:\n  - ${problems.join('\n  - ')}`, { file });
  }
  return v as unknown as EvaluationReport;
}

/** Read and check <dir>/evaluation.json, and take <dir>/evaluation.md as the body when present. */
export async function loadEvaluation(dir: string, model: string, shown = dir): Promise<LoadedEvaluation> {
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
  const report = validateEvaluation(parsed, file, model);
  const mdPath = join(dir, EVALUATION_MD);
  const markdown = (await exists(mdPath)) ? await readFile(mdPath, 'utf8') : renderFallbackMarkdown(report);
  return { report, markdown, file };
}

/** Model folders under `reportsDir`: those holding an evaluation.json or evaluation.md. */
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
    if ((await exists(join(dir, EVALUATION_JSON))) || (await exists(join(dir, EVALUATION_MD)))) found.push(e.name);
  }
  return found.sort();
}

/** The comment body: marker first (so it is found again), the report, then where the plots are. */
export function commentBody(model: string, markdown: string, artifactUrl?: string): string {
  const marker = evaluationMarker(model);
  let text = markdown.trim();
  if (text.startsWith(marker)) text = text.slice(marker.length).trim();
  const link = artifactUrl ? `\n\nPlots and full reports: [workflow run artifacts](${artifactUrl}).` : '';
  const note = `_Report cut to GitHub's size limit${artifactUrl ? `: the full report is in the [run's artifacts](${artifactUrl})` : ''}._`;
  return truncate(`${marker}\n${text}${link}\n`, COMMENT_LIMIT, note);
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

async function publishOne(o: PublishEvaluationOptions, e: LoadedEvaluation): Promise<PublishedModel> {
  const { forge, pr, logger } = o;
  const model = e.report.model;
  const body = commentBody(model, e.markdown, o.artifactUrl);
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

  const conclusion = conclusionOf(e.report);
  const run = {
    name: checkRunName(model),
    headSha: o.headSha,
    conclusion,
    title: checkTitle(e.report),
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
  logger.info(`${model}: ${e.report.verdict} → comment ${comment.id} ${comment.action}, check run ${checkRun.id} ${checkRun.action} (${conclusion})`);
  return { model, verdict: e.report.verdict, conclusion, comment, checkRun };
}

export async function publishEvaluation(o: PublishEvaluationOptions): Promise<PublishResult> {
  const { logger } = o;
  if (!Number.isInteger(o.pr) || o.pr < 1) throw new DataError(`pull request number must be a positive integer, got ${o.pr}`, { field: 'pr' });
  if (!/^[0-9a-f]{40}$/i.test(o.headSha)) throw new DataError(`head sha must be a 40-hex commit sha, got ${JSON.stringify(o.headSha)}`, { field: 'head-sha' });

  const failed: PublishFailure[] = [];
  const loaded = new Map<string, LoadedEvaluation>();
  for (const e of o.reports ?? []) loaded.set(e.report.model, e);
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
  const wanted = o.models ? [...loaded.values()].filter((e) => o.models!.includes(e.report.model)) : [...loaded.values()];
  for (const e of wanted.sort((a, b) => a.report.model.localeCompare(b.report.model))) {
    try {
      published.push(await publishOne(o, e));
    } catch (error) {
      const message = errorMessage(error);
      logger.error(`${e.report.model}: publishing on ${o.forge.name} failed: ${message}`);
      failed.push({ model: e.report.model, error: message });
    }
  }

  const parts = wanted.map((e) => commentBody(e.report.model, e.markdown, o.artifactUrl));
  for (const f of failed) parts.push(`### \`${f.model}\`: not published\n\n\`\`\`\n${f.error}\n\`\`\`\n`);
  return { ok: failed.length === 0, published, failed, summary: parts.join('\n---\n\n') };
}
