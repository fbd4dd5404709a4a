// Authentication, permissions, rate limits and injected faults of the GitHub stand-in, seen
// through the real clients and their retry/throttling plugins.

import { describe, expect, it } from 'vitest';
import { Octokit } from 'octokit';
import { getOctokit } from '@actions/github';
import { retry } from '@octokit/plugin-retry';
import { DEFAULT_TOKEN, useGitHubStandIn } from '../support/github/index.ts';
import { plainOctokit, requestFailure } from '../support/github/clients.ts';

const READ_ONLY = 'ghs_read_only';

describe('authentication and permissions', () => {
  const gh = useGitHubStandIn({
    tokens: { [DEFAULT_TOKEN]: { kind: 'github-actions' }, [READ_ONLY]: { kind: 'app', permissions: { contents: 'read', issues: 'none' } } },
  });
  const repo = () => ({ owner: gh().state.owner, repo: gh().state.repo });

  it('answers 401 without a token and with an unknown one', async () => {
    const none = await requestFailure(plainOctokit(gh().apiUrl, null).rest.repos.listReleases(repo()));
    expect([none.status, none.data.message]).toEqual([401, 'Requires authentication']);
    const bad = await requestFailure(plainOctokit(gh().apiUrl, 'ghp_wrong').rest.repos.listReleases(repo()));
    expect([bad.status, bad.data.message]).toEqual([401, 'Bad credentials']);
  });

  it('answers 403 when the token lacks the permission and 404 when it cannot see the repository', async () => {
    const octokit = plainOctokit(gh().apiUrl, READ_ONLY);
    expect((await octokit.rest.repos.listReleases(repo())).status).toBe(200);
    const write = await requestFailure(octokit.rest.repos.createRelease({ ...repo(), tag_name: 'v1' }));
    expect([write.status, write.data.message]).toEqual([403, 'Resource not accessible by integration']);
    expect((await requestFailure(octokit.rest.issues.listForRepo(repo()))).status).toBe(403);
    expect(gh().state.releases.size).toBe(0);

    gh().setPermissions(READ_ONLY, { metadata: 'none' });
    expect((await requestFailure(octokit.rest.repos.listReleases(repo()))).status).toBe(404);
    gh().setPermissions(DEFAULT_TOKEN, { contents: 'write' });
    expect((await plainOctokit(gh().apiUrl, DEFAULT_TOKEN).rest.repos.createRelease({ ...repo(), tag_name: 'v1' })).status).toBe(201);
  });

  it('answers 404 for another repository', async () => {
    expect((await requestFailure(plainOctokit(gh().apiUrl, DEFAULT_TOKEN).rest.repos.listReleases({ owner: 'someone', repo: 'else' }))).status).toBe(404);
  });
});

describe('rate limits', () => {
  const gh = useGitHubStandIn();
  const repo = () => ({ owner: gh().state.owner, repo: gh().state.repo });

  it('sends x-ratelimit headers on every answer', async () => {
    const res = await plainOctokit(gh().apiUrl, DEFAULT_TOKEN).rest.repos.listReleases(repo());
    expect(res.headers['x-ratelimit-limit']).toBe('5000');
    expect(Number(res.headers['x-ratelimit-remaining'])).toBeLessThan(5000);
  });

  it('answers a primary limit with 403 and x-ratelimit-remaining 0, which the throttling plugin waits out', async () => {
    const seen: number[] = [];
    const octokit = new Octokit({
      auth: DEFAULT_TOKEN,
      baseUrl: gh().apiUrl,
      retry: { enabled: false },
      throttle: {
        retryAfterBaseValue: 1,
        onRateLimit: (after: number) => (seen.push(after), true),
        onSecondaryRateLimit: () => false,
      },
    });
    const release = gh().state.seedRelease({ tag_name: 'v1' });
    gh().setRateLimit({ kind: 'primary', times: 1, resetAt: new Date() });
    const { data } = await octokit.rest.repos.getRelease({ ...repo(), release_id: release.id });
    expect(data.id).toBe(release.id);
    expect(seen).toHaveLength(1);
    expect(gh().requests.map((r) => r.status)).toEqual([403, 200]);

    gh().setRateLimit({ kind: 'primary' });
    const limited = await requestFailure(plainOctokit(gh().apiUrl, DEFAULT_TOKEN).rest.repos.getRelease({ ...repo(), release_id: release.id }));
    expect([limited.status, limited.headers['x-ratelimit-remaining']]).toEqual([403, '0']);
    gh().setRateLimit(undefined);
  });

  it('answers a secondary limit with 429 and retry-after, which the throttling plugin honours', async () => {
    const seen: number[] = [];
    const octokit = new Octokit({
      auth: DEFAULT_TOKEN,
      baseUrl: gh().apiUrl,
      retry: { enabled: false },
      throttle: {
        retryAfterBaseValue: 1,
        onRateLimit: () => false,
        onSecondaryRateLimit: (after: number) => (seen.push(after), true),
      },
    });
    gh().setRateLimit({ kind: 'secondary', status: 429, retryAfter: 7, times: 2 });
    const { data } = await octokit.rest.repos.listReleases(repo());
    expect(data).toEqual([]);
    expect(seen).toEqual([7, 7]);
    expect(gh().requests.map((r) => r.status)).toEqual([429, 429, 200]);
  });
});

describe('injected faults', () => {
  const gh = useGitHubStandIn();
  const repo = () => ({ owner: gh().state.owner, repo: gh().state.repo });

  it('fails an operation with a 5xx once: a client without retry sees it, the retry plugin rides it out', async () => {
    const bare = getOctokit(DEFAULT_TOKEN, { baseUrl: gh().apiUrl });
    gh().setFault({ operationId: 'repos/list-releases', kind: 'status', status: 502 });
    expect((await requestFailure(bare.rest.repos.listReleases(repo()))).status).toBe(502);
    expect((await bare.rest.repos.listReleases(repo())).status).toBe(200);

    const retrying = getOctokit(DEFAULT_TOKEN, { baseUrl: gh().apiUrl, retry: { retryAfterBaseValue: 1 } }, retry);
    gh().setFault({ operationId: 'repos/list-releases', kind: 'status', status: 503, times: 2 });
    expect((await retrying.rest.repos.listReleases(repo())).status).toBe(200);
    expect(gh().requests.filter((r) => r.operationId === 'repos/list-releases').map((r) => r.status)).toEqual([502, 200, 503, 503, 200]);
  });

  it('drops the connection mid-upload: nothing is stored, and a retried upload stores one asset', async () => {
    const rel = gh().state.seedRelease({ tag_name: 'v1', draft: true });
    const bytes = Buffer.alloc(256 * 1024, 7);
    const upload = (octokit: Octokit) =>
      octokit.rest.repos.uploadReleaseAsset({ ...repo(), release_id: rel.id, name: 'model.onnx', data: bytes as unknown as string, baseUrl: gh().uploadsUrl });

    gh().setFault({ operationId: 'repos/upload-release-asset', kind: 'drop' });
    await expect(upload(plainOctokit(gh().apiUrl, DEFAULT_TOKEN))).rejects.toThrow();
    expect(gh().state.assetsOf(rel.id)).toEqual([]);

    gh().setFault({ operationId: 'repos/upload-release-asset', kind: 'drop' });
    const retrying = new Octokit({ auth: DEFAULT_TOKEN, baseUrl: gh().apiUrl, throttle: { enabled: false }, retry: { retryAfterBaseValue: 1 } });
    const { data: asset } = await upload(retrying);
    expect(asset.size).toBe(bytes.length);
    expect(gh().state.assetsOf(rel.id)).toHaveLength(1);
  });
});
