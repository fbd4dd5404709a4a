// Releases and release assets through the real Octokit against the GitHub stand-in: the
// draft → upload → verify → publish flow, conflicts, downloads across origins, workflow triggers.

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { getOctokit } from '@actions/github';
import { DEFAULT_TOKEN, useGitHubStandIn } from '../support/github/index.ts';
import { plainOctokit, requestFailure } from '../support/github/clients.ts';

const PAT = 'ghp_maintainer';

describe('releases and assets', () => {
  const gh = useGitHubStandIn({ tokens: { [DEFAULT_TOKEN]: { kind: 'github-actions' }, [PAT]: { kind: 'user', login: 'maintainer' } } });
  const repo = () => ({ owner: gh().state.owner, repo: gh().state.repo });

  it('creates a draft, uploads assets with sha256 digests, and publishes it', async () => {
    const octokit = plainOctokit(gh().apiUrl);
    const { data: draft } = await octokit.rest.repos.createRelease({ ...repo(), tag_name: 'skin-type@v1.0.0', name: 'skin-type 1.0.0', draft: true });
    expect(draft.draft).toBe(true);
    expect(draft.upload_url.startsWith(gh().uploadsUrl)).toBe(true);
    // Drafts have no tag yet: not found by tag until published.
    expect((await requestFailure(octokit.rest.repos.getReleaseByTag({ ...repo(), tag: 'skin-type@v1.0.0' }))).status).toBe(404);

    const model = Buffer.from('onnx-bytes-\u0000\u0001\u0002');
    const card = Buffer.from(JSON.stringify({ classes: ['Dry', 'Normal', 'Oily'] }));
    for (const [name, bytes] of [['model.onnx', model], ['model-card.json', card]] as const) {
      const { data: asset } = await octokit.rest.repos.uploadReleaseAsset({
        ...repo(),
        release_id: draft.id,
        name,
        data: bytes as unknown as string,
        url: draft.upload_url,
        headers: { 'content-type': 'application/octet-stream' },
      });
      expect(asset.digest).toBe(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
      expect(asset.size).toBe(bytes.length);
    }
    const { data: listed } = await octokit.rest.repos.listReleaseAssets({ ...repo(), release_id: draft.id });
    expect(listed.map((a) => a.name)).toEqual(['model.onnx', 'model-card.json']);

    const { data: published } = await octokit.rest.repos.updateRelease({ ...repo(), release_id: draft.id, draft: false });
    expect(published.draft).toBe(false);
    expect(published.published_at).not.toBeNull();
    const { data: byTag } = await octokit.rest.repos.getReleaseByTag({ ...repo(), tag: 'skin-type@v1.0.0' });
    expect(byTag.id).toBe(draft.id);
    expect(byTag.assets).toHaveLength(2);
    expect(gh().state.tags.has('skin-type@v1.0.0')).toBe(true);
    // Made with the workflow's GITHUB_TOKEN: GitHub starts no workflow for it.
    expect(gh().state.triggeredWorkflows).toEqual([]);
    expect(gh().calledOperations()).toEqual(
      ['repos/create-release', 'repos/get-release-by-tag', 'repos/list-release-assets', 'repos/update-release', 'repos/upload-release-asset'].sort(),
    );
  });

  it('starts release and tag workflows when a person (not GITHUB_TOKEN) publishes', async () => {
    const octokit = plainOctokit(gh().apiUrl, PAT);
    const { data: rel } = await octokit.rest.repos.createRelease({ ...repo(), tag_name: 'v2.0.0', draft: true });
    expect(gh().state.triggeredWorkflows).toEqual([]);
    await octokit.rest.repos.updateRelease({ ...repo(), release_id: rel.id, draft: false });
    expect(gh().state.triggeredWorkflows.map((w) => `${w.event}:${w.action ?? w.ref}`)).toEqual(['push:refs/tags/v2.0.0', 'release:published']);
    expect(rel.author.login).toBe('maintainer');
  });

  it('answers 422 already_exists for a duplicate tag and a duplicate asset name', async () => {
    const octokit = plainOctokit(gh().apiUrl);
    const { data: rel } = await octokit.rest.repos.createRelease({ ...repo(), tag_name: 'v1' });
    const dupTag = await requestFailure(octokit.rest.repos.createRelease({ ...repo(), tag_name: 'v1' }));
    expect(dupTag.status).toBe(422);
    expect(dupTag.data.errors).toEqual([{ resource: 'Release', code: 'already_exists', field: 'tag_name' }]);

    const upload = () =>
      octokit.rest.repos.uploadReleaseAsset({ ...repo(), release_id: rel.id, name: 'a.bin', data: 'x', baseUrl: gh().uploadsUrl });
    await upload();
    const dupAsset = await requestFailure(upload());
    expect(dupAsset.status).toBe(422);
    expect(dupAsset.data.errors).toEqual([{ resource: 'ReleaseAsset', code: 'already_exists', field: 'name' }]);
    expect(gh().state.assetsOf(rel.id)).toHaveLength(1);
  });

  it('downloads an asset through a 302 to the objects origin without forwarding the token', async () => {
    const octokit = plainOctokit(gh().apiUrl);
    const rel = gh().state.seedRelease({ tag_name: 'v3' });
    const bytes = Buffer.from('weights');
    const seeded = gh().state.seedAsset(rel.id, 'model.onnx', bytes);
    const res = await octokit.rest.repos.getReleaseAsset({ ...repo(), asset_id: seeded.id, headers: { accept: 'application/octet-stream' } });
    expect(Buffer.from(res.data as unknown as ArrayBuffer)).toEqual(bytes);
    const hit = gh().requests.find((r) => r.origin === 'objects');
    expect(hit?.status).toBe(200);
    expect(hit?.headers.authorization).toBeUndefined();
    expect(gh().requests.find((r) => r.operationId === 'repos/get-release-asset')?.status).toBe(302);

    // The browser URL redirects the same way, no token needed.
    const { data: meta } = await octokit.rest.repos.getReleaseAsset({ ...repo(), asset_id: seeded.id });
    const viaBrowser = await fetch(meta.browser_download_url);
    expect(Buffer.from(await viaBrowser.arrayBuffer())).toEqual(bytes);
    expect(gh().state.assets.get(seeded.id)?.download_count).toBe(2);

    // @actions/github's client fetches through undici's own fetch: it must drop the token too.
    const actions = getOctokit(DEFAULT_TOKEN, { baseUrl: gh().apiUrl });
    const again = await actions.rest.repos.getReleaseAsset({ ...repo(), asset_id: seeded.id, headers: { accept: 'application/octet-stream' } });
    expect(Buffer.from(again.data as unknown as ArrayBuffer)).toEqual(bytes);
    expect(gh().requests.filter((r) => r.origin === 'objects').map((r) => [r.status, r.headers.authorization])).toEqual([
      [200, undefined],
      [200, undefined],
      [200, undefined],
    ]);
  });

  it('refuses a client that forwards Authorization to the objects origin', async () => {
    const rel = gh().state.seedRelease({ tag_name: 'v4' });
    const asset = gh().state.seedAsset(rel.id, 'm.onnx', 'x');
    const first = await fetch(`${gh().apiUrl}/repos/${repo().owner}/${repo().repo}/releases/assets/${asset.id}`, {
      headers: { authorization: `token ${DEFAULT_TOKEN}`, accept: 'application/octet-stream' },
      redirect: 'manual',
    });
    expect(first.status).toBe(302);
    const location = first.headers.get('location')!;
    expect(new URL(location).origin).toBe(gh().objectsUrl);
    const second = await fetch(location, { headers: { authorization: `token ${DEFAULT_TOKEN}` } });
    expect(second.status).toBe(400);
    expect(gh().takeViolations()).toEqual([expect.stringContaining('Authorization header forwarded to the objects origin')]);
  });

  it('lists, updates and deletes releases and assets (getOctokit from @actions/github)', async () => {
    const octokit = getOctokit(DEFAULT_TOKEN, { baseUrl: gh().apiUrl });
    const older = gh().state.seedRelease({ tag_name: 'v0.9.0', published_at: '2026-01-01T00:00:00Z' });
    const { data: rel } = await octokit.rest.repos.createRelease({ ...repo(), tag_name: 'v1.0.0', body: 'notes' });
    const { data: latest } = await octokit.rest.repos.getLatestRelease(repo());
    expect(latest.tag_name).toBe('v1.0.0');
    const { data: all } = await octokit.rest.repos.listReleases(repo());
    expect(all.map((r) => r.tag_name)).toEqual(['v1.0.0', 'v0.9.0']);
    expect((await octokit.rest.repos.getRelease({ ...repo(), release_id: older.id })).data.tag_name).toBe('v0.9.0');

    const asset = gh().state.seedAsset(rel.id, 'old.txt', 'x');
    const { data: renamed } = await octokit.rest.repos.updateReleaseAsset({ ...repo(), asset_id: asset.id, name: 'new.txt', label: 'New' });
    expect([renamed.name, renamed.label]).toEqual(['new.txt', 'New']);
    await octokit.rest.repos.deleteReleaseAsset({ ...repo(), asset_id: asset.id });
    expect(gh().state.assets.size).toBe(0);
    await octokit.rest.repos.deleteRelease({ ...repo(), release_id: rel.id });
    const gone = await requestFailure(octokit.rest.repos.getRelease({ ...repo(), release_id: rel.id }));
    expect(gone.status).toBe(404);
    expect(gone.data.message).toBe('Not Found');
  });
});

describe('the stand-in clock', () => {
  const at = new Date('2026-03-01T12:00:00Z');
  const gh = useGitHubStandIn(() => ({ now: () => at }));

  it('stamps what it creates with the injected time', async () => {
    const { data } = await plainOctokit(gh().apiUrl).rest.repos.createRelease({ owner: gh().state.owner, repo: gh().state.repo, tag_name: 'v1' });
    expect([data.created_at, data.published_at]).toEqual(['2026-03-01T12:00:00Z', '2026-03-01T12:00:00Z']);
  });
});
