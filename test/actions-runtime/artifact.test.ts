// The real @actions/artifact uploads, lists, downloads and deletes through the results stand-in,
// and the stand-in rejects requests that do not match the service's message types.

import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DefaultArtifactClient } from '@actions/artifact';
import { startResultsStandIn, withProcessEnv, type ResultsStandIn } from '../support/actions-runtime/index.ts';

let standIn: ResultsStandIn;
let work: string;

beforeAll(async () => {
  standIn = await startResultsStandIn();
  work = await mkdtemp(join(tmpdir(), 'results-artifact-'));
});
afterAll(async () => {
  await standIn.close();
  await rm(work, { recursive: true, force: true });
});

const twirp = (method: string) => new URL(`twirp/github.actions.results.api.v1.${method}`, standIn.url).href;

async function post(method: string, body: string, token = standIn.runtimeToken): Promise<{ status: number; json: any }> {
  const res = await fetch(twirp(method), {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body,
  });
  return { status: res.status, json: await res.json() };
}

describe('@actions/artifact through the results stand-in', () => {
  it('uploads a zip artifact, lists it, downloads it back and deletes it', async () => {
    const root = join(work, 'ws', 'reports');
    await mkdir(join(root, 'eval'), { recursive: true });
    await writeFile(join(root, 'eval', 'report.json'), '{"accuracy":0.91}\n');
    await writeFile(join(root, 'summary.md'), '# Summary\n');
    const env = { ...standIn.env, GITHUB_WORKSPACE: join(work, 'ws'), RUNNER_TEMP: join(work, 'tmp') };

    await withProcessEnv(env, async () => {
      const client = new DefaultArtifactClient();
      const uploaded = await client.uploadArtifact(
        'eval-reports',
        [join(root, 'eval', 'report.json'), join(root, 'summary.md')],
        root,
        { retentionDays: 3 },
      );
      expect(uploaded.id).toBeGreaterThan(0);
      expect(uploaded.size).toBeGreaterThan(0);

      const { artifacts } = await client.listArtifacts();
      expect(artifacts.map((a) => a.name)).toEqual(['eval-reports']);
      expect(artifacts[0]!.digest).toBe(`sha256:${uploaded.digest}`);

      const found = await client.getArtifact('eval-reports');
      expect(found.artifact.id).toBe(uploaded.id);

      const into = join(work, 'download');
      const { downloadPath } = await client.downloadArtifact(uploaded.id!, { path: into });
      expect(downloadPath).toBe(into);
      expect(await readFile(join(into, 'eval', 'report.json'), 'utf8')).toBe('{"accuracy":0.91}\n');
      expect(await readFile(join(into, 'summary.md'), 'utf8')).toBe('# Summary\n');

      // A second upload under the same name in the same run is refused.
      await expect(client.uploadArtifact('eval-reports', [join(root, 'summary.md')], root)).rejects.toThrow(/already exists|409/);

      await client.deleteArtifact('eval-reports');
      expect((await client.listArtifacts()).artifacts).toEqual([]);
    });
    const state = standIn.artifacts();
    expect(state).toEqual([]);
    expect(standIn.calls.some((c) => c.method === 'PUT blocklist' && c.status === 201)).toBe(true);
  });

  it('uploads a single file without zipping it and serves it back raw', async () => {
    const file = join(work, 'model-card.json');
    await writeFile(file, '{"name":"skin-type"}');
    await withProcessEnv({ ...standIn.env, GITHUB_WORKSPACE: work }, async () => {
      const client = new DefaultArtifactClient();
      const { id } = await client.uploadArtifact('card', [file], work, { skipArchive: true });
      const into = join(work, 'raw');
      await client.downloadArtifact(id!, { path: into });
      expect(await readFile(join(into, 'model-card.json'), 'utf8')).toBe('{"name":"skin-type"}');
    });
    expect(standIn.artifacts().find((a) => a.name === 'model-card.json')).toMatchObject({ mimeType: 'application/json' });
  });
});

describe('results stand-in strictness', () => {
  it('rejects a body with an unknown field, a wrongly typed field, non-JSON, a missing key and a bad token', async () => {
    const unknown = await post('CacheService/CreateCacheEntry', JSON.stringify({ key: 'k', version: 'a'.repeat(64), size: 3 }));
    expect(unknown.status).toBe(400);
    expect(unknown.json).toMatchObject({ code: 'malformed' });
    expect(unknown.json.msg).toMatch(/size/);

    const wrongType = await post('CacheService/GetCacheEntryDownloadURL', JSON.stringify({ key: 'k', version: 'a'.repeat(64), restore_keys: 'k-' }));
    expect(wrongType.status).toBe(400);

    expect((await post('CacheService/CreateCacheEntry', 'not json')).status).toBe(400);

    const missing = await post('CacheService/CreateCacheEntry', JSON.stringify({ version: 'a'.repeat(64) }));
    expect(missing).toMatchObject({ status: 400, json: { code: 'invalid_argument' } });

    const badVersion = await post('CacheService/CreateCacheEntry', JSON.stringify({ key: 'k', version: 'v1' }));
    expect(badVersion).toMatchObject({ status: 400, json: { code: 'invalid_argument' } });

    const unauthenticated = await post('CacheService/CreateCacheEntry', JSON.stringify({ key: 'k', version: 'a'.repeat(64) }), 'x.y.z');
    expect(unauthenticated.status).toBe(401);

    const otherRun = await post(
      'ArtifactService/ListArtifacts',
      JSON.stringify({ workflow_run_backend_id: 'other', workflow_job_run_backend_id: standIn.scope.jobId }),
    );
    expect(otherRun).toMatchObject({ status: 403, json: { code: 'permission_denied' } });

    const unknownMethod = await post('CacheService/DeleteCacheEntry', '{}');
    expect(unknownMethod).toMatchObject({ status: 404, json: { code: 'bad_route' } });
    expect(standIn.cacheEntries().filter((e) => e.key === 'k')).toEqual([]);
  });

  it('refuses a blob write without the signature it issued', async () => {
    const created = await post('CacheService/CreateCacheEntry', JSON.stringify({ key: 'sig-test', version: 'b'.repeat(64) }));
    expect(created.status).toBe(200);
    const url = new URL(created.json.signed_upload_url);
    url.searchParams.set('sig', 'forged');
    const res = await fetch(url, { method: 'PUT', headers: { 'x-ms-blob-type': 'BlockBlob' }, body: 'x' });
    expect(res.status).toBe(403);
    expect(res.headers.get('x-ms-error-code')).toBe('AuthenticationFailed');
    const finalize = await post('CacheService/FinalizeCacheEntryUpload', JSON.stringify({ key: 'sig-test', version: 'b'.repeat(64), size_bytes: '1' }));
    expect(finalize).toMatchObject({ status: 412, json: { code: 'failed_precondition' } });
  });
});
