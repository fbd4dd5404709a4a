// The stand-in's OpenAPI checks catch what they must: wrong responses (body, status, content type),
// wrong requests (body, params, origin), and calls to operations the stand-in does not implement.

import { describe, expect, it } from 'vitest';
import {
  DEFAULT_TOKEN,
  OpenApiContract,
  assertOnlyImplementedOperations,
  assertStandInClean,
  startGitHubStandIn,
  useGitHubStandIn,
} from '../support/github/index.ts';
import { plainOctokit } from '../support/github/clients.ts';

describe('OpenApiContract', () => {
  const contract = OpenApiContract.load();

  it('matches the most specific path template', () => {
    expect(contract.match('GET', '/repos/o/r/releases/latest')?.operation.operationId).toBe('repos/get-latest-release');
    expect(contract.match('GET', '/repos/o/r/releases/42')?.operation.operationId).toBe('repos/get-release');
    expect(contract.match('GET', '/repos/o/r/releases/tags/model%40v1')?.pathParams['tag']).toBe('model@v1');
    expect(contract.match('GET', '/repos/o/r/contents/models/registry.yaml')?.pathParams['path']).toBe('models/registry.yaml');
    expect(contract.match('GET', '/repos/o/r/no-such-thing')).toBeUndefined();
  });

  it('reads OpenAPI nullable as JSON Schema null, with and without a type', () => {
    const asset = contract.example<Record<string, unknown>>('release-asset');
    expect(contract.checkSchema('release-asset', { ...asset, label: null, uploader: null, digest: 'sha256:00' })).toEqual([]);
    expect(contract.checkSchema('release-asset', { ...asset, label: 3 })).not.toEqual([]);
    expect(contract.checkSchema('release-asset', { ...asset, uploader: 'someone' })).not.toEqual([]);
    const { digest: _digest, ...withoutDigest } = asset;
    expect(contract.checkSchema('release-asset', withoutDigest)).toEqual([expect.stringContaining('digest')]);
  });

  it('accepts the description’s own examples for the objects the stand-in serves', () => {
    const pairs = [
      ['release', 'release'],
      ['release-asset', 'release-asset'],
      ['issue', 'issue'],
      ['issue-comment', 'issue-comment'],
      ['label', 'label'],
      ['check-run', 'check-run'],
      ['status', 'status'],
      ['combined-commit-status', 'combined-commit-status'],
      ['content-file', 'content-file'],
      ['file-commit', 'file-commit-example-for-creating-a-file'],
    ] as const;
    for (const [schema, example] of pairs) expect(contract.checkSchema(schema, contract.example(example)), schema).toEqual([]);
  });

  it('checks required query params, param types and request bodies', () => {
    const upload = contract.match('POST', '/repos/o/r/releases/abc/assets')!;
    expect(contract.checkRequest(upload, { query: new URLSearchParams(), contentType: 'text/plain', body: Buffer.from('x') })).toEqual([
      expect.stringContaining('release_id'),
      'missing required query parameter `name`',
    ]);
    const create = contract.match('POST', '/repos/o/r/releases')!;
    expect(contract.checkRequest(create, { query: new URLSearchParams(), contentType: 'application/json', body: { tag_name: 'v1' } })).toEqual([]);
    expect(contract.checkRequest(create, { query: new URLSearchParams(), contentType: 'application/json', body: { name: 'no tag' } })).toEqual([
      expect.stringContaining('tag_name'),
    ]);
    expect(contract.checkRequest(create, { query: new URLSearchParams(), contentType: 'application/json', body: { tag_name: 'v1', draf: true } })).toEqual([
      'request body: unknown property `draf`',
    ]);
    expect(contract.checkRequest(create, { query: new URLSearchParams(), contentType: 'application/json', body: undefined })).toEqual([
      'missing required request body (application/json)',
    ]);
  });
});

describe('the stand-in reports contract violations', () => {
  const gh = useGitHubStandIn();
  const repo = () => ({ owner: gh().state.owner, repo: gh().state.repo });

  it('catches a handler answering with a body that breaks the schema', async () => {
    gh().setHandler('repos/get-release', (ctx) => ({ status: 200, body: { id: ctx.params['release_id'], tag_name: 'v1' } }));
    await plainOctokit(gh().apiUrl).rest.repos.getRelease({ ...repo(), release_id: 1 });
    expect(() => assertStandInClean(gh())).toThrow(/repos\/get-release.*response 200 body/);
    expect(gh().takeViolations()).toHaveLength(1);
  });

  it('catches an undeclared success status, a wrong content type and a malformed error body', async () => {
    const octokit = plainOctokit(gh().apiUrl);
    const release = gh().state.seedRelease({ tag_name: 'v1' });
    gh().setHandler('repos/get-release', () => ({ status: 201, body: {} }));
    await octokit.rest.repos.getRelease({ ...repo(), release_id: release.id });
    gh().setHandler('repos/list-releases', () => ({ status: 200, raw: { bytes: Buffer.from('[]'), contentType: 'text/plain' } }));
    await octokit.rest.repos.listReleases(repo());
    gh().setHandler('repos/get-latest-release', () => ({ status: 404, body: { error: 'gone' } }));
    await octokit.rest.repos.getLatestRelease(repo()).catch(() => undefined);
    expect(gh().takeViolations()).toEqual([
      expect.stringMatching(/status 201 is not declared for repos\/get-release/),
      expect.stringMatching(/content-type text\/plain is not declared for repos\/list-releases 200/),
      expect.stringMatching(/repos\/get-latest-release.*error 404 body has no `message`/),
    ]);
  });

  it('catches a request whose body or query breaks the description, and answers 422', async () => {
    const octokit = plainOctokit(gh().apiUrl);
    const res = await octokit
      .request('POST /repos/{owner}/{repo}/releases', { ...repo(), tag_name: 'v1', draft: 'yes' } as never)
      .catch((e: { status: number }) => e);
    expect((res as { status: number }).status).toBe(422);
    const rel = gh().state.seedRelease({ tag_name: 'v2', draft: true });
    const upload = await fetch(`${gh().uploadsUrl}/repos/${repo().owner}/${repo().repo}/releases/${rel.id}/assets`, {
      method: 'POST',
      headers: { authorization: `token ${DEFAULT_TOKEN}`, 'content-type': 'application/octet-stream' },
      body: 'bytes',
    });
    expect(upload.status).toBe(422);
    expect(gh().takeViolations()).toEqual([
      expect.stringMatching(/repos\/create-release\).*request body: \/draft must be boolean/),
      expect.stringMatching(/repos\/upload-release-asset\).*missing required query parameter `name`/),
    ]);
    expect(gh().state.releases.size).toBe(1);
  });

  it('answers 501 naming the method and path for an operation it does not implement', async () => {
    // A stand-in of its own: the after-test check of the shared one would (rightly) fail on this call.
    const own = await startGitHubStandIn();
    try {
      const err = (await plainOctokit(own.apiUrl)
        .rest.repos.get({ owner: own.state.owner, repo: own.state.repo })
        .catch((e: unknown) => e)) as { status: number; message: string };
      expect(err.status).toBe(501);
      expect(err.message).toContain(`GET /repos/${own.state.owner}/${own.state.repo} (repos/get) is not implemented`);
      expect(() => assertOnlyImplementedOperations(own)).toThrow('repos/get');
      expect(() => assertStandInClean(own)).toThrow('not implemented by the GitHub stand-in');
    } finally {
      await own.close();
    }
  });

  it('reports unknown routes, uploads sent to the API origin, and unparsable JSON', async () => {
    const headers = { authorization: `token ${DEFAULT_TOKEN}` };
    expect((await fetch(`${gh().apiUrl}/no/such/route`, { headers })).status).toBe(404);
    const rel = gh().state.seedRelease({ tag_name: 'v1', draft: true });
    const wrongOrigin = await fetch(`${gh().apiUrl}/repos/${repo().owner}/${repo().repo}/releases/${rel.id}/assets?name=a.bin`, {
      method: 'POST',
      headers,
      body: 'x',
    });
    expect(wrongOrigin.status).toBe(404);
    const badJson = await fetch(`${gh().apiUrl}/repos/${repo().owner}/${repo().repo}/issues`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: '{"title":',
    });
    expect(badJson.status).toBe(400);
    expect(gh().takeViolations()).toEqual([
      expect.stringContaining("GET /no/such/route: no such operation in GitHub's REST description"),
      expect.stringContaining('sent to the api origin; GitHub serves it on the uploads origin'),
      expect.stringContaining('request body is not valid JSON'),
    ]);
  });
});

describe('the after-test check of useGitHubStandIn', () => {
  const gh = useGitHubStandIn();

  // Expected to fail: nothing in the test body asserts, the violation alone must fail it.
  it.fails('fails the test whose request broke the contract', async () => {
    const res = await fetch(`${gh().apiUrl}/no/such/route`, { headers: { authorization: `token ${DEFAULT_TOKEN}` } });
    await res.arrayBuffer();
  });
});
