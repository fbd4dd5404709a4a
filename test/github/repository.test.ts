// Contents, issues, comments, labels, check runs, statuses and dispatches through the real
// Octokit clients against the GitHub stand-in.

import { describe, expect, it } from 'vitest';
import { getOctokit } from '@actions/github';
import { DEFAULT_TOKEN, useGitHubStandIn } from '../support/github/index.ts';
import { plainOctokit, requestFailure } from '../support/github/clients.ts';

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('repository contents', () => {
  const gh = useGitHubStandIn();
  const repo = () => ({ owner: gh().state.owner, repo: gh().state.repo });

  it('creates a file and reads it back as base64 with its git blob sha', async () => {
    const octokit = plainOctokit(gh().apiUrl);
    const created = await octokit.rest.repos.createOrUpdateFileContents({ ...repo(), path: 'test.txt', message: 'create', content: b64('Test content') });
    expect(created.status).toBe(201);
    // The blob sha api.github.com returned for these bytes in @octokit/fixtures' create-file recording.
    expect(created.data.content?.sha).toBe('3f3f005b29247e51a4f4d6b8ce07b67646cd6074');
    const { data } = await octokit.rest.repos.getContent({ ...repo(), path: 'test.txt' });
    if (Array.isArray(data) || data.type !== 'file') throw new Error('expected a file');
    expect(data.encoding).toBe('base64');
    expect(Buffer.from(data.content, 'base64').toString()).toBe('Test content');
    expect(data.sha).toBe('3f3f005b29247e51a4f4d6b8ce07b67646cd6074');
    const raw = await octokit.rest.repos.getContent({ ...repo(), path: 'test.txt', mediaType: { format: 'raw' } });
    expect(String(raw.data)).toBe('Test content');
  });

  it('needs the current sha to update: 422 without it, 409 when stale', async () => {
    const octokit = plainOctokit(gh().apiUrl);
    gh().state.writeFiles({ 'models/registry.yaml': 'models: {}\n' });
    const path = 'models/registry.yaml';
    const { data: current } = await octokit.rest.repos.getContent({ ...repo(), path });
    const sha = (current as { sha: string }).sha;

    const missing = await requestFailure(octokit.rest.repos.createOrUpdateFileContents({ ...repo(), path, message: 'm', content: b64('a') }));
    expect(missing.status).toBe(422);
    expect(missing.data.message).toContain('"sha" wasn\'t supplied');

    const updated = await octokit.rest.repos.createOrUpdateFileContents({ ...repo(), path, message: 'register v1', content: b64('models: {a: 1}\n'), sha });
    expect(updated.status).toBe(200);
    expect(updated.data.commit.message).toBe('register v1');
    // A concurrent writer still holding the old sha loses.
    const stale = await requestFailure(octokit.rest.repos.createOrUpdateFileContents({ ...repo(), path, message: 'm', content: b64('b'), sha }));
    expect(stale.status).toBe(409);
    expect(gh().state.readFile(path)?.toString()).toBe('models: {a: 1}\n');
  });

  it('lists directories, reads other branches and answers 404 for missing paths', async () => {
    const octokit = plainOctokit(gh().apiUrl);
    gh().state.writeFiles({ 'README.md': '# hi', 'models/a.yaml': 'a', 'models/deep/b.yaml': 'b' });
    gh().state.createBranch('feature');
    gh().state.writeFiles({ 'models/a.yaml': 'changed' }, { branch: 'feature' });
    const { data: root } = await octokit.rest.repos.getContent({ ...repo(), path: '' });
    expect((root as { name: string; type: string }[]).map((e) => `${e.type}:${e.name}`)).toEqual(['file:README.md', 'dir:models']);
    const { data: onFeature } = await octokit.rest.repos.getContent({ ...repo(), path: 'models/a.yaml', ref: 'feature' });
    expect(Buffer.from((onFeature as { content: string }).content, 'base64').toString()).toBe('changed');
    expect((await requestFailure(octokit.rest.repos.getContent({ ...repo(), path: 'nope.txt' }))).status).toBe(404);
  });
});

describe('issues, comments and labels', () => {
  const gh = useGitHubStandIn();
  const repo = () => ({ owner: gh().state.owner, repo: gh().state.repo });

  it('opens a labelled issue, filters by label and state, and closes it with a reason', async () => {
    const octokit = plainOctokit(gh().apiUrl);
    const { data: drift } = await octokit.rest.issues.create({ ...repo(), title: 'Drift: skin-type', body: 'PSI 0.31', labels: ['drift', 'model:skin-type'] });
    await octokit.rest.issues.create({ ...repo(), title: 'Other', labels: ['bug'] });
    expect(drift.labels.map((l) => (typeof l === 'string' ? l : l.name))).toEqual(['drift', 'model:skin-type']);

    const { data: open } = await octokit.rest.issues.listForRepo({ ...repo(), labels: 'drift,model:skin-type', state: 'open' });
    expect(open.map((i) => i.number)).toEqual([drift.number]);

    const { data: closed } = await octokit.rest.issues.update({ ...repo(), issue_number: drift.number, state: 'closed', state_reason: 'completed' });
    expect([closed.state, closed.state_reason]).toEqual(['closed', 'completed']);
    expect(closed.closed_by?.login).toBe('github-actions[bot]');
    expect((await octokit.rest.issues.listForRepo({ ...repo(), labels: 'drift' })).data).toEqual([]);
    expect((await octokit.rest.issues.listForRepo({ ...repo(), labels: 'drift', state: 'closed' })).data.map((i) => i.number)).toEqual([drift.number]);

    const { data: reopened } = await octokit.rest.issues.update({ ...repo(), issue_number: drift.number, state: 'open' });
    expect([reopened.state, reopened.state_reason, reopened.closed_at]).toEqual(['open', 'reopened', null]);
    expect((await octokit.rest.issues.get({ ...repo(), issue_number: drift.number })).data.title).toBe('Drift: skin-type');
  });

  it('finds a comment by its hidden marker and edits it in place (getOctokit)', async () => {
    const octokit = getOctokit(DEFAULT_TOKEN, { baseUrl: gh().apiUrl });
    const pr = gh().state.seedIssue({ title: 'Add augmentation' });
    gh().state.seedComment(pr.number, 'LGTM');
    const marker = '<!-- skin-twin:eval:skin-type -->';
    const upsert = async (body: string) => {
      const comments = await octokit.paginate(octokit.rest.issues.listComments, { ...repo(), issue_number: pr.number, per_page: 100 });
      const mine = comments.find((c) => c.body?.includes(marker));
      if (mine) return (await octokit.rest.issues.updateComment({ ...repo(), comment_id: mine.id, body })).data;
      return (await octokit.rest.issues.createComment({ ...repo(), issue_number: pr.number, body })).data;
    };
    const first = await upsert(`${marker}\naccuracy 0.81`);
    const second = await upsert(`${marker}\naccuracy 0.84`);
    expect(second.id).toBe(first.id);
    expect(gh().state.commentsOf(pr.number).map((c) => c.body)).toEqual(['LGTM', `${marker}\naccuracy 0.84`]);
    expect((await octokit.rest.issues.getComment({ ...repo(), comment_id: first.id })).data.body).toContain('0.84');
    await octokit.rest.issues.deleteComment({ ...repo(), comment_id: first.id });
    expect(gh().state.commentsOf(pr.number)).toHaveLength(1);
  });

  it('creates labels, rejects bad or duplicate ones, and adds/removes them on issues', async () => {
    const octokit = plainOctokit(gh().apiUrl);
    const { data: label } = await octokit.rest.issues.createLabel({ ...repo(), name: 'drift', color: 'd73a4a', description: 'Data drift' });
    expect(label.color).toBe('d73a4a');
    const bad = await requestFailure(octokit.rest.issues.createLabel({ ...repo(), name: 'x', color: 'red' }));
    expect(bad.data.errors).toEqual([{ resource: 'Label', code: 'invalid', field: 'color' }]);
    const dup = await requestFailure(octokit.rest.issues.createLabel({ ...repo(), name: 'DRIFT', color: 'ffffff' }));
    expect(dup.data.errors).toEqual([{ resource: 'Label', code: 'already_exists', field: 'name' }]);

    const issue = gh().state.seedIssue({ title: 't' });
    const { data: added } = await octokit.rest.issues.addLabels({ ...repo(), issue_number: issue.number, labels: ['drift', 'new-one'] });
    expect(added.map((l) => l.name)).toEqual(['drift', 'new-one']);
    expect((await octokit.rest.issues.listLabelsForRepo(repo())).data.map((l) => l.name)).toEqual(['drift', 'new-one']);
    const { data: left } = await octokit.rest.issues.removeLabel({ ...repo(), issue_number: issue.number, name: 'new-one' });
    expect(left.map((l) => l.name)).toEqual(['drift']);
    expect((await requestFailure(octokit.rest.issues.removeLabel({ ...repo(), issue_number: issue.number, name: 'new-one' }))).status).toBe(404);
    expect((await octokit.rest.issues.listLabelsOnIssue({ ...repo(), issue_number: issue.number })).data.map((l) => l.name)).toEqual(['drift']);

    await octokit.rest.issues.updateLabel({ ...repo(), name: 'drift', new_name: 'data-drift', color: '00ff00' });
    expect((await octokit.rest.issues.getLabel({ ...repo(), name: 'data-drift' })).data.color).toBe('00ff00');
    expect(gh().state.issues.get(issue.number)?.labels).toEqual(['data-drift']);
    await octokit.rest.issues.deleteLabel({ ...repo(), name: 'data-drift' });
    expect(gh().state.issues.get(issue.number)?.labels).toEqual([]);
  });

  it('paginates with Link headers that octokit.paginate follows', async () => {
    const octokit = plainOctokit(gh().apiUrl);
    for (let n = 1; n <= 7; n++) gh().state.seedIssue({ title: `issue ${n}` });
    const first = await octokit.rest.issues.listForRepo({ ...repo(), per_page: 3 });
    expect(first.headers.link).toMatch(/<[^>]*page=2[^>]*>; rel="next"/);
    expect(first.headers.link).toMatch(/<[^>]*page=3[^>]*>; rel="last"/);
    const all = await octokit.paginate(octokit.rest.issues.listForRepo, { ...repo(), per_page: 3 });
    expect(all.map((i) => i.number)).toEqual([7, 6, 5, 4, 3, 2, 1]);
    expect(gh().callCount('issues/list-for-repo')).toBe(4);
  });
});

describe('checks, statuses and dispatches', () => {
  const gh = useGitHubStandIn();
  const repo = () => ({ owner: gh().state.owner, repo: gh().state.repo });
  const sha = 'c0ffee'.padEnd(40, '0');

  it('creates, completes and lists check runs for a ref', async () => {
    const octokit = plainOctokit(gh().apiUrl);
    const { data: run } = await octokit.rest.checks.create({ ...repo(), name: 'evaluate skin-type', head_sha: sha, status: 'in_progress' });
    expect([run.status, run.conclusion]).toEqual(['in_progress', null]);
    const { data: done } = await octokit.rest.checks.update({
      ...repo(),
      check_run_id: run.id,
      conclusion: 'failure',
      output: { title: 'Gate failed', summary: 'accuracy 0.71 < 0.80' },
    });
    expect([done.status, done.conclusion, done.output.title]).toEqual(['completed', 'failure', 'Gate failed']);
    await octokit.rest.checks.create({ ...repo(), name: 'evaluate skin-type', head_sha: sha, conclusion: 'success' });
    const { data: latest } = await octokit.rest.checks.listForRef({ ...repo(), ref: sha });
    expect(latest.check_runs.map((c) => c.conclusion)).toEqual(['success']);
    const { data: all } = await octokit.rest.checks.listForRef({ ...repo(), ref: sha, filter: 'all' });
    expect(all.total_count).toBe(2);
    expect((await octokit.rest.checks.get({ ...repo(), check_run_id: run.id })).data.output.summary).toContain('0.71');
  });

  it('records commit statuses and combines the latest per context', async () => {
    const octokit = plainOctokit(gh().apiUrl);
    await octokit.rest.repos.createCommitStatus({ ...repo(), sha, state: 'pending', context: 'skin-twin/eval' });
    await octokit.rest.repos.createCommitStatus({ ...repo(), sha, state: 'success', context: 'skin-twin/eval', target_url: 'http://127.0.0.1/run' });
    await octokit.rest.repos.createCommitStatus({ ...repo(), sha, state: 'success', context: 'skin-twin/lint' });
    expect((await octokit.rest.repos.listCommitStatusesForRef({ ...repo(), ref: sha })).data).toHaveLength(3);
    const { data: combined } = await octokit.rest.repos.getCombinedStatusForRef({ ...repo(), ref: sha });
    expect([combined.state, combined.total_count]).toEqual(['success', 2]);
    await octokit.rest.repos.createCommitStatus({ ...repo(), sha, state: 'failure', context: 'skin-twin/lint' });
    expect((await octokit.rest.repos.getCombinedStatusForRef({ ...repo(), ref: sha })).data.state).toBe('failure');
  });

  it('records repository_dispatch and workflow_dispatch, which run even from GITHUB_TOKEN', async () => {
    const octokit = plainOctokit(gh().apiUrl);
    await octokit.rest.repos.createDispatchEvent({ ...repo(), event_type: 'promote', client_payload: { model: 'skin-type', version: '1.0.0' } });
    await octokit.rest.actions.createWorkflowDispatch({ ...repo(), workflow_id: 'retrain.yml', ref: 'main', inputs: { force: 'true' } });
    expect(gh().state.dispatches).toEqual([{ event_type: 'promote', client_payload: { model: 'skin-type', version: '1.0.0' }, token: DEFAULT_TOKEN }]);
    expect(gh().state.workflowDispatches).toEqual([{ workflow_id: 'retrain.yml', ref: 'main', inputs: { force: 'true' }, token: DEFAULT_TOKEN }]);
    expect(gh().state.triggeredWorkflows.map((w) => w.event)).toEqual(['repository_dispatch', 'workflow_dispatch']);
    const bad = await requestFailure(octokit.rest.actions.createWorkflowDispatch({ ...repo(), workflow_id: 'retrain.yml', ref: 'no-such-branch' }));
    expect(bad.status).toBe(422);
  });
});
