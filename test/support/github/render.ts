// Turns the stand-in's records into the JSON GitHub answers with, typed by @octokit/openapi-types
// so a field GitHub renamed or made required shows up as a type error as well as a violation.

import { basename } from 'node:path';
import type { components } from '@octokit/openapi-types';
import type { OpenApiContract } from './openapi.ts';
import type {
  AssetRecord,
  CheckRunRecord,
  CommentRecord,
  CommitRecord,
  FileRecord,
  IssueRecord,
  LabelRecord,
  ReleaseRecord,
  RepositoryState,
  StatusRecord,
  UserRecord,
} from './state.ts';

type Schemas = components['schemas'];

export interface Origins {
  apiUrl: string;
  uploadsUrl: string;
  objectsUrl: string;
}

function nodeId(kind: string, id: number | string): string {
  return Buffer.from(`0:${kind}${id}`).toString('base64');
}

export class Renderer {
  readonly repoApi: string;
  readonly html: string;

  constructor(
    private readonly state: RepositoryState,
    private readonly origins: Origins,
    private readonly contract: OpenApiContract,
  ) {
    this.repoApi = `${origins.apiUrl}/repos/${state.owner}/${state.repo}`;
    // The API origin doubles as the web host (as on GitHub Enterprise Server).
    this.html = `${origins.apiUrl}/${state.owner}/${state.repo}`;
  }

  user(u: UserRecord): Schemas['simple-user'] {
    const base = `${this.origins.apiUrl}/users/${encodeURIComponent(u.login)}`;
    return {
      login: u.login,
      id: u.id,
      node_id: nodeId(u.type, u.id),
      avatar_url: `${this.origins.objectsUrl}/avatars/${u.id}`,
      gravatar_id: '',
      url: base,
      html_url: `${this.origins.apiUrl}/${encodeURIComponent(u.login)}`,
      followers_url: `${base}/followers`,
      following_url: `${base}/following{/other_user}`,
      gists_url: `${base}/gists{/gist_id}`,
      starred_url: `${base}/starred{/owner}{/repo}`,
      subscriptions_url: `${base}/subscriptions`,
      organizations_url: `${base}/orgs`,
      repos_url: `${base}/repos`,
      events_url: `${base}/events{/privacy}`,
      received_events_url: `${base}/received_events`,
      type: u.type,
      site_admin: false,
    };
  }

  asset(a: AssetRecord): Schemas['release-asset'] {
    const release = this.state.releases.get(a.release_id);
    const tag = release?.tag_name ?? 'untagged';
    return {
      url: `${this.repoApi}/releases/assets/${a.id}`,
      browser_download_url: `${this.html}/releases/download/${encodeURIComponent(tag)}/${encodeURIComponent(a.name)}`,
      id: a.id,
      node_id: nodeId('ReleaseAsset', a.id),
      name: a.name,
      label: a.label,
      state: 'uploaded',
      content_type: a.content_type,
      size: a.bytes.length,
      digest: a.digest,
      download_count: a.download_count,
      created_at: a.created_at,
      updated_at: a.updated_at,
      uploader: this.user(a.uploader),
    };
  }

  release(r: ReleaseRecord): Schemas['release'] {
    const base = `${this.repoApi}/releases/${r.id}`;
    const tag = encodeURIComponent(r.tag_name);
    return {
      url: base,
      html_url: r.draft ? `${this.html}/releases/tag/untagged-${r.id}` : `${this.html}/releases/tag/${tag}`,
      assets_url: `${base}/assets`,
      upload_url: `${this.origins.uploadsUrl}/repos/${this.state.owner}/${this.state.repo}/releases/${r.id}/assets{?name,label}`,
      tarball_url: r.draft ? null : `${this.repoApi}/tarball/${tag}`,
      zipball_url: r.draft ? null : `${this.repoApi}/zipball/${tag}`,
      id: r.id,
      node_id: nodeId('Release', r.id),
      tag_name: r.tag_name,
      target_commitish: r.target_commitish,
      name: r.name,
      body: r.body,
      draft: r.draft,
      prerelease: r.prerelease,
      immutable: false,
      created_at: r.created_at,
      published_at: r.published_at,
      author: this.user(r.author),
      assets: this.state.assetsOf(r.id).map((a) => this.asset(a)),
    };
  }

  label(l: LabelRecord): Schemas['label'] {
    return {
      id: l.id,
      node_id: nodeId('Label', l.id),
      url: `${this.repoApi}/labels/${encodeURIComponent(l.name)}`,
      name: l.name,
      color: l.color,
      description: l.description,
      default: l.default,
    };
  }

  issue(i: IssueRecord): Schemas['issue'] {
    const url = `${this.repoApi}/issues/${i.number}`;
    const assignees = i.assignees.map((login, n) => this.user({ login, id: 5000 + n, type: 'User' }));
    return {
      id: i.id,
      node_id: nodeId('Issue', i.id),
      url,
      repository_url: this.repoApi,
      labels_url: `${url}/labels{/name}`,
      comments_url: `${url}/comments`,
      events_url: `${url}/events`,
      html_url: `${this.html}/issues/${i.number}`,
      number: i.number,
      state: i.state,
      state_reason: i.state_reason,
      title: i.title,
      body: i.body,
      user: this.user(i.user),
      labels: i.labels.map((name) => this.label(this.state.ensureLabel(name))),
      assignee: assignees[0] ?? null,
      assignees,
      milestone: null,
      locked: false,
      active_lock_reason: null,
      comments: this.state.commentsOf(i.number).length,
      closed_at: i.closed_at,
      created_at: i.created_at,
      updated_at: i.updated_at,
      closed_by: i.closed_by ? this.user(i.closed_by) : null,
      author_association: 'OWNER',
    };
  }

  comment(c: CommentRecord): Schemas['issue-comment'] {
    return {
      id: c.id,
      node_id: nodeId('IssueComment', c.id),
      url: `${this.repoApi}/issues/comments/${c.id}`,
      html_url: `${this.html}/issues/${c.issue_number}#issuecomment-${c.id}`,
      body: c.body,
      user: this.user(c.user),
      created_at: c.created_at,
      updated_at: c.updated_at,
      issue_url: `${this.repoApi}/issues/${c.issue_number}`,
      author_association: 'OWNER',
    };
  }

  checkRun(c: CheckRunRecord): Schemas['check-run'] {
    const url = `${this.repoApi}/check-runs/${c.id}`;
    const app = this.contract.example<Schemas['check-run']>('check-run').app;
    return {
      id: c.id,
      head_sha: c.head_sha,
      node_id: nodeId('CheckRun', c.id),
      external_id: c.external_id ?? '',
      url,
      html_url: `${this.html}/runs/${c.id}`,
      details_url: c.details_url,
      status: c.status,
      conclusion: c.conclusion as Schemas['check-run']['conclusion'],
      started_at: c.started_at,
      completed_at: c.completed_at,
      output: { ...c.output, annotations_url: `${url}/annotations` },
      name: c.name,
      check_suite: { id: 1 },
      app,
      pull_requests: [],
    };
  }

  status(s: StatusRecord): Schemas['status'] {
    return {
      url: `${this.repoApi}/statuses/${s.sha}`,
      avatar_url: `${this.origins.objectsUrl}/avatars/${s.creator.id}`,
      id: s.id,
      node_id: nodeId('Status', s.id),
      state: s.state,
      description: s.description,
      target_url: s.target_url,
      context: s.context,
      created_at: s.created_at,
      updated_at: s.updated_at,
      creator: this.user(s.creator),
    };
  }

  /** The repository as `minimal-repository`, from the description's example with our names in it. */
  minimalRepository(): Schemas['minimal-repository'] {
    const example = JSON.stringify(this.contract.example('minimal-repository'))
      .replaceAll('https://api.github.com/repos/octocat/Hello-World', this.repoApi)
      .replaceAll('https://github.com/octocat/Hello-World', this.html)
      .replaceAll('git@github.com:octocat/Hello-World.git', `git@127.0.0.1:${this.state.owner}/${this.state.repo}.git`)
      .replaceAll('https://github.com/octocat/Hello-World.git', `${this.html}.git`);
    const repo = JSON.parse(example) as Schemas['minimal-repository'];
    return {
      ...repo,
      id: this.state.repoId,
      node_id: nodeId('Repository', this.state.repoId),
      name: this.state.repo,
      full_name: `${this.state.owner}/${this.state.repo}`,
      owner: this.user(this.state.seedUser),
      private: true,
      default_branch: this.state.defaultBranch,
    };
  }

  fileEntry(path: string, file: FileRecord, ref: string): Schemas['file-commit']['content'] & object {
    const encodedPath = path.split('/').map(encodeURIComponent).join('/');
    const self = `${this.repoApi}/contents/${encodedPath}?ref=${encodeURIComponent(ref)}`;
    const git = `${this.repoApi}/git/blobs/${file.sha}`;
    const html = `${this.html}/blob/${encodeURIComponent(ref)}/${encodedPath}`;
    return {
      name: basename(path),
      path,
      sha: file.sha,
      size: file.bytes.length,
      url: self,
      html_url: html,
      git_url: git,
      download_url: `${this.origins.objectsUrl}/raw/${this.state.owner}/${this.state.repo}/${encodeURIComponent(ref)}/${encodedPath}`,
      type: 'file',
      _links: { self, git, html },
    };
  }

  fileContent(path: string, file: FileRecord, ref: string): Schemas['content-file'] {
    // GitHub wraps base64 content at 60 characters.
    const content = (file.bytes.toString('base64').match(/.{1,60}/g) ?? []).join('\n') + (file.bytes.length ? '\n' : '');
    const entry = this.fileEntry(path, file, ref);
    return {
      type: 'file',
      encoding: 'base64',
      size: file.bytes.length,
      name: entry.name!,
      path,
      content,
      sha: file.sha,
      url: entry.url!,
      git_url: entry.git_url!,
      html_url: entry.html_url!,
      download_url: entry.download_url!,
      _links: { self: entry.url!, git: entry.git_url!, html: entry.html_url! },
    };
  }

  dirEntry(path: string, sha: string, ref: string): Schemas['content-directory'][number] {
    const encodedPath = path.split('/').map(encodeURIComponent).join('/');
    const self = `${this.repoApi}/contents/${encodedPath}?ref=${encodeURIComponent(ref)}`;
    const git = `${this.repoApi}/git/trees/${sha}`;
    const html = `${this.html}/tree/${encodeURIComponent(ref)}/${encodedPath}`;
    return { type: 'dir', size: 0, name: basename(path), path, sha, url: self, git_url: git, html_url: html, download_url: null, _links: { self, git, html } };
  }

  commit(c: CommitRecord): Schemas['file-commit']['commit'] {
    const who = { date: c.date, name: c.author.login, email: `${c.author.id}+${c.author.login}@users.noreply.github.com` };
    return {
      sha: c.sha,
      node_id: nodeId('Commit', c.sha),
      url: `${this.repoApi}/git/commits/${c.sha}`,
      html_url: `${this.html}/commit/${c.sha}`,
      author: who,
      committer: who,
      message: c.message,
      tree: { url: `${this.repoApi}/git/trees/${c.sha}`, sha: c.sha },
      parents: c.parent ? [{ url: `${this.repoApi}/git/commits/${c.parent}`, html_url: `${this.html}/commit/${c.parent}`, sha: c.parent }] : [],
      verification: { verified: false, reason: 'unsigned', signature: null, payload: null, verified_at: null },
    };
  }
}
