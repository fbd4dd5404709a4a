// Replays the real api.github.com recordings of @octokit/fixtures (their JSON only, never their
// nock mocks) against the stand-in, seeded with what each recording expects, and compares the
// status codes and error `code`/`field` values with what GitHub answered.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assertStandInClean, startGitHubStandIn, type GitHubStandIn } from '../support/github/index.ts';

interface Recorded {
  scope: string;
  method: string;
  path: string;
  body: unknown;
  status: number;
  response: unknown;
  reqheaders: Record<string, string | number>;
}

const TOKEN = '0000000000000000000000000000000000000001';
const OWNER = 'octokit-fixture-org';
const scenariosDir = join(dirname(createRequire(import.meta.url).resolve('@octokit/fixtures/package.json')), 'scenarios', 'api.github.com');

function load(name: string): Recorded[] {
  return JSON.parse(readFileSync(join(scenariosDir, name, 'normalized-fixture.json'), 'utf8')) as Recorded[];
}

type ErrorEntry = { resource?: string; code?: string; field?: string };
const errorsOf = (body: unknown): ErrorEntry[] | undefined =>
  (body as { errors?: ErrorEntry[] } | null)?.errors?.map(({ resource, code, field }) => ({ resource, code, field }));

interface Replayed {
  recorded: Recorded;
  status: number;
  body: unknown;
}

/**
 * Send every recorded request to the stand-in, mapping the ids GitHub handed out in the
 * recording (`releases/1000`, `assets/1000`) to the ones the stand-in handed out.
 */
async function replay(gh: GitHubStandIn, recording: Recorded[], ids: Map<string, number>): Promise<Replayed[]> {
  const results: Replayed[] = [];
  for (const rec of recording) {
    const path = rec.path.replace(/\/(releases|assets|issues|comments)\/(\d+)/g, (m, kind: string, id: string) => {
      const mapped = ids.get(`${kind}:${id}`);
      return mapped === undefined ? m : `/${kind}/${mapped}`;
    });
    const origin = rec.scope.includes('uploads.github.com') ? gh.uploadsUrl : gh.apiUrl;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(rec.reqheaders)) if (k !== 'host' && k !== 'content-length') headers[k] = String(v);
    const body = rec.body === '' || rec.body === undefined ? undefined : typeof rec.body === 'string' ? rec.body : JSON.stringify(rec.body);
    const res = await fetch(origin + path, { method: rec.method.toUpperCase(), headers, ...(body === undefined ? {} : { body }) });
    const text = await res.text();
    const type = res.headers.get('content-type') ?? '';
    const parsed: unknown = type.includes('json') && text ? JSON.parse(text) : text;
    results.push({ recorded: rec, status: res.status, body: parsed });
    // Remember the ids of what the recording created, keyed the way later paths name them.
    const recordedBody = rec.response as { id?: number; number?: number } | null;
    const ours = parsed as { id?: number; number?: number } | null;
    if (res.status < 300 && recordedBody && ours && typeof recordedBody === 'object' && !Array.isArray(recordedBody)) {
      if (typeof recordedBody.number === 'number' && typeof ours.number === 'number') ids.set(`issues:${recordedBody.number}`, ours.number);
      else if (typeof recordedBody.id === 'number' && typeof ours.id === 'number') {
        const kind = /\/assets(\?|$)/.test(rec.path) || /\/releases\/assets\//.test(rec.path) ? 'assets' : (rec.path.split('?')[0]!.split('/').filter((s) => !/^\d+$/.test(s)).pop() ?? '');
        ids.set(`${kind}:${recordedBody.id}`, ours.id);
      }
    }
  }
  return results;
}

/** Status codes and error code/field values must be the ones GitHub answered. */
function expectSameAnswers(results: Replayed[]): void {
  for (const { recorded, status, body } of results) {
    const what = `${recorded.method.toUpperCase()} ${recorded.path}`;
    expect(status, what).toBe(recorded.status);
    const expected = errorsOf(recorded.response);
    if (expected) expect(errorsOf(body), what).toEqual(expected);
  }
}

async function withStandIn(repo: string, fn: (gh: GitHubStandIn, ids: Map<string, number>) => Promise<void>): Promise<void> {
  const gh = await startGitHubStandIn({ owner: OWNER, repo, defaultBranch: 'master', tokens: { [TOKEN]: { kind: 'user', login: 'octokit-fixture-user' } } });
  try {
    await fn(gh, new Map());
    assertStandInClean(gh);
  } finally {
    await gh.close();
  }
}

describe('@octokit/fixtures recordings replayed against the stand-in', () => {
  it('release-assets: get by tag, upload, list, get, update, delete', async () => {
    await withStandIn('release-assets', async (gh, ids) => {
      ids.set('releases:1000', gh.state.seedRelease({ tag_name: 'v1.0.0' }).id);
      const results = await replay(gh, load('release-assets'), ids);
      expectSameAnswers(results);
      const uploaded = results[1]!.body as { name: string; label: string; size: number; digest: string };
      expect([uploaded.name, uploaded.label, uploaded.size]).toEqual(['test-upload.txt', 'test', 14]);
      expect(uploaded.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect((results[4]!.body as { name: string }).name).toBe('new-filename.txt');
      expect(gh.state.assets.size).toBe(0);
    });
  });

  it('release-assets-conflict: a duplicate asset name is 422 already_exists until the old one is deleted', async () => {
    await withStandIn('release-assets-conflict', async (gh, ids) => {
      const release = gh.state.seedRelease({ tag_name: 'v1.0.0' });
      ids.set('releases:1000', release.id);
      ids.set('assets:1000', gh.state.seedAsset(release.id, 'test-upload.txt', 'Hello, world!\n', 'text/plain').id);
      const results = await replay(gh, load('release-assets-conflict'), ids);
      expectSameAnswers(results);
      expect(errorsOf(results[1]!.body)).toEqual([{ resource: 'ReleaseAsset', code: 'already_exists', field: 'name' }]);
    });
  });

  it('add-labels-to-issue: labels that do not exist yet are created', async () => {
    await withStandIn('add-labels-to-issue', async (gh, ids) => {
      const results = await replay(gh, load('add-labels-to-issue'), ids);
      expectSameAnswers(results);
      expect((results[1]!.body as { name: string }[]).map((l) => l.name)).toEqual((results[1]!.recorded.response as { name: string }[]).map((l) => l.name));
    });
  });

  it('create-file: the blob sha is the one GitHub computed', async () => {
    await withStandIn('create-file', async (gh, ids) => {
      const results = await replay(gh, load('create-file'), ids);
      expectSameAnswers(results);
      const recorded = results[0]!.recorded.response as { content: { sha: string; size: number } };
      expect((results[0]!.body as { content: { sha: string; size: number } }).content).toMatchObject({ sha: recorded.content.sha, size: recorded.content.size });
    });
  });

  it('get-content: directory listing and raw media type', async () => {
    await withStandIn('hello-world', async (gh, ids) => {
      gh.state.writeFiles({ 'README.md': '# hello-world' });
      const results = await replay(gh, load('get-content'), ids);
      expectSameAnswers(results);
      const listing = results[0]!.body as { name: string; sha: string }[];
      const recorded = results[0]!.recorded.response as { name: string; sha: string }[];
      expect(listing.map(({ name, sha }) => ({ name, sha }))).toEqual(recorded.map(({ name, sha }) => ({ name, sha })));
      expect(results[1]!.body).toBe(results[1]!.recorded.response);
    });
  });

  it('create-status: statuses, list and combined state', async () => {
    await withStandIn('create-status', async (gh, ids) => {
      const results = await replay(gh, load('create-status'), ids);
      expectSameAnswers(results);
      expect((results[3]!.body as { state: string }).state).toBe((results[3]!.recorded.response as { state: string }).state);
    });
  });

  it('paginate-issues: pages of three, following the repository-id links', async () => {
    await withStandIn('paginate-issues', async (gh, ids) => {
      for (let n = 1; n <= 13; n++) gh.state.seedIssue({ title: `Test issue ${n}` });
      const results = await replay(gh, load('paginate-issues'), ids);
      expectSameAnswers(results);
      const numbers = (r: unknown) => (r as { number: number }[]).map((i) => i.number);
      expect(results.map((r) => numbers(r.body))).toEqual(results.map((r) => numbers(r.recorded.response)));
    });
  });

  it('errors: an invalid label colour is 422 invalid on field color', async () => {
    await withStandIn('errors', async (gh, ids) => {
      expectSameAnswers(await replay(gh, load('errors'), ids));
    });
  });

  it('labels: list, create, get, update, delete', async () => {
    await withStandIn('labels', async (gh, ids) => {
      const recording = load('labels');
      for (const l of recording[0]!.response as { name: string; color: string; description: string | null }[]) {
        gh.state.seedLabel(l.name, l.color, l.description).default = true;
      }
      const results = await replay(gh, recording, ids);
      expectSameAnswers(results);
      expect((results[0]!.body as { name: string }[]).map((l) => l.name)).toEqual((recording[0]!.response as { name: string }[]).map((l) => l.name));
      expect((results[3]!.body as { name: string; color: string }).color).toBe('BADA55');
    });
  });
});
