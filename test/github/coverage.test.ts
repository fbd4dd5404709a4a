// Operation coverage of the GitHub stand-in: every operation it implements is one GitHub
// describes, and one tour through the real client exercises each of them with no violation.

import { describe, expect, it } from 'vitest';
import { getOctokit } from '@actions/github';
import { DEFAULT_TOKEN, OpenApiContract, assertOnlyImplementedOperations, assertStandInClean, startGitHubStandIn } from '../support/github/index.ts';

describe('operation coverage', () => {
  it('implements only operations from GitHub’s description', async () => {
    const gh = await startGitHubStandIn();
    try {
      const contract = OpenApiContract.load();
      for (const id of gh.implementedOperations()) expect(() => contract.operation(id), id).not.toThrow();
      expect(gh.implementedOperations().length).toBeGreaterThanOrEqual(40);
    } finally {
      await gh.close();
    }
  });

  it('exercises every implemented operation through the real client', async () => {
    const gh = await startGitHubStandIn();
    try {
      const octokit = getOctokit(DEFAULT_TOKEN, { baseUrl: gh.apiUrl });
      const repo = { owner: gh.state.owner, repo: gh.state.repo };
      const sha = gh.state.resolveRef('main')!;

      const { data: rel } = await octokit.rest.repos.createRelease({ ...repo, tag_name: 'model@v1.0.0', draft: true });
      const { data: asset } = await octokit.rest.repos.uploadReleaseAsset({ ...repo, release_id: rel.id, name: 'model.onnx', data: 'bytes', url: rel.upload_url });
      await octokit.rest.repos.listReleaseAssets({ ...repo, release_id: rel.id });
      await octokit.rest.repos.getReleaseAsset({ ...repo, asset_id: asset.id });
      await octokit.rest.repos.updateReleaseAsset({ ...repo, asset_id: asset.id, label: 'ONNX model' });
      await octokit.rest.repos.updateRelease({ ...repo, release_id: rel.id, draft: false });
      await octokit.rest.repos.getRelease({ ...repo, release_id: rel.id });
      await octokit.rest.repos.getReleaseByTag({ ...repo, tag: 'model@v1.0.0' });
      await octokit.rest.repos.getLatestRelease(repo);
      await octokit.rest.repos.listReleases(repo);
      await octokit.rest.repos.deleteReleaseAsset({ ...repo, asset_id: asset.id });
      await octokit.rest.repos.deleteRelease({ ...repo, release_id: rel.id });

      const { data: issue } = await octokit.rest.issues.create({ ...repo, title: 'Drift', labels: ['drift'] });
      await octokit.rest.issues.get({ ...repo, issue_number: issue.number });
      await octokit.rest.issues.listForRepo({ ...repo, labels: 'drift' });
      const { data: comment } = await octokit.rest.issues.createComment({ ...repo, issue_number: issue.number, body: 'hello' });
      await octokit.rest.issues.listComments({ ...repo, issue_number: issue.number });
      await octokit.rest.issues.getComment({ ...repo, comment_id: comment.id });
      await octokit.rest.issues.updateComment({ ...repo, comment_id: comment.id, body: 'edited' });
      await octokit.rest.issues.deleteComment({ ...repo, comment_id: comment.id });
      await octokit.rest.issues.createLabel({ ...repo, name: 'model:skin-type', color: '0e8a16' });
      await octokit.rest.issues.listLabelsForRepo(repo);
      await octokit.rest.issues.getLabel({ ...repo, name: 'model:skin-type' });
      await octokit.rest.issues.updateLabel({ ...repo, name: 'model:skin-type', description: 'skin-type model' });
      await octokit.rest.issues.addLabels({ ...repo, issue_number: issue.number, labels: ['model:skin-type'] });
      await octokit.rest.issues.listLabelsOnIssue({ ...repo, issue_number: issue.number });
      await octokit.rest.issues.removeLabel({ ...repo, issue_number: issue.number, name: 'model:skin-type' });
      await octokit.rest.issues.deleteLabel({ ...repo, name: 'model:skin-type' });
      await octokit.rest.issues.update({ ...repo, issue_number: issue.number, state: 'closed', state_reason: 'completed' });

      await octokit.rest.repos.createOrUpdateFileContents({ ...repo, path: 'models/registry.yaml', message: 'm', content: Buffer.from('a').toString('base64') });
      await octokit.rest.repos.getContent({ ...repo, path: 'models/registry.yaml' });

      const { data: run } = await octokit.rest.checks.create({ ...repo, name: 'evaluate', head_sha: sha });
      await octokit.rest.checks.update({ ...repo, check_run_id: run.id, conclusion: 'neutral' });
      await octokit.rest.checks.get({ ...repo, check_run_id: run.id });
      await octokit.rest.checks.listForRef({ ...repo, ref: 'main' });
      await octokit.rest.repos.createCommitStatus({ ...repo, sha, state: 'success' });
      await octokit.rest.repos.listCommitStatusesForRef({ ...repo, ref: sha });
      await octokit.rest.repos.getCombinedStatusForRef({ ...repo, ref: 'main' });

      await octokit.rest.repos.createDispatchEvent({ ...repo, event_type: 'retrain' });
      await octokit.rest.actions.createWorkflowDispatch({ ...repo, workflow_id: 'drift.yml', ref: 'main' });

      const missed = gh.implementedOperations().filter((op) => !gh.calledOperations().includes(op));
      expect(missed, 'implemented operations no test exercises').toEqual([]);
      assertOnlyImplementedOperations(gh);
      assertStandInClean(gh);
    } finally {
      await gh.close();
    }
  });
});
