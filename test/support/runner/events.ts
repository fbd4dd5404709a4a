// Event payloads as GitHub delivers them to a workflow (GITHUB_EVENT_PATH), complete enough to
// satisfy the `webhook-*` schemas of GitHub's OpenAPI description (a test checks that).

export interface EventRepository {
  owner: string;
  name: string;
  defaultBranch?: string;
}

const defaultRepo: EventRepository = { owner: 'skin-twin', name: 'skin-twin-mlops' };
const fixedTime = '2026-11-20T09:30:00Z';

function user(login: string, id: number) {
  const api = `https://api.github.com/users/${login}`;
  return {
    login,
    id,
    node_id: `MDQ6VXNlcj${id}`,
    avatar_url: `https://avatars.githubusercontent.com/u/${id}?v=4`,
    gravatar_id: '',
    url: api,
    html_url: `https://github.com/${login}`,
    followers_url: `${api}/followers`,
    following_url: `${api}/following{/other_user}`,
    gists_url: `${api}/gists{/gist_id}`,
    starred_url: `${api}/starred{/owner}{/repo}`,
    subscriptions_url: `${api}/subscriptions`,
    organizations_url: `${api}/orgs`,
    repos_url: `${api}/repos`,
    events_url: `${api}/events{/privacy}`,
    received_events_url: `${api}/received_events`,
    type: 'User',
    user_view_type: 'public',
    site_admin: false,
  };
}

/** The repository object of a webhook payload (push events use epoch seconds for some dates). */
export function eventRepository(repo: EventRepository = defaultRepo, forPush = false) {
  const full = `${repo.owner}/${repo.name}`;
  const api = `https://api.github.com/repos/${full}`;
  const urls: Record<string, string> = {};
  for (const [key, path] of Object.entries({
    archive_url: '/{archive_format}{/ref}',
    assignees_url: '/assignees{/user}',
    blobs_url: '/git/blobs{/sha}',
    branches_url: '/branches{/branch}',
    collaborators_url: '/collaborators{/collaborator}',
    comments_url: '/comments{/number}',
    commits_url: '/commits{/sha}',
    compare_url: '/compare/{base}...{head}',
    contents_url: '/contents/{+path}',
    contributors_url: '/contributors',
    deployments_url: '/deployments',
    downloads_url: '/downloads',
    events_url: '/events',
    forks_url: '/forks',
    git_commits_url: '/git/commits{/sha}',
    git_refs_url: '/git/refs{/sha}',
    git_tags_url: '/git/tags{/sha}',
    hooks_url: '/hooks',
    issue_comment_url: '/issues/comments{/number}',
    issue_events_url: '/issues/events{/number}',
    issues_url: '/issues{/number}',
    keys_url: '/keys{/key_id}',
    labels_url: '/labels{/name}',
    languages_url: '/languages',
    merges_url: '/merges',
    milestones_url: '/milestones{/number}',
    notifications_url: '/notifications{?since,all,participating}',
    pulls_url: '/pulls{/number}',
    releases_url: '/releases{/id}',
    stargazers_url: '/stargazers',
    statuses_url: '/statuses/{sha}',
    subscribers_url: '/subscribers',
    subscription_url: '/subscription',
    tags_url: '/tags',
    teams_url: '/teams',
    trees_url: '/git/trees{/sha}',
  })) {
    urls[key] = `${api}${path}`;
  }
  const owner = { ...user(repo.owner, 90_001), type: 'Organization', name: repo.owner, email: null };
  return {
    id: 700_000_001,
    node_id: 'R_kgDOKsKinTw',
    name: repo.name,
    full_name: full,
    private: false,
    owner,
    html_url: `https://github.com/${full}`,
    description: 'GitHub Actions-native MLOps pipeline for the Skin-Twin models',
    fork: false,
    url: forPush ? `https://github.com/${full}` : api,
    ...urls,
    created_at: forPush ? 1_735_689_600 : '2025-01-01T00:00:00Z',
    updated_at: fixedTime,
    pushed_at: forPush ? 1_763_631_000 : fixedTime,
    git_url: `git://github.com/${full}.git`,
    ssh_url: `git@github.com:${full}.git`,
    clone_url: `https://github.com/${full}.git`,
    svn_url: `https://github.com/${full}`,
    homepage: null,
    size: 1024,
    stargazers_count: 0,
    watchers_count: 0,
    language: 'TypeScript',
    has_issues: true,
    has_projects: false,
    has_downloads: true,
    has_wiki: false,
    has_pages: false,
    has_discussions: false,
    forks_count: 0,
    mirror_url: null,
    archived: false,
    disabled: false,
    open_issues_count: 0,
    license: null,
    allow_forking: true,
    is_template: false,
    web_commit_signoff_required: false,
    topics: [],
    visibility: 'public',
    forks: 0,
    open_issues: 0,
    watchers: 0,
    default_branch: repo.defaultBranch ?? 'main',
    stargazers: 0,
    master_branch: repo.defaultBranch ?? 'main',
    ...(forPush ? { organization: repo.owner } : {}),
  };
}

export interface PushEventOptions {
  repository?: EventRepository;
  /** Full ref, default refs/heads/main. */
  ref?: string;
  before?: string;
  after?: string;
  message?: string;
  added?: string[];
  modified?: string[];
  removed?: string[];
  pusher?: string;
}

/** A push event payload: one commit changing the given files. */
export function pushEvent(o: PushEventOptions = {}) {
  const repo = o.repository ?? defaultRepo;
  const full = `${repo.owner}/${repo.name}`;
  const before = o.before ?? '9d6c1b5e0b1f7c2a4e3d8f6a5b4c3d2e1f0a9b8c';
  const after = o.after ?? '3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a';
  const login = o.pusher ?? 'mona';
  const author = { name: 'Mona Lisa', email: `${login}@users.noreply.github.com`, username: login };
  const commit = {
    id: after,
    tree_id: 'e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2',
    distinct: true,
    message: o.message ?? 'Update the data pipeline',
    timestamp: '2026-11-20T10:29:50+01:00',
    url: `https://github.com/${full}/commit/${after}`,
    author,
    committer: { name: 'GitHub', email: 'noreply@github.com', username: 'web-flow' },
    added: o.added ?? [],
    removed: o.removed ?? [],
    modified: o.modified ?? ['pipeline/pipeline.yaml'],
  };
  return {
    ref: o.ref ?? 'refs/heads/main',
    before,
    after,
    repository: eventRepository(repo, true),
    pusher: { name: login, email: author.email },
    sender: user(login, 583_231),
    created: false,
    deleted: false,
    forced: false,
    base_ref: null,
    compare: `https://github.com/${full}/compare/${before.slice(0, 12)}...${after.slice(0, 12)}`,
    commits: [commit],
    head_commit: commit,
  };
}
