// publishEvaluation through the real Octokit adapter against the GitHub stand-in (every request
// and response checked against GitHub's OpenAPI description), and through the local forge: one
// comment per model edited in place, one check run per model, nothing sent when nothing changed,
// and a bad report named by file without stopping the other models.

import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { evaluationMarker } from '../../pipeline/github/body.ts';
import { COMMENT_LIMIT, CHECK_OUTPUT_LIMIT, truncate, type Forge } from '../../pipeline/github/forge.ts';
import { createLocalForge, LOCAL_AUTHOR } from '../../pipeline/github/local.ts';
import { createOctokitForge } from '../../pipeline/github/octokit.ts';
import { checkRunName, commentBody, publishEvaluation } from '../../pipeline/github/publish.ts';
import { parsePullRequestMetadata, resolvePullRequest } from '../../pipeline/github/pull-request.ts';
import { DEFAULT_TOKEN, useGitHubStandIn, type GitHubStandIn } from '../support/github/index.ts';
import { RecordingLogger } from '../support/logger.ts';
import { evaluationReport, writeReport } from './publish-fixtures.ts';

const HEAD = '1111111111111111111111111111111111111111';
const HEAD2 = '2222222222222222222222222222222222222222';
const PERSON = { login: 'mona', id: 583231, type: 'User' } as const;

let dir: string;
let reports: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'publish-'));
  reports = join(dir, 'reports');
  await writeReport(reports, evaluationReport('skin-type', 'pass'), '## skin-type\n\nAccuracy 0.9000 (+0.0500)\n');
  await writeReport(reports, evaluationReport('context-correction', 'fail', 0.7));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const WRITES = ['issues/create-comment', 'issues/update-comment', 'checks/create', 'checks/update'];

describe('publishEvaluation on GitHub (Octokit against the stand-in)', () => {
  const gh = useGitHubStandIn();

  function forge(g: GitHubStandIn = gh()): Forge {
    return createOctokitForge({ token: DEFAULT_TOKEN, apiUrl: g.apiUrl, repository: 'skin-twin/skin-twin-mlops', octokit: { retry: { enabled: false }, throttle: { enabled: false } } });
  }
  const writes = () => Object.fromEntries(WRITES.map((op) => [op, gh().callCount(op)]));

  it('posts one comment and one check run per model, and a second run with the same reports sends no write', async () => {
    const pr = gh().state.seedIssue({ title: 'Tune the skin-type head' });
    const logger = new RecordingLogger();
    const first = await publishEvaluation({ forge: forge(), pr: pr.number, headSha: HEAD, reportsDir: reports, artifactUrl: 'https://github.com/o/r/actions/runs/9#artifacts', logger });
    expect(first.ok).toBe(true);
    expect(first.published.map((p) => [p.model, p.verdict, p.conclusion, p.comment.action, p.checkRun.action])).toEqual([
      ['context-correction', 'fail', 'failure', 'created', 'created'],
      ['skin-type', 'pass', 'success', 'created', 'created'],
    ]);
    const comments = gh().state.commentsOf(pr.number);
    expect(comments).toHaveLength(2);
    const skin = comments.find((c) => c.body.startsWith(evaluationMarker('skin-type')))!;
    expect(skin.user.login).toBe('github-actions[bot]');
    expect(skin.body).toContain('✅ pass');
    expect(skin.body).toContain('https://github.com/o/r/actions/runs/9#artifacts');
    // Rendered from evaluation.json, never taken from the evaluation.md the evaluated code wrote.
    expect(skin.body).not.toContain('Accuracy 0.9000 (+0.0500)');
    const context = comments.find((c) => c.body.startsWith(evaluationMarker('context-correction')))!;
    expect(context.body).toMatch(/\| accuracy \| 0\.7000 \| 0\.8500 \| .*-0\.1500 \|/);
    expect(context.body).toContain('❌ fail');
    const runs = [...gh().state.checkRuns.values()].map((r) => [r.name, r.head_sha, r.status, r.conclusion]);
    expect(runs.sort()).toEqual([
      ['evaluate / context-correction', HEAD, 'completed', 'failure'],
      ['evaluate / skin-type', HEAD, 'completed', 'success'],
    ]);

    const before = writes();
    const again = await publishEvaluation({ forge: forge(), pr: pr.number, headSha: HEAD, reportsDir: reports, artifactUrl: 'https://github.com/o/r/actions/runs/9#artifacts', logger });
    expect(again.published.map((p) => [p.comment.action, p.checkRun.action])).toEqual([
      ['unchanged', 'unchanged'],
      ['unchanged', 'unchanged'],
    ]);
    expect(writes()).toEqual(before);
    expect(gh().state.commentsOf(pr.number)).toHaveLength(2);
  });

  it('a new push edits the same comment in place and gets its own check runs', async () => {
    const pr = gh().state.seedIssue({ title: 'Tune the skin-type head' });
    const logger = new RecordingLogger();
    await publishEvaluation({ forge: forge(), pr: pr.number, headSha: HEAD, reportsDir: reports, logger });
    const ids = gh().state.commentsOf(pr.number).map((c) => c.id);

    await writeReport(reports, evaluationReport('context-correction', 'pass', 0.88));
    const second = await publishEvaluation({ forge: forge(), pr: pr.number, headSha: HEAD2, reportsDir: reports, logger });
    expect(second.published.map((p) => [p.model, p.comment.action, p.checkRun.action, p.conclusion])).toEqual([
      ['context-correction', 'updated', 'created', 'success'],
      ['skin-type', 'unchanged', 'created', 'success'],
    ]);
    const comments = gh().state.commentsOf(pr.number);
    expect(comments.map((c) => c.id)).toEqual(ids);
    expect(comments.find((c) => c.body.startsWith(evaluationMarker('context-correction')))!.body).toContain('✅ pass');
    expect([...gh().state.checkRuns.values()].filter((r) => r.head_sha === HEAD2)).toHaveLength(2);
    expect(gh().callCount('issues/create-comment')).toBe(2);
    expect(gh().callCount('issues/update-comment')).toBe(1);
  });

  it('re-running on the same head updates its check run instead of adding one', async () => {
    const pr = gh().state.seedIssue({ title: 't' });
    const logger = new RecordingLogger();
    await publishEvaluation({ forge: forge(), pr: pr.number, headSha: HEAD, reportsDir: reports, models: ['skin-type'], logger });
    await writeReport(reports, evaluationReport('skin-type', 'fail', 0.5), '## skin-type regressed\n');
    const result = await publishEvaluation({ forge: forge(), pr: pr.number, headSha: HEAD, reportsDir: reports, models: ['skin-type'], logger });
    expect(result.published[0]!.checkRun.action).toBe('updated');
    const runs = [...gh().state.checkRuns.values()];
    expect(runs.map((r) => [r.name, r.conclusion])).toEqual([[checkRunName('skin-type'), 'failure']]);
    expect(runs[0]!.output.summary).toContain('❌ fail');
    expect(runs[0]!.output.summary).toContain('0.5000');
  });

  it('finds its comment behind many pages of other comments, and never edits a person’s comment quoting the marker', async () => {
    const pr = gh().state.seedIssue({ title: 't' });
    const marker = evaluationMarker('skin-type');
    // A person pastes the marker at the start of a comment, and quotes it in another.
    const pasted = gh().state.seedComment(pr.number, `${marker}\nI think this is wrong`, PERSON);
    gh().state.seedComment(pr.number, `> ${marker}\n> old numbers`, PERSON);
    for (let i = 0; i < 120; i++) gh().state.seedComment(pr.number, `comment ${i}`, PERSON);
    const logger = new RecordingLogger();
    await publishEvaluation({ forge: forge(), pr: pr.number, headSha: HEAD, reportsDir: reports, models: ['skin-type'], logger });
    const own = gh().state.commentsOf(pr.number).filter((c) => c.user.login === 'github-actions[bot]');
    expect(own).toHaveLength(1);
    expect(gh().state.comments.get(pasted.id)!.body).toBe(`${marker}\nI think this is wrong`);

    await writeReport(reports, evaluationReport('skin-type', 'pass', 0.95), '## skin-type better\n');
    const listsBefore = gh().callCount('issues/list-comments');
    const result = await publishEvaluation({ forge: forge(), pr: pr.number, headSha: HEAD, reportsDir: reports, models: ['skin-type'], logger });
    expect(result.published[0]!.comment).toMatchObject({ id: own[0]!.id, action: 'updated' });
    // 123 comments at 100 a page: both pages were read.
    expect(gh().callCount('issues/list-comments') - listsBefore).toBe(2);
    expect(gh().state.commentsOf(pr.number).filter((c) => c.user.login === 'github-actions[bot]')).toHaveLength(1);
    expect(gh().state.comments.get(pasted.id)!.body).toBe(`${marker}\nI think this is wrong`);
  });

  it('names a missing or invalid evaluation.json, posts nothing for that model and still posts the others', async () => {
    const pr = gh().state.seedIssue({ title: 't' });
    await writeFile(join(reports, 'context-correction', 'evaluation.json'), '{"format": "skintwin-evaluation", "version": 1, "model": "context-correction", "verdict": "maybe"');
    await writeReport(join(dir, 'other'), evaluationReport('x', 'pass'));
    const logger = new RecordingLogger();
    const broken = await publishEvaluation({ forge: forge(), pr: pr.number, headSha: HEAD, reportsDir: reports, models: ['skin-type', 'context-correction', 'detector'], logger });
    expect(broken.ok).toBe(false);
    expect(broken.published.map((p) => p.model)).toEqual(['skin-type']);
    expect(broken.failed.map((f) => [f.model, f.file])).toEqual([
      ['context-correction', join(reports, 'context-correction', 'evaluation.json')],
      ['detector', join(reports, 'detector', 'evaluation.json')],
    ]);
    expect(broken.failed[0]!.error).toMatch(/not valid JSON/);
    expect(broken.failed[1]!.error).toMatch(/missing/);
    expect(logger.messages('error').join('\n')).toMatch(/context-correction: nothing posted: .*evaluation\.json: not valid JSON/);
    expect(gh().state.commentsOf(pr.number)).toHaveLength(1);
    expect(gh().state.checkRuns.size).toBe(1);
    expect(broken.summary).toContain('`detector`: not published');

    await writeFile(join(reports, 'context-correction', 'evaluation.json'), JSON.stringify({ ...evaluationReport('skin-type', 'pass'), verdict: 'maybe', gates: 'none' }));
    const invalid = await publishEvaluation({ forge: forge(), pr: pr.number, headSha: HEAD, reportsDir: reports, logger });
    const error = invalid.failed.find((f) => f.model === 'context-correction')!.error;
    expect(error).toMatch(/\/model is "skin-type" but the report is in the folder of "context-correction"/);
    expect(error).toMatch(/\/verdict must be equal to one of the allowed values/);
    expect(error).toMatch(/\/gates must be array/);
  });

  it('keeps a huge report within GitHub’s comment and check-run limits', async () => {
    const pr = gh().state.seedIssue({ title: 't' });
    await writeReport(reports, evaluationReport('skin-type', 'pass', 0.9, 400));
    const result = await publishEvaluation({ forge: forge(), pr: pr.number, headSha: HEAD, reportsDir: reports, models: ['skin-type'], artifactUrl: 'https://x/a', logger: new RecordingLogger() });
    expect(result.ok).toBe(true);
    const body = gh().state.commentsOf(pr.number)[0]!.body;
    expect(body.length).toBeLessThanOrEqual(COMMENT_LIMIT);
    expect(body.length).toBeGreaterThan(20_000);
    const summary = [...gh().state.checkRuns.values()][0]!.output.summary!;
    expect(summary.length).toBeLessThanOrEqual(CHECK_OUTPUT_LIMIT);
  });

  it('a token that may not write reports the failure per model', async () => {
    const pr = gh().state.seedIssue({ title: 't' });
    gh().setPermissions(DEFAULT_TOKEN, { issues: 'read', checks: 'write' });
    const result = await publishEvaluation({ forge: forge(), pr: pr.number, headSha: HEAD, reportsDir: reports, logger: new RecordingLogger() });
    expect(result.ok).toBe(false);
    expect(result.failed.map((f) => f.model)).toEqual(['context-correction', 'skin-type']);
    expect(result.failed[0]!.error).toMatch(/Resource not accessible by integration/);
  });

  it('removes a label, and says so when it was not there', async () => {
    const pr = gh().state.seedIssue({ title: 't', labels: ['safe-to-evaluate', 'models'] });
    expect(await forge().removeLabel(pr.number, 'safe-to-evaluate')).toBe(true);
    expect(gh().state.issues.get(pr.number)!.labels).toEqual(['models']);
    expect(await forge().removeLabel(pr.number, 'safe-to-evaluate')).toBe(false);
  });
});

describe('publishEvaluation on the local forge', () => {
  it('writes one comment per model under .skintwin/forge, edited in place, with its body as markdown', async () => {
    const forge = createLocalForge({ root: dir });
    const logger = new RecordingLogger();
    await publishEvaluation({ forge, pr: 1, headSha: HEAD, reportsDir: reports, logger });
    await writeReport(reports, evaluationReport('skin-type', 'fail', 0.6), '## skin-type worse\n');
    const second = await publishEvaluation({ forge, pr: 1, headSha: HEAD, reportsDir: reports, logger });
    expect(second.published.map((p) => [p.model, p.comment.action, p.checkRun.action])).toEqual([
      ['context-correction', 'unchanged', 'unchanged'],
      ['skin-type', 'updated', 'updated'],
    ]);
    const mds = (await readdir(join(dir, '.skintwin/forge/issues/1'))).filter((f) => f.endsWith('.md'));
    expect(mds).toHaveLength(2);
    const bodies = await Promise.all(mds.map((f) => readFile(join(dir, '.skintwin/forge/issues/1', f), 'utf8')));
    expect(bodies.find((b) => b.startsWith(evaluationMarker('skin-type')))).toContain('❌ fail');
    expect(await readdir(join(dir, '.skintwin/forge/check-runs'))).toHaveLength(2);
    const comments = [];
    for await (const c of forge.comments(1)) comments.push(c);
    expect(comments.map((c) => c.author)).toEqual([LOCAL_AUTHOR, LOCAL_AUTHOR]);
  });
});

describe('the comment body', () => {
  it('is cut to a limit with a note saying where the rest is', () => {
    const cut = truncate('x'.repeat(100), 60, '_cut: see the artifacts_');
    expect(cut).toHaveLength(60);
    expect(cut.endsWith('_cut: see the artifacts_\n')).toBe(true);
    expect(truncate('short', 60, 'note')).toBe('short');
  });

  it('starts with the model’s marker exactly once and links the artifacts', () => {
    const marker = evaluationMarker('skin-type');
    const body = commentBody(evaluationReport('skin-type', 'pass'), 'https://x/runs/1#artifacts');
    expect(body.startsWith(`${marker}\n`)).toBe(true);
    expect(body.split('<!-- skintwin:evaluation')).toHaveLength(2);
    expect(body).toContain('(https://x/runs/1#artifacts)');
  });
});

describe('which pull request a workflow_run publishes on', () => {
  const run = (over: Record<string, unknown> = {}) => ({ workflow_run: { event: 'pull_request', head_sha: HEAD, pull_requests: [{ number: 7 }], ...over } });
  const meta = (pr: number, headSha = HEAD) => parsePullRequestMetadata(JSON.stringify({ format: 'skintwin-pr-evaluation', version: 1, pr, headSha }), 'pull-request.json');

  it('accepts pull-request.json that names the run’s head and one of its pull requests', async () => {
    const forge = createLocalForge({ root: dir });
    expect(await resolvePullRequest({ eventName: 'workflow_run', event: run(), metadata: meta(7), forge })).toMatchObject({ pr: 7, headSha: HEAD });
  });

  it('refuses another head, another pull request, or a run that was not a pull request', async () => {
    const forge = createLocalForge({ root: dir });
    await expect(resolvePullRequest({ eventName: 'workflow_run', event: run(), metadata: meta(7, HEAD2), forge })).rejects.toThrow(/names commit 2{40}, but the run evaluated 1{40}/);
    await expect(resolvePullRequest({ eventName: 'workflow_run', event: run(), metadata: meta(8), forge })).rejects.toThrow(/names #8, but the run belongs to #7/);
    await expect(resolvePullRequest({ eventName: 'workflow_run', event: run({ event: 'push' }), metadata: meta(7), forge })).rejects.toThrow(/not a pull_request/);
    await expect(resolvePullRequest({ eventName: 'workflow_run', event: run(), forge })).rejects.toThrow(/pull-request\.json: missing/);
    expect(() => parsePullRequestMetadata('{"format":"skintwin-pr-evaluation","version":1,"pr":"7; rm -rf /","headSha":"x"}', 'pull-request.json')).toThrow(
      /pull-request\.json: `pr` must be a positive integer; `headSha` must be a 40-hex commit sha/,
    );
  });

  it('for a fork (GitHub lists no pull request on the run) requires the forge to confirm the head', async () => {
    const forge = createLocalForge({ root: dir });
    await expect(resolvePullRequest({ eventName: 'workflow_run', event: run({ pull_requests: [] }), metadata: meta(9), forge })).rejects.toThrow(/names #9, whose head is unknown/);
    await mkdir(join(dir, '.skintwin/forge/issues/9'), { recursive: true });
    await writeFile(join(dir, '.skintwin/forge/issues/9/pull-request.json'), JSON.stringify({ headSha: HEAD2 }));
    await expect(resolvePullRequest({ eventName: 'workflow_run', event: run({ pull_requests: [] }), metadata: meta(9), forge })).rejects.toThrow(/whose head is 2{40}/);
    await writeFile(join(dir, '.skintwin/forge/issues/9/pull-request.json'), JSON.stringify({ headSha: HEAD }));
    expect(await resolvePullRequest({ eventName: 'workflow_run', event: run({ pull_requests: [] }), metadata: meta(9), forge })).toMatchObject({ pr: 9, headSha: HEAD });
  });

  it('outside pull_request and workflow_run needs both values, and says which are missing', async () => {
    const forge = createLocalForge({ root: dir });
    await expect(resolvePullRequest({ eventName: 'push', event: {}, forge })).rejects.toThrow(/2 problems:[\s\S]*pull request number[\s\S]*head commit sha/);
    expect(await resolvePullRequest({ eventName: 'pull_request', event: { pull_request: { number: 3, head: { sha: HEAD } } }, forge })).toMatchObject({ pr: 3, headSha: HEAD });
  });
});
