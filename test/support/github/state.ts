// The repository the GitHub stand-in holds: releases and their asset bytes, issues, comments,
// labels, files per branch, check runs, statuses and the dispatches/workflow runs it recorded.
// Tests seed it directly and assert on it after the code under test has talked to the server.

import { createHash } from 'node:crypto';

export interface UserRecord {
  login: string;
  id: number;
  type: 'User' | 'Bot';
}

export interface ReleaseRecord {
  id: number;
  tag_name: string;
  target_commitish: string;
  name: string | null;
  body: string | null;
  draft: boolean;
  prerelease: boolean;
  created_at: string;
  published_at: string | null;
  author: UserRecord;
  /** Set by `make_latest: 'true'`; otherwise the newest published non-prerelease is latest. */
  make_latest: boolean;
}

export interface AssetRecord {
  id: number;
  release_id: number;
  name: string;
  label: string | null;
  content_type: string;
  bytes: Buffer;
  /** `sha256:<hex>` of the bytes, as GitHub computes it. */
  digest: string;
  created_at: string;
  updated_at: string;
  uploader: UserRecord;
  download_count: number;
}

export interface IssueRecord {
  id: number;
  number: number;
  title: string;
  body: string | null;
  state: 'open' | 'closed';
  state_reason: 'completed' | 'not_planned' | 'reopened' | 'duplicate' | null;
  labels: string[];
  assignees: string[];
  user: UserRecord;
  created_at: string;
  updated_at: string;
  closed_at: string | null;
  closed_by: UserRecord | null;
}

export interface CommentRecord {
  id: number;
  issue_number: number;
  body: string;
  user: UserRecord;
  created_at: string;
  updated_at: string;
}

export interface LabelRecord {
  id: number;
  name: string;
  color: string;
  description: string | null;
  default: boolean;
}

export interface FileRecord {
  bytes: Buffer;
  /** Git blob sha: sha1("blob <size>\0" + bytes). */
  sha: string;
}

export interface CommitRecord {
  sha: string;
  message: string;
  parent: string | null;
  author: UserRecord;
  date: string;
}

export interface CheckRunRecord {
  id: number;
  name: string;
  head_sha: string;
  status: 'queued' | 'in_progress' | 'completed' | 'waiting' | 'requested' | 'pending';
  conclusion: string | null;
  started_at: string | null;
  completed_at: string | null;
  details_url: string | null;
  external_id: string | null;
  output: { title: string | null; summary: string | null; text: string | null; annotations_count: number };
}

export interface StatusRecord {
  id: number;
  sha: string;
  state: 'error' | 'failure' | 'pending' | 'success';
  target_url: string | null;
  description: string | null;
  context: string;
  created_at: string;
  updated_at: string;
  creator: UserRecord;
}

export interface DispatchRecord {
  event_type: string;
  client_payload: Record<string, unknown> | undefined;
  token: string;
}

export interface WorkflowDispatchRecord {
  workflow_id: string;
  ref: string;
  inputs: Record<string, unknown> | undefined;
  token: string;
}

/** A workflow run GitHub would start for an event (not started for the default GITHUB_TOKEN). */
export interface TriggeredWorkflow {
  event: 'release' | 'push' | 'repository_dispatch' | 'workflow_dispatch';
  action?: string;
  ref?: string;
  detail?: Record<string, unknown>;
}

/** Git's blob id of `bytes`. */
export function gitBlobSha(bytes: Buffer): string {
  return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
}

export function sha256Digest(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export class RepositoryState {
  readonly owner: string;
  readonly repo: string;
  readonly repoId: number;
  readonly defaultBranch: string;
  readonly releases = new Map<number, ReleaseRecord>();
  readonly assets = new Map<number, AssetRecord>();
  readonly issues = new Map<number, IssueRecord>();
  readonly comments = new Map<number, CommentRecord>();
  /** Keyed by lower-cased name: GitHub label names are case-insensitive. */
  readonly labels = new Map<string, LabelRecord>();
  /** Branch name → head commit sha. */
  readonly branches = new Map<string, string>();
  readonly commits = new Map<string, CommitRecord>();
  /** Commit sha → the tree at that commit (path → file). */
  readonly trees = new Map<string, Map<string, FileRecord>>();
  /** Tag name → commit sha. */
  readonly tags = new Map<string, string>();
  readonly checkRuns = new Map<number, CheckRunRecord>();
  readonly statuses: StatusRecord[] = [];
  readonly dispatches: DispatchRecord[] = [];
  readonly workflowDispatches: WorkflowDispatchRecord[] = [];
  readonly triggeredWorkflows: TriggeredWorkflow[] = [];
  private nextId = 1000;
  private readonly now: () => Date;
  readonly seedUser: UserRecord;

  constructor(options: { owner: string; repo: string; defaultBranch: string; now: () => Date }) {
    this.owner = options.owner;
    this.repo = options.repo;
    this.repoId = 1000;
    this.defaultBranch = options.defaultBranch;
    this.now = options.now;
    this.seedUser = { login: options.owner, id: 1, type: 'User' };
    const root = this.commit(null, new Map(), 'Initial commit', this.seedUser);
    this.branches.set(this.defaultBranch, root);
  }

  id(): number {
    return ++this.nextId;
  }

  timestamp(): string {
    return this.now().toISOString().replace(/\.\d{3}Z$/, 'Z');
  }

  /** Record a commit of `tree` on top of `parent`; returns its sha. */
  commit(parent: string | null, tree: Map<string, FileRecord>, message: string, author: UserRecord): string {
    const date = this.timestamp();
    const listing = [...tree.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([p, f]) => `${f.sha} ${p}`).join('\n');
    const sha = createHash('sha1').update(`commit\0${parent ?? ''}\0${listing}\0${message}\0${date}\0${this.commits.size}`).digest('hex');
    this.commits.set(sha, { sha, message, parent, author, date });
    this.trees.set(sha, tree);
    return sha;
  }

  /** The commit sha a branch, tag or sha names; undefined when it names nothing. */
  resolveRef(ref: string | undefined): string | undefined {
    if (!ref) return this.branches.get(this.defaultBranch);
    const name = ref.replace(/^refs\/(heads|tags)\//, '');
    return this.branches.get(name) ?? this.tags.get(name) ?? (this.commits.has(ref) ? ref : undefined);
  }

  /** Files at a ref (the default branch when omitted). */
  tree(ref?: string): Map<string, FileRecord> | undefined {
    const sha = this.resolveRef(ref);
    return sha ? this.trees.get(sha) : undefined;
  }

  readFile(path: string, ref?: string): Buffer | undefined {
    return this.tree(ref)?.get(path)?.bytes;
  }

  /** Write files on a branch as one commit (seeding, or a contents API write). Returns the commit sha. */
  writeFiles(files: Record<string, string | Buffer>, options: { branch?: string; message?: string; author?: UserRecord } = {}): string {
    const branch = options.branch ?? this.defaultBranch;
    const head = this.branches.get(branch);
    if (!head) throw new Error(`no branch ${branch}`);
    const tree = new Map(this.trees.get(head));
    for (const [path, content] of Object.entries(files)) {
      const bytes = Buffer.isBuffer(content) ? content : Buffer.from(content);
      tree.set(path, { bytes, sha: gitBlobSha(bytes) });
    }
    const sha = this.commit(head, tree, options.message ?? 'Update files', options.author ?? this.seedUser);
    this.branches.set(branch, sha);
    return sha;
  }

  createBranch(name: string, from: string = this.defaultBranch): string {
    const sha = this.resolveRef(from);
    if (!sha) throw new Error(`no ref ${from}`);
    this.branches.set(name, sha);
    return sha;
  }

  findReleaseByTag(tag: string): ReleaseRecord | undefined {
    return [...this.releases.values()].find((r) => r.tag_name === tag);
  }

  /** Seed a release as if someone had made it earlier (published unless `draft`). */
  seedRelease(fields: Partial<ReleaseRecord> & { tag_name: string }): ReleaseRecord {
    const draft = fields.draft ?? false;
    const now = this.timestamp();
    const release: ReleaseRecord = {
      id: this.id(),
      target_commitish: this.defaultBranch,
      name: fields.tag_name,
      body: null,
      draft,
      prerelease: false,
      created_at: now,
      published_at: draft ? null : now,
      author: this.seedUser,
      make_latest: false,
      ...fields,
    };
    this.releases.set(release.id, release);
    if (!draft && !this.tags.has(release.tag_name)) this.tags.set(release.tag_name, this.resolveRef(release.target_commitish) ?? this.branches.get(this.defaultBranch)!);
    return release;
  }

  seedAsset(releaseId: number, name: string, content: string | Buffer, contentType = 'application/octet-stream'): AssetRecord {
    const bytes = Buffer.isBuffer(content) ? content : Buffer.from(content);
    const now = this.timestamp();
    const asset: AssetRecord = {
      id: this.id(),
      release_id: releaseId,
      name,
      label: null,
      content_type: contentType,
      bytes,
      digest: sha256Digest(bytes),
      created_at: now,
      updated_at: now,
      uploader: this.seedUser,
      download_count: 0,
    };
    this.assets.set(asset.id, asset);
    return asset;
  }

  seedLabel(name: string, color = 'ededed', description: string | null = null): LabelRecord {
    const label: LabelRecord = { id: this.id(), name, color, description, default: false };
    this.labels.set(name.toLowerCase(), label);
    return label;
  }

  /** Find a label by name, creating it like GitHub does when an issue is labelled with a new name. */
  ensureLabel(name: string): LabelRecord {
    return this.labels.get(name.toLowerCase()) ?? this.seedLabel(name);
  }

  seedIssue(fields: Partial<IssueRecord> & { title: string }): IssueRecord {
    const now = this.timestamp();
    const number = Math.max(0, ...this.issues.keys()) + 1;
    const issue: IssueRecord = {
      id: this.id(),
      number,
      body: null,
      state: 'open',
      state_reason: null,
      labels: [],
      assignees: [],
      user: this.seedUser,
      created_at: now,
      updated_at: now,
      closed_at: null,
      closed_by: null,
      ...fields,
    };
    issue.labels = issue.labels.map((l) => this.ensureLabel(l).name);
    this.issues.set(number, issue);
    return issue;
  }

  seedComment(issueNumber: number, body: string, user: UserRecord = this.seedUser): CommentRecord {
    const now = this.timestamp();
    const comment: CommentRecord = { id: this.id(), issue_number: issueNumber, body, user, created_at: now, updated_at: now };
    this.comments.set(comment.id, comment);
    return comment;
  }

  assetsOf(releaseId: number): AssetRecord[] {
    return [...this.assets.values()].filter((a) => a.release_id === releaseId).sort((a, b) => a.id - b.id);
  }

  commentsOf(issueNumber: number): CommentRecord[] {
    return [...this.comments.values()].filter((c) => c.issue_number === issueNumber).sort((a, b) => a.id - b.id);
  }
}
