// A stateful GitHub REST stand-in on loopback: an API origin, an uploads origin and an "objects"
// origin for asset bytes, every request and response checked against GitHub's OpenAPI description.
// Unknown or unimplemented operations, and any contract violation, are recorded so the test fails.

import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { operations } from '@octokit/openapi-types';
import { OpenApiContract, mediaType, type MatchedOperation } from './openapi.ts';
import { Renderer } from './render.ts';
import { RepositoryState, gitBlobSha, sha256Digest, type CheckRunRecord, type IssueRecord, type UserRecord } from './state.ts';

export type Level = 'none' | 'read' | 'write';

/** A token's access to the repository, by GitHub App permission. Omitted scopes are `write`. */
export interface Permissions {
  /** `none`: the repository is invisible to the token (404 everywhere). */
  metadata?: Level;
  contents?: Level;
  issues?: Level;
  checks?: Level;
  statuses?: Level;
  actions?: Level;
}

export interface TokenSpec {
  /** `github-actions`: the workflow's GITHUB_TOKEN (what it creates triggers no workflow). */
  kind?: 'github-actions' | 'user' | 'app';
  login?: string;
  permissions?: Permissions;
}

export type Fault =
  | { operationId: string; kind: 'status'; status?: 500 | 502 | 503 | 504; times?: number }
  | { operationId: string; kind: 'drop'; times?: number };

export type RateLimit =
  | { kind: 'primary'; times?: number; resetAt?: Date }
  | { kind: 'secondary'; status?: 403 | 429; retryAfter?: number; times?: number };

export interface RecordedRequest {
  origin: 'api' | 'uploads' | 'objects';
  method: string;
  path: string;
  operationId: string | undefined;
  status: number;
  token: string | undefined;
  /** Headers as received (objects origin tests check that no Authorization arrived). */
  headers: http.IncomingHttpHeaders;
}

export interface StandInOptions {
  owner?: string;
  repo?: string;
  defaultBranch?: string;
  /** Token → who it is and what it may do. Default: one GITHUB_TOKEN, `DEFAULT_TOKEN`, with write access. */
  tokens?: Record<string, TokenSpec>;
  /** Clock for timestamps and rate-limit resets. */
  now?: () => Date;
}

export interface HandlerContext {
  operationId: string;
  params: Record<string, string>;
  query: URLSearchParams;
  /** Parsed JSON body (or undefined). */
  body: any;
  /** Raw request bytes (asset uploads). */
  raw: Buffer;
  headers: http.IncomingHttpHeaders;
  token: string;
  tokenSpec: TokenSpec;
  user: UserRecord;
  url: URL;
}

export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Bytes sent as is (raw media types), with their content type. */
  raw?: { bytes: Buffer; contentType: string };
}

export type Handler = (ctx: HandlerContext) => Reply;

/** The JSON request body of an operation, as @octokit/openapi-types describes it (checked before handlers run). */
type JsonBody<K extends keyof operations> = operations[K] extends { requestBody?: { content: { 'application/json': infer B } } } ? B : never;

export const DEFAULT_TOKEN = 'ghs_standin_github_token';
const DOCS = 'https://docs.github.com/rest';
const GITHUB_ACTIONS_BOT: UserRecord = { login: 'github-actions[bot]', id: 41898282, type: 'Bot' };

function error(status: number, message: string, errors?: Record<string, string>[]): Reply {
  const body: Record<string, unknown> = { message, documentation_url: DOCS, status: String(status) };
  if (errors) body['errors'] = errors;
  return { status, body };
}

const notFound = (): Reply => error(404, 'Not Found');

function alreadyExists(resource: string, field: string): Reply {
  return error(422, 'Validation Failed', [{ resource, code: 'already_exists', field }]);
}

function scopeOf(operationId: string): keyof Permissions {
  if (operationId.startsWith('issues/')) return 'issues';
  if (operationId.startsWith('checks/')) return 'checks';
  if (operationId.startsWith('actions/')) return 'actions';
  if (operationId.includes('status')) return 'statuses';
  return 'contents';
}

function intParam(value: string | undefined): number {
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : -1;
}

export class GitHubStandIn {
  readonly state: RepositoryState;
  readonly contract = OpenApiContract.load();
  apiUrl = '';
  uploadsUrl = '';
  objectsUrl = '';
  readonly requests: RecordedRequest[] = [];
  private readonly violationList: string[] = [];
  private readonly called = new Map<string, number>();
  private readonly tokens = new Map<string, TokenSpec>();
  private readonly faults: Array<Fault & { left: number }> = [];
  private rateLimit: (RateLimit & { left: number }) | undefined;
  private readonly handlers: Record<string, Handler>;
  private readonly overrides = new Map<string, Handler>();
  private readonly downloadKeys = new Map<string, number>();
  private renderer!: Renderer;
  private readonly servers: http.Server[] = [];
  private readonly now: () => Date;
  private requestCount = 0;

  constructor(options: StandInOptions = {}) {
    this.now = options.now ?? (() => new Date());
    this.state = new RepositoryState({
      owner: options.owner ?? 'skin-twin',
      repo: options.repo ?? 'skin-twin-mlops',
      defaultBranch: options.defaultBranch ?? 'main',
      now: this.now,
    });
    for (const [token, spec] of Object.entries(options.tokens ?? { [DEFAULT_TOKEN]: { kind: 'github-actions' } })) {
      this.tokens.set(token, spec);
    }
    this.handlers = this.buildHandlers();
  }

  async listen(): Promise<void> {
    const start = async (origin: RecordedRequest['origin']): Promise<string> => {
      const server = http.createServer((req, res) => {
        this.handle(origin, req, res).catch((e: unknown) => {
          this.violation(`${req.method} ${req.url}: stand-in crashed: ${e instanceof Error ? e.stack : String(e)}`);
          if (!res.headersSent) res.writeHead(500).end();
        });
      });
      this.servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
      });
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    };
    this.apiUrl = await start('api');
    this.uploadsUrl = await start('uploads');
    this.objectsUrl = await start('objects');
    this.renderer = new Renderer(this.state, this, this.contract);
  }

  async close(): Promise<void> {
    await Promise.all(
      this.servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            s.closeAllConnections();
          }),
      ),
    );
  }

  // ---- what tests switch and read -------------------------------------------------------------

  setPermissions(token: string, permissions: Permissions): void {
    const spec = this.tokens.get(token);
    if (!spec) throw new Error(`unknown token ${token}`);
    spec.permissions = { ...permissions };
  }

  addToken(token: string, spec: TokenSpec): void {
    this.tokens.set(token, spec);
  }

  setRateLimit(limit: RateLimit | undefined): void {
    this.rateLimit = limit ? { ...limit, left: limit.times ?? Number.POSITIVE_INFINITY } : undefined;
  }

  setFault(fault: Fault): void {
    this.contract.operation(fault.operationId);
    this.faults.push({ ...fault, left: fault.times ?? 1 });
  }

  /** Replace an operation's handler (to model an odd answer, or to test the validator itself). */
  setHandler(operationId: string, handler: Handler): void {
    this.contract.operation(operationId);
    this.overrides.set(operationId, handler);
  }

  violations(): string[] {
    return [...this.violationList];
  }

  /** Return and forget the violations so far (for tests that provoke one on purpose). */
  takeViolations(): string[] {
    return this.violationList.splice(0);
  }

  calledOperations(): string[] {
    return [...this.called.keys()].sort();
  }

  callCount(operationId: string): number {
    return this.called.get(operationId) ?? 0;
  }

  implementedOperations(): string[] {
    return Object.keys(this.handlers).sort();
  }

  private violation(message: string): void {
    this.violationList.push(message);
  }

  // ---- the HTTP pipeline ----------------------------------------------------------------------

  private async handle(origin: RecordedRequest['origin'], req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', origin === 'api' ? this.apiUrl : origin === 'uploads' ? this.uploadsUrl : this.objectsUrl);
    const method = req.method ?? 'GET';
    const record = (operationId: string | undefined, status: number, token?: string): void => {
      this.requests.push({ origin, method, path: url.pathname + url.search, operationId, status, token, headers: req.headers });
    };
    if (origin === 'objects') {
      const raw = await readBody(req);
      const reply = this.serveObject(method, url, req.headers, raw);
      record(undefined, reply.status);
      return send(res, reply);
    }
    // GitHub serves the repository root listing at `/contents` as well as `/contents/`.
    if (/^\/repos\/[^/]+\/[^/]+\/contents$/.test(url.pathname)) url.pathname += '/';
    // Links GitHub hands out use the repository id; serve them under the owner/name path.
    const alias = /^\/repositories\/(\d+)(\/.*)?$/.exec(url.pathname);
    if (alias && Number(alias[1]) === this.state.repoId) url.pathname = `/repos/${this.state.owner}/${this.state.repo}${alias[2] ?? ''}`;

    const webDownload = origin === 'api' && method === 'GET' ? this.webDownload(url) : undefined;
    if (webDownload) {
      await readBody(req);
      record(undefined, webDownload.status);
      return send(res, webDownload);
    }

    const where = `${method} ${url.pathname}`;
    const match = this.contract.match(method, url.pathname);
    if (!match) {
      await readBody(req);
      this.violation(`${where}: no such operation in GitHub's REST description`);
      record(undefined, 404);
      return send(res, notFound());
    }
    const operationId = match.operation.operationId;
    const label = `${where} (${operationId})`;
    this.called.set(operationId, (this.called.get(operationId) ?? 0) + 1);
    this.requestCount++;

    const reply = (r: Reply, token?: string): void => {
      // A 501 is the stand-in's own refusal, already recorded; GitHub's description has no say on it.
      if (r.status !== 501) this.checkResponse(label, operationId, r, req.headers.accept);
      record(operationId, r.status, token);
      send(res, this.withRateHeaders(r));
    };

    const wantsUploads = match.operation.servers.some((s) => s.includes('uploads'));
    if (wantsUploads !== (origin === 'uploads')) {
      await readBody(req);
      this.violation(`${label}: sent to the ${origin} origin; GitHub serves it on ${wantsUploads ? 'the uploads origin' : 'the API origin'}`);
      return reply(notFound());
    }
    const handler = this.overrides.get(operationId) ?? this.handlers[operationId];
    if (!handler) {
      await readBody(req);
      this.violation(`${label}: not implemented by the GitHub stand-in`);
      return reply(error(501, `${where} (${operationId}) is not implemented by the GitHub stand-in`));
    }

    const auth = /^(?:token|bearer)\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const token = auth?.[1];
    const tokenSpec = token ? this.tokens.get(token) : undefined;

    const fault = this.takeFault(operationId);
    if (fault?.kind === 'drop') {
      // Let part of the body arrive, then cut the connection as a network failure would.
      record(operationId, 0, token);
      await new Promise<void>((resolve) => {
        req.once('data', () => resolve());
        req.once('end', () => resolve());
      });
      req.socket.destroy();
      return;
    }
    const raw = await readBody(req);

    if (!token) return reply(error(401, 'Requires authentication'));
    if (!tokenSpec) return reply(error(401, 'Bad credentials'), token);
    const limited = this.rateLimited();
    if (limited) return reply(limited, token);
    if (fault?.kind === 'status') return reply(error(fault.status ?? 502, 'Server Error'), token);

    const permissions = tokenSpec.permissions ?? {};
    if ((permissions.metadata ?? 'read') === 'none') return reply(notFound(), token);
    const scope = scopeOf(operationId);
    const needed: Level = method === 'GET' ? 'read' : 'write';
    const has = permissions[scope] ?? 'write';
    if (has === 'none' || (needed === 'write' && has === 'read')) {
      return reply(error(403, 'Resource not accessible by integration'), token);
    }

    let body: unknown;
    const ct = mediaType(req.headers['content-type']);
    if (raw.length > 0) {
      if (wantsUploads) body = raw;
      else if (ct === 'application/json' || ct === undefined) {
        try {
          body = JSON.parse(raw.toString('utf8'));
        } catch {
          this.violation(`${label}: request body is not valid JSON`);
          return reply(error(400, 'Problems parsing JSON'), token);
        }
      } else body = raw;
    }
    const problems = this.contract.checkRequest(match as MatchedOperation, { query: url.searchParams, contentType: req.headers['content-type'], body });
    if (problems.length) {
      for (const p of problems) this.violation(`${label}: request: ${p}`);
      return reply(error(422, `Invalid request.\n\n${problems.join('\n')}`), token);
    }

    const owner = match.pathParams['owner'];
    const repo = match.pathParams['repo'];
    if (owner !== undefined && (owner.toLowerCase() !== this.state.owner.toLowerCase() || repo?.toLowerCase() !== this.state.repo.toLowerCase())) {
      return reply(notFound(), token);
    }
    const user = this.userOf(token, tokenSpec);
    const result = handler({ operationId, params: match.pathParams, query: url.searchParams, body, raw, headers: req.headers, token, tokenSpec, user, url });
    reply(result, token);
  }

  private userOf(token: string, spec: TokenSpec): UserRecord {
    if ((spec.kind ?? 'user') === 'github-actions') return GITHUB_ACTIONS_BOT;
    const login = spec.login ?? (spec.kind === 'app' ? 'skin-twin-app[bot]' : this.state.owner);
    let id = 2000;
    for (const ch of token) id = (id * 31 + ch.charCodeAt(0)) % 1_000_000;
    return { login, id, type: spec.kind === 'app' ? 'Bot' : 'User' };
  }

  private takeFault(operationId: string): Fault | undefined {
    const i = this.faults.findIndex((f) => f.operationId === operationId && f.left > 0);
    if (i < 0) return undefined;
    const fault = this.faults[i]!;
    fault.left--;
    if (fault.left === 0) this.faults.splice(i, 1);
    return fault;
  }

  private rateLimited(): Reply | undefined {
    const limit = this.rateLimit;
    if (!limit || limit.left <= 0) return undefined;
    limit.left--;
    if (limit.kind === 'primary') {
      const reset = Math.floor((limit.resetAt ?? new Date(this.now().getTime() + 60_000)).getTime() / 1000);
      const r = error(403, 'API rate limit exceeded for installation. If you reach out to GitHub Support for help, please include the request ID.');
      r.headers = { 'x-ratelimit-limit': '5000', 'x-ratelimit-remaining': '0', 'x-ratelimit-used': '5000', 'x-ratelimit-reset': String(reset), 'x-ratelimit-resource': 'core' };
      return r;
    }
    const r = error(limit.status ?? 429, 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.');
    r.headers = { 'retry-after': String(limit.retryAfter ?? 60) };
    return r;
  }

  private withRateHeaders(r: Reply): Reply {
    const reset = String(Math.floor(this.now().getTime() / 1000) + 3600);
    return {
      ...r,
      headers: {
        'x-ratelimit-limit': '5000',
        'x-ratelimit-remaining': String(Math.max(0, 5000 - this.requestCount)),
        'x-ratelimit-used': String(this.requestCount),
        'x-ratelimit-reset': reset,
        'x-ratelimit-resource': 'core',
        'x-github-request-id': randomBytes(8).toString('hex').toUpperCase(),
        ...r.headers,
      },
    };
  }

  private checkResponse(label: string, operationId: string, r: Reply, accept: string | undefined): void {
    const body = r.body === undefined ? undefined : JSON.parse(JSON.stringify(r.body));
    const contentType = r.raw ? r.raw.contentType : r.body === undefined ? undefined : 'application/json; charset=utf-8';
    const problems = this.contract.checkResponse(operationId, { status: r.status, contentType, body, accept });
    for (const p of problems) this.violation(`${label}: response: ${p}`);
  }

  // ---- the objects origin: asset bytes and raw files, signed URLs, no auth ----------------------

  private serveObject(method: string, url: URL, headers: http.IncomingHttpHeaders, _raw: Buffer): Reply {
    if (headers.authorization) {
      // Signed storage URLs refuse a second credential; a client that forwards auth across origins breaks here.
      this.violation(`${method} ${url.pathname}: Authorization header forwarded to the objects origin`);
      return { status: 400, raw: { bytes: Buffer.from('Only one auth mechanism allowed'), contentType: 'text/plain' } };
    }
    if (method !== 'GET') return { status: 405, raw: { bytes: Buffer.alloc(0), contentType: 'text/plain' } };
    const asset = /^\/assets\/(\d+)$/.exec(url.pathname);
    if (asset) {
      const key = url.searchParams.get('sig') ?? '';
      const record = this.state.assets.get(Number(asset[1]));
      if (!record || this.downloadKeys.get(key) !== record.id) {
        return { status: 403, raw: { bytes: Buffer.from('Request has expired or signature does not match'), contentType: 'text/plain' } };
      }
      return {
        status: 200,
        raw: { bytes: record.bytes, contentType: 'application/octet-stream' },
        headers: { 'content-disposition': `attachment; filename=${record.name}` },
      };
    }
    const file = /^\/raw\/([^/]+)\/([^/]+)\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (file) {
      const bytes = this.state.readFile(decodeURIComponent(file[4]!), decodeURIComponent(file[3]!));
      if (bytes) return { status: 200, raw: { bytes, contentType: 'text/plain; charset=utf-8' } };
    }
    return { status: 404, raw: { bytes: Buffer.from('404: Not Found'), contentType: 'text/plain' } };
  }

  private signedAssetUrl(assetId: number): string {
    const sig = randomBytes(12).toString('hex');
    this.downloadKeys.set(sig, assetId);
    return `${this.objectsUrl}/assets/${assetId}?sig=${sig}`;
  }

  /** `browser_download_url` on the web host: a redirect to the objects origin, as on github.com. */
  private webDownload(url: URL): Reply | undefined {
    const m = /^\/([^/]+)\/([^/]+)\/releases\/download\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    if (!m || m[1] !== this.state.owner || m[2] !== this.state.repo) return undefined;
    const release = this.state.findReleaseByTag(decodeURIComponent(m[3]!));
    const asset = release && !release.draft ? this.state.assetsOf(release.id).find((a) => a.name === decodeURIComponent(m[4]!)) : undefined;
    if (!asset) return { status: 404, raw: { bytes: Buffer.from('Not Found'), contentType: 'text/plain' } };
    asset.download_count++;
    return { status: 302, headers: { location: this.signedAssetUrl(asset.id) } };
  }

  // ---- pagination -----------------------------------------------------------------------------

  private paginate<T>(ctx: HandlerContext, items: T[]): Reply {
    const perPage = Math.min(100, Math.max(1, Number(ctx.query.get('per_page') ?? 30) || 30));
    const page = Math.max(1, Number(ctx.query.get('page') ?? 1) || 1);
    const last = Math.max(1, Math.ceil(items.length / perPage));
    const link = (p: number, rel: string): string => {
      const u = new URL(ctx.url.pathname + ctx.url.search, this.apiUrl);
      u.searchParams.set('page', String(p));
      return `<${u.toString()}>; rel="${rel}"`;
    };
    const links: string[] = [];
    if (page > 1) links.push(link(page - 1, 'prev'));
    if (page < last) links.push(link(page + 1, 'next'), link(last, 'last'));
    if (page > 1) links.push(link(1, 'first'));
    const reply: Reply = { status: 200, body: items.slice((page - 1) * perPage, page * perPage) };
    if (links.length) reply.headers = { link: links.join(', ') };
    return reply;
  }

  // ---- workflow triggers ----------------------------------------------------------------------

  /** GitHub starts no workflow for events caused by the GITHUB_TOKEN (dispatch events excepted). */
  private trigger(ctx: HandlerContext, event: Parameters<RepositoryState['triggeredWorkflows']['push']>[0]): void {
    const exempt = event.event === 'repository_dispatch' || event.event === 'workflow_dispatch';
    if (!exempt && (ctx.tokenSpec.kind ?? 'user') === 'github-actions') return;
    this.state.triggeredWorkflows.push(event);
  }

  private createTag(ctx: HandlerContext, tag: string, target: string): void {
    if (this.state.tags.has(tag)) return;
    this.state.tags.set(tag, this.state.resolveRef(target) ?? this.state.resolveRef(undefined)!);
    this.trigger(ctx, { event: 'push', ref: `refs/tags/${tag}` });
  }

  // ---- operations -----------------------------------------------------------------------------

  private buildHandlers(): Record<string, Handler> {
    const s = this.state;
    const r = (): Renderer => this.renderer;
    const release = (ctx: HandlerContext) => s.releases.get(intParam(ctx.params['release_id']));
    const asset = (ctx: HandlerContext) => s.assets.get(intParam(ctx.params['asset_id']));
    const issue = (ctx: HandlerContext) => s.issues.get(intParam(ctx.params['issue_number']));
    const comment = (ctx: HandlerContext) => s.comments.get(intParam(ctx.params['comment_id']));
    const label = (ctx: HandlerContext) => s.labels.get((ctx.params['name'] ?? '').toLowerCase());
    const newestFirst = <T extends { id: number }>(list: T[]): T[] => [...list].sort((a, b) => b.id - a.id);
    const publish = (ctx: HandlerContext, rel: NonNullable<ReturnType<typeof release>>): void => {
      rel.published_at = s.timestamp();
      this.createTag(ctx, rel.tag_name, rel.target_commitish);
      this.trigger(ctx, { event: 'release', action: 'published', detail: { tag_name: rel.tag_name, id: rel.id } });
    };
    const validColor = (c: unknown) => typeof c === 'string' && /^#?[0-9a-fA-F]{6}$/.test(c);
    const setIssueLabels = (i: IssueRecord, names: string[]) => {
      const seen = new Set(i.labels.map((l) => l.toLowerCase()));
      for (const n of names) {
        const l = s.ensureLabel(n);
        if (!seen.has(l.name.toLowerCase())) {
          i.labels.push(l.name);
          seen.add(l.name.toLowerCase());
        }
      }
    };
    const labelNames = (body: unknown): string[] => {
      const raw = Array.isArray(body) ? body : (body as { labels?: unknown })?.labels;
      const list = Array.isArray(raw) ? raw : typeof raw === 'string' ? [raw] : [];
      return list.map((l) => (typeof l === 'string' ? l : String((l as { name?: unknown }).name)));
    };

    const handlers: Record<string, Handler> = {
      // Releases
      'repos/create-release': (ctx) => {
        const b = ctx.body as JsonBody<'repos/create-release'>;
        if (s.findReleaseByTag(b.tag_name)) return alreadyExists('Release', 'tag_name');
        const target = b.target_commitish ?? s.defaultBranch;
        if (!s.tags.has(b.tag_name) && !s.resolveRef(target)) {
          return error(422, 'Validation Failed', [{ resource: 'Release', code: 'invalid', field: 'target_commitish' }]);
        }
        const now = s.timestamp();
        const rel = {
          id: s.id(),
          tag_name: b.tag_name,
          target_commitish: target,
          name: b.name ?? null,
          body: b.body ?? null,
          draft: b.draft ?? false,
          prerelease: b.prerelease ?? false,
          created_at: now,
          published_at: null as string | null,
          author: ctx.user,
          make_latest: b.make_latest === 'true',
        };
        s.releases.set(rel.id, rel);
        if (!rel.draft) publish(ctx, rel);
        return { status: 201, body: r().release(rel), headers: { location: `${r().repoApi}/releases/${rel.id}` } };
      },
      'repos/get-release': (ctx) => {
        const rel = release(ctx);
        return rel ? { status: 200, body: r().release(rel) } : notFound();
      },
      'repos/get-release-by-tag': (ctx) => {
        // Drafts have no tag yet: GitHub does not find them by tag name.
        const rel = s.findReleaseByTag(ctx.params['tag'] ?? '');
        return rel && !rel.draft ? { status: 200, body: r().release(rel) } : notFound();
      },
      'repos/get-latest-release': () => {
        const published = [...s.releases.values()].filter((x) => !x.draft && !x.prerelease);
        const chosen = published.find((x) => x.make_latest) ?? published.sort((a, b) => (b.published_at ?? '').localeCompare(a.published_at ?? '') || b.id - a.id)[0];
        return chosen ? { status: 200, body: r().release(chosen) } : notFound();
      },
      'repos/list-releases': (ctx) => this.paginate(ctx, newestFirst([...s.releases.values()]).map((x) => r().release(x))),
      'repos/update-release': (ctx) => {
        const rel = release(ctx);
        if (!rel) return notFound();
        const b = ctx.body as JsonBody<'repos/update-release'>;
        if (b.tag_name !== undefined && b.tag_name !== rel.tag_name) {
          if (s.findReleaseByTag(b.tag_name)) return alreadyExists('Release', 'tag_name');
          rel.tag_name = b.tag_name;
        }
        if (b.target_commitish !== undefined) rel.target_commitish = b.target_commitish;
        if (b.name !== undefined) rel.name = b.name;
        if (b.body !== undefined) rel.body = b.body;
        if (b.prerelease !== undefined) rel.prerelease = b.prerelease;
        if (b.make_latest !== undefined) {
          for (const other of s.releases.values()) other.make_latest = false;
          rel.make_latest = b.make_latest === 'true';
        }
        if (b.draft === false && rel.draft) {
          rel.draft = false;
          publish(ctx, rel);
        } else if (b.draft === true && !rel.draft) {
          rel.draft = true;
          rel.published_at = null;
        }
        return { status: 200, body: r().release(rel) };
      },
      'repos/delete-release': (ctx) => {
        const rel = release(ctx);
        if (!rel) return notFound();
        for (const a of s.assetsOf(rel.id)) s.assets.delete(a.id);
        s.releases.delete(rel.id);
        return { status: 204 };
      },
      // Release assets
      'repos/upload-release-asset': (ctx) => {
        const rel = release(ctx);
        if (!rel) return notFound();
        const name = ctx.query.get('name') ?? '';
        if (s.assetsOf(rel.id).some((a) => a.name === name)) return alreadyExists('ReleaseAsset', 'name');
        const bytes = ctx.raw;
        const now = s.timestamp();
        const a = {
          id: s.id(),
          release_id: rel.id,
          name,
          label: ctx.query.get('label'),
          content_type: ctx.headers['content-type'] ?? 'application/octet-stream',
          bytes,
          digest: sha256Digest(bytes),
          created_at: now,
          updated_at: now,
          uploader: ctx.user,
          download_count: 0,
        };
        s.assets.set(a.id, a);
        return { status: 201, body: r().asset(a) };
      },
      'repos/list-release-assets': (ctx) => {
        const rel = release(ctx);
        if (!rel) return notFound();
        return this.paginate(ctx, s.assetsOf(rel.id).map((a) => r().asset(a)));
      },
      'repos/get-release-asset': (ctx) => {
        const a = asset(ctx);
        if (!a) return notFound();
        if (/application\/octet-stream/.test(ctx.headers.accept ?? '')) {
          a.download_count++;
          return { status: 302, headers: { location: this.signedAssetUrl(a.id) } };
        }
        return { status: 200, body: r().asset(a) };
      },
      'repos/update-release-asset': (ctx) => {
        const a = asset(ctx);
        if (!a) return notFound();
        const b = ctx.body as JsonBody<'repos/update-release-asset'>;
        if (b.name !== undefined && b.name !== a.name) {
          if (s.assetsOf(a.release_id).some((x) => x.name === b.name)) return alreadyExists('ReleaseAsset', 'name');
          a.name = b.name;
        }
        if (b.label !== undefined) a.label = b.label;
        a.updated_at = s.timestamp();
        return { status: 200, body: r().asset(a) };
      },
      'repos/delete-release-asset': (ctx) => {
        const a = asset(ctx);
        if (!a) return notFound();
        s.assets.delete(a.id);
        return { status: 204 };
      },
      // Issues
      'issues/create': (ctx) => {
        const b = ctx.body as JsonBody<'issues/create'>;
        const i = s.seedIssue({ title: String(b.title), body: b.body ?? null, user: ctx.user, assignees: b.assignees ?? [] });
        setIssueLabels(i, labelNames({ labels: b.labels ?? [] }));
        return { status: 201, body: r().issue(i), headers: { location: `${r().repoApi}/issues/${i.number}` } };
      },
      'issues/get': (ctx) => {
        const i = issue(ctx);
        return i ? { status: 200, body: r().issue(i) } : notFound();
      },
      'issues/list-for-repo': (ctx) => {
        const state = ctx.query.get('state') ?? 'open';
        const wanted = (ctx.query.get('labels') ?? '').split(',').map((l) => l.trim().toLowerCase()).filter(Boolean);
        const creator = ctx.query.get('creator');
        const sort = ctx.query.get('sort') ?? 'created';
        const asc = ctx.query.get('direction') === 'asc';
        const list = [...s.issues.values()]
          .filter((i) => state === 'all' || i.state === state)
          .filter((i) => wanted.every((w) => i.labels.some((l) => l.toLowerCase() === w)))
          .filter((i) => !creator || i.user.login === creator)
          .sort((a, b) => {
            const key = (i: IssueRecord) => (sort === 'updated' ? i.updated_at : sort === 'comments' ? String(s.commentsOf(i.number).length).padStart(9, '0') : i.created_at);
            const c = key(a).localeCompare(key(b)) || a.number - b.number;
            return asc ? c : -c;
          });
        return this.paginate(ctx, list.map((i) => r().issue(i)));
      },
      'issues/update': (ctx) => {
        const i = issue(ctx);
        if (!i) return notFound();
        const b = ctx.body as JsonBody<'issues/update'>;
        if (b.title !== undefined) i.title = String(b.title);
        if (b.body !== undefined) i.body = b.body;
        if (b.labels !== undefined) {
          i.labels = [];
          setIssueLabels(i, labelNames({ labels: b.labels }));
        }
        if (b.assignees !== undefined && b.assignees !== null) i.assignees = b.assignees.map((a) => (typeof a === 'string' ? a : (a.login ?? '')));
        if (b.state === 'closed' && i.state === 'open') {
          i.state = 'closed';
          i.state_reason = b.state_reason ?? 'completed';
          i.closed_at = s.timestamp();
          i.closed_by = ctx.user;
        } else if (b.state === 'open' && i.state === 'closed') {
          i.state = 'open';
          i.state_reason = 'reopened';
          i.closed_at = null;
          i.closed_by = null;
        } else if (b.state_reason !== undefined && i.state === 'closed') {
          i.state_reason = b.state_reason;
        }
        i.updated_at = s.timestamp();
        return { status: 200, body: r().issue(i) };
      },
      // Issue comments (pull-request conversation comments are issue comments)
      'issues/create-comment': (ctx) => {
        const i = issue(ctx);
        if (!i) return notFound();
        const c = s.seedComment(i.number, (ctx.body as JsonBody<'issues/create-comment'>).body, ctx.user);
        i.updated_at = c.created_at;
        return { status: 201, body: r().comment(c), headers: { location: `${r().repoApi}/issues/comments/${c.id}` } };
      },
      'issues/list-comments': (ctx) => {
        const i = issue(ctx);
        if (!i) return notFound();
        const since = ctx.query.get('since');
        const list = s.commentsOf(i.number).filter((c) => !since || c.updated_at >= since);
        return this.paginate(ctx, list.map((c) => r().comment(c)));
      },
      'issues/get-comment': (ctx) => {
        const c = comment(ctx);
        return c ? { status: 200, body: r().comment(c) } : notFound();
      },
      'issues/update-comment': (ctx) => {
        const c = comment(ctx);
        if (!c) return notFound();
        c.body = (ctx.body as JsonBody<'issues/update-comment'>).body;
        c.updated_at = s.timestamp();
        return { status: 200, body: r().comment(c) };
      },
      'issues/delete-comment': (ctx) => {
        const c = comment(ctx);
        if (!c) return notFound();
        s.comments.delete(c.id);
        return { status: 204 };
      },
      // Labels
      'issues/create-label': (ctx) => {
        const b = ctx.body as JsonBody<'issues/create-label'>;
        if (b.color !== undefined && !validColor(b.color)) return error(422, 'Validation Failed', [{ resource: 'Label', code: 'invalid', field: 'color' }]);
        if (s.labels.has(b.name.toLowerCase())) return alreadyExists('Label', 'name');
        const l = s.seedLabel(b.name, (b.color ?? 'ededed').replace(/^#/, ''), b.description ?? null);
        return { status: 201, body: r().label(l) };
      },
      'issues/list-labels-for-repo': (ctx) => this.paginate(ctx, [...s.labels.values()].sort((a, b) => a.name.localeCompare(b.name)).map((l) => r().label(l))),
      'issues/get-label': (ctx) => {
        const l = label(ctx);
        return l ? { status: 200, body: r().label(l) } : notFound();
      },
      'issues/update-label': (ctx) => {
        const l = label(ctx);
        if (!l) return notFound();
        const b = ctx.body as JsonBody<'issues/update-label'>;
        if (b.color !== undefined && !validColor(b.color)) return error(422, 'Validation Failed', [{ resource: 'Label', code: 'invalid', field: 'color' }]);
        if (b.new_name !== undefined && b.new_name.toLowerCase() !== l.name.toLowerCase()) {
          if (s.labels.has(b.new_name.toLowerCase())) return alreadyExists('Label', 'name');
          s.labels.delete(l.name.toLowerCase());
          for (const i of s.issues.values()) i.labels = i.labels.map((n) => (n === l.name ? b.new_name! : n));
          l.name = b.new_name;
          s.labels.set(l.name.toLowerCase(), l);
        }
        if (b.color !== undefined) l.color = b.color.replace(/^#/, '');
        if (b.description !== undefined) l.description = b.description;
        return { status: 200, body: r().label(l) };
      },
      'issues/delete-label': (ctx) => {
        const l = label(ctx);
        if (!l) return notFound();
        s.labels.delete(l.name.toLowerCase());
        for (const i of s.issues.values()) i.labels = i.labels.filter((n) => n !== l.name);
        return { status: 204 };
      },
      'issues/list-labels-on-issue': (ctx) => {
        const i = issue(ctx);
        if (!i) return notFound();
        return this.paginate(ctx, i.labels.map((n) => r().label(s.ensureLabel(n))));
      },
      'issues/add-labels': (ctx) => {
        const i = issue(ctx);
        if (!i) return notFound();
        setIssueLabels(i, labelNames(ctx.body));
        i.updated_at = s.timestamp();
        return { status: 200, body: i.labels.map((n) => r().label(s.ensureLabel(n))) };
      },
      'issues/remove-label': (ctx) => {
        const i = issue(ctx);
        if (!i) return notFound();
        const name = (ctx.params['name'] ?? '').toLowerCase();
        if (!i.labels.some((n) => n.toLowerCase() === name)) return error(404, 'Label does not exist');
        i.labels = i.labels.filter((n) => n.toLowerCase() !== name);
        i.updated_at = s.timestamp();
        return { status: 200, body: i.labels.map((n) => r().label(s.ensureLabel(n))) };
      },
      // Repository contents
      'repos/get-content': (ctx) => {
        const ref = ctx.query.get('ref') ?? s.defaultBranch;
        const tree = s.tree(ref);
        if (!tree) return error(404, `No commit found for the ref ${ref}`);
        const path = (ctx.params['path'] ?? '').replace(/^\/+|\/+$/g, '');
        const file = tree.get(path);
        if (file) {
          const rawType = /application\/vnd\.github(\.v3)?\.raw/.exec(ctx.headers.accept ?? '');
          if (rawType) return { status: 200, raw: { bytes: file.bytes, contentType: `${rawType[0]}; charset=utf-8` } };
          return { status: 200, body: r().fileContent(path, file, ref) };
        }
        const prefix = path ? `${path}/` : '';
        const children = new Map<string, 'file' | 'dir'>();
        for (const p of tree.keys()) {
          if (!p.startsWith(prefix)) continue;
          const rest = p.slice(prefix.length);
          const slash = rest.indexOf('/');
          children.set(slash < 0 ? rest : rest.slice(0, slash), slash < 0 ? 'file' : 'dir');
        }
        if (!children.size) return notFound();
        const entries = [...children.entries()]
          // Git tree order: by bytes, so `README.md` comes before `models`.
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([name, type]) => {
            const full = prefix + name;
            if (type === 'file') return r().fileEntry(full, tree.get(full)!, ref);
            return r().dirEntry(full, gitBlobSha(Buffer.from(full)), ref);
          });
        return { status: 200, body: entries };
      },
      'repos/create-or-update-file-contents': (ctx) => {
        const b = ctx.body as JsonBody<'repos/create-or-update-file-contents'>;
        const branch = b.branch ?? s.defaultBranch;
        const head = s.branches.get(branch);
        if (!head) return error(404, `Branch ${branch} not found`);
        const path = (ctx.params['path'] ?? '').replace(/^\/+/, '');
        if (!/^[A-Za-z0-9+/\r\n]*={0,2}[\r\n]*$/.test(b.content)) return error(422, 'content is not valid Base64');
        const existing = s.trees.get(head)!.get(path);
        if (existing && b.sha === undefined) return error(422, `Invalid request.\n\n"sha" wasn't supplied.`);
        if (existing && b.sha !== existing.sha) return error(409, `${path} does not match ${b.sha}`);
        const bytes = Buffer.from(b.content, 'base64');
        const commitSha = s.writeFiles({ [path]: bytes }, { branch, message: b.message, author: ctx.user });
        this.trigger(ctx, { event: 'push', ref: `refs/heads/${branch}`, detail: { after: commitSha } });
        const file = s.trees.get(commitSha)!.get(path)!;
        return { status: existing ? 200 : 201, body: { content: r().fileEntry(path, file, branch), commit: r().commit(s.commits.get(commitSha)!) } };
      },
      // Check runs
      'checks/create': (ctx) => {
        const b = ctx.body as JsonBody<'checks/create'>;
        const status = b.conclusion ? 'completed' : (b.status ?? 'queued');
        const now = s.timestamp();
        const run: CheckRunRecord = {
          id: s.id(),
          name: b.name,
          head_sha: b.head_sha,
          status,
          conclusion: b.conclusion ?? null,
          started_at: b.started_at ?? now,
          completed_at: status === 'completed' ? (b.completed_at ?? now) : null,
          details_url: b.details_url ?? null,
          external_id: b.external_id ?? null,
          output: { title: b.output?.title ?? null, summary: b.output?.summary ?? null, text: b.output?.text ?? null, annotations_count: 0 },
        };
        if (status === 'completed' && !run.conclusion) return error(422, 'Validation Failed', [{ resource: 'CheckRun', code: 'missing_field', field: 'conclusion' }]);
        s.checkRuns.set(run.id, run);
        return { status: 201, body: r().checkRun(run) };
      },
      'checks/get': (ctx) => {
        const run = s.checkRuns.get(intParam(ctx.params['check_run_id']));
        return run ? { status: 200, body: r().checkRun(run) } : notFound();
      },
      'checks/update': (ctx) => {
        const run = s.checkRuns.get(intParam(ctx.params['check_run_id']));
        if (!run) return notFound();
        const b = ctx.body as JsonBody<'checks/update'>;
        if (b.name !== undefined) run.name = b.name;
        if (b.details_url !== undefined) run.details_url = b.details_url;
        if (b.external_id !== undefined) run.external_id = b.external_id;
        if (b.status !== undefined) run.status = b.status;
        if (b.conclusion !== undefined) {
          run.conclusion = b.conclusion;
          run.status = 'completed';
        }
        if (run.status === 'completed') run.completed_at = b.completed_at ?? run.completed_at ?? s.timestamp();
        if (b.output) run.output = { ...run.output, ...Object.fromEntries(Object.entries(b.output).filter(([, v]) => v !== undefined)) };
        return { status: 200, body: r().checkRun(run) };
      },
      'checks/list-for-ref': (ctx) => {
        const sha = s.resolveRef(ctx.params['ref']) ?? ctx.params['ref'];
        const name = ctx.query.get('check_name');
        const status = ctx.query.get('status');
        let runs = [...s.checkRuns.values()].filter((c) => c.head_sha === sha && (!name || c.name === name) && (!status || c.status === status));
        if ((ctx.query.get('filter') ?? 'latest') === 'latest') {
          const latest = new Map<string, CheckRunRecord>();
          for (const c of runs) if ((latest.get(c.name)?.id ?? 0) < c.id) latest.set(c.name, c);
          runs = [...latest.values()];
        }
        const page = this.paginate(ctx, newestFirst(runs).map((c) => r().checkRun(c)));
        return { ...page, body: { total_count: runs.length, check_runs: page.body } };
      },
      // Commit statuses
      'repos/create-commit-status': (ctx) => {
        const b = ctx.body as JsonBody<'repos/create-commit-status'>;
        const now = s.timestamp();
        const st = {
          id: s.id(),
          sha: ctx.params['sha'] ?? '',
          state: b.state,
          target_url: b.target_url ?? null,
          description: b.description ?? null,
          context: b.context ?? 'default',
          created_at: now,
          updated_at: now,
          creator: ctx.user,
        };
        s.statuses.push(st);
        return { status: 201, body: r().status(st) };
      },
      'repos/list-commit-statuses-for-ref': (ctx) => {
        const sha = s.resolveRef(ctx.params['ref']) ?? ctx.params['ref'];
        return this.paginate(ctx, newestFirst(s.statuses.filter((x) => x.sha === sha)).map((x) => r().status(x)));
      },
      'repos/get-combined-status-for-ref': (ctx) => {
        const sha = s.resolveRef(ctx.params['ref']) ?? ctx.params['ref'] ?? '';
        const latest = new Map<string, (typeof s.statuses)[number]>();
        for (const x of newestFirst(s.statuses.filter((st) => st.sha === sha))) if (!latest.has(x.context)) latest.set(x.context, x);
        const list = [...latest.values()];
        const state = list.some((x) => x.state === 'error' || x.state === 'failure') ? 'failure' : list.length === 0 || list.some((x) => x.state === 'pending') ? 'pending' : 'success';
        return {
          status: 200,
          body: {
            state,
            statuses: list.map((x) => {
              const { creator: _creator, ...simple } = r().status(x);
              return simple;
            }),
            sha,
            total_count: list.length,
            repository: r().minimalRepository(),
            commit_url: `${r().repoApi}/commits/${sha}`,
            url: `${r().repoApi}/commits/${sha}/status`,
          },
        };
      },
      // Dispatches
      'repos/create-dispatch-event': (ctx) => {
        const b = ctx.body as JsonBody<'repos/create-dispatch-event'>;
        s.dispatches.push({ event_type: b.event_type, client_payload: b.client_payload, token: ctx.token });
        this.trigger(ctx, { event: 'repository_dispatch', action: b.event_type, detail: { client_payload: b.client_payload ?? {} } });
        return { status: 204 };
      },
      'actions/create-workflow-dispatch': (ctx) => {
        const b = ctx.body as JsonBody<'actions/create-workflow-dispatch'>;
        if (!s.resolveRef(b.ref)) return error(422, `No ref found for: ${b.ref}`);
        const workflowId = ctx.params['workflow_id'] ?? '';
        s.workflowDispatches.push({ workflow_id: workflowId, ref: b.ref, inputs: b.inputs, token: ctx.token });
        this.trigger(ctx, { event: 'workflow_dispatch', ref: b.ref, detail: { workflow_id: workflowId, inputs: b.inputs ?? {} } });
        if (b.return_run_details) {
          const runId = s.id();
          return { status: 200, body: { workflow_run_id: runId, run_url: `${r().repoApi}/actions/runs/${runId}`, html_url: `${r().html}/actions/runs/${runId}` } };
        }
        return { status: 204 };
      },
    };
    return handlers;
  }
}

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function send(res: http.ServerResponse, r: Reply): void {
  const headers: Record<string, string> = { ...r.headers };
  let payload: Buffer | undefined;
  if (r.raw) {
    payload = r.raw.bytes;
    headers['content-type'] = r.raw.contentType;
  } else if (r.body !== undefined) {
    payload = Buffer.from(JSON.stringify(r.body));
    headers['content-type'] = 'application/json; charset=utf-8';
  }
  if (payload) headers['content-length'] = String(payload.length);
  res.writeHead(r.status, headers);
  res.end(payload);
}
