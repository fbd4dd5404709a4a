// A loopback stand-in for the Actions results service (Twirp JSON: CacheService, ArtifactService)
// and for the Azure blob storage its signed URLs point at, on a second origin. It is driven only
// through the real @actions/cache and @actions/artifact, and parses every request body with those
// libraries' own generated message types, rejecting unknown fields, so it stays as strict as the
// wire format they speak.

import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  CreateCacheEntryRequest,
  CreateCacheEntryResponse,
  FinalizeCacheEntryUploadRequest,
  FinalizeCacheEntryUploadResponse,
  GetCacheEntryDownloadURLRequest,
  GetCacheEntryDownloadURLResponse,
} from '../../../node_modules/@actions/cache/lib/generated/results/api/v1/cache.js';
import {
  CreateArtifactRequest,
  CreateArtifactResponse,
  DeleteArtifactRequest,
  DeleteArtifactResponse,
  FinalizeArtifactRequest,
  FinalizeArtifactResponse,
  GetSignedArtifactURLRequest,
  GetSignedArtifactURLResponse,
  ListArtifactsRequest,
  ListArtifactsResponse,
  Timestamp,
} from '../../../node_modules/@actions/artifact/lib/generated/index.js';
import { makeRuntimeToken, type RuntimeScope } from './token.ts';

const cacheService = 'github.actions.results.api.v1.CacheService';
const artifactService = 'github.actions.results.api.v1.ArtifactService';
const account = 'devstoreaccount1';
/** Twirp caps bodies well below this; blobs in tests are small. */
const maxTwirpBody = 1 << 20;
const maxBlobBody = 256 << 20;

type TwirpCode =
  | 'invalid_argument'
  | 'malformed'
  | 'unauthenticated'
  | 'permission_denied'
  | 'not_found'
  | 'already_exists'
  | 'failed_precondition'
  | 'bad_route'
  | 'internal'
  | 'unavailable';

const twirpStatus: Record<TwirpCode, number> = {
  invalid_argument: 400,
  malformed: 400,
  unauthenticated: 401,
  permission_denied: 403,
  not_found: 404,
  bad_route: 404,
  already_exists: 409,
  failed_precondition: 412,
  internal: 500,
  unavailable: 503,
};

class TwirpError extends Error {
  constructor(
    readonly code: TwirpCode,
    message: string,
  ) {
    super(message);
  }
}

class BlobError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The shape of the generated protobuf-ts message types this stand-in uses. */
interface MessageCodec<T> {
  fromJson(json: unknown, options?: { ignoreUnknownFields?: boolean }): T;
  toJson(message: T, options?: { useProtoFieldName?: boolean; emitDefaultValues?: boolean }): unknown;
  create(value?: Partial<T>): T;
}

interface BlobRecord {
  container: string;
  name: string;
  writeSig: string;
  readSig: string;
  contentType: string;
  data?: Buffer;
  /** Staged (uncommitted) blocks by base64 block id. */
  blocks: Map<string, Buffer>;
  lastModified: Date;
}

export interface CacheEntryState {
  id: number;
  key: string;
  version: string;
  finalized: boolean;
  sizeBytes: number | undefined;
  createdAt: Date;
}

export interface ArtifactState {
  id: number;
  runId: string;
  jobId: string;
  name: string;
  finalized: boolean;
  size: number | undefined;
  digest: string | undefined;
  mimeType: string;
  createdAt: Date;
  expiresAt: Date | undefined;
}

export interface RecordedCall {
  target: 'twirp' | 'blob';
  /** `CacheService/CreateCacheEntry`, or for blobs `PUT block`, `PUT blocklist`, `PUT blob`, `GET blob`. */
  method: string;
  status: number;
}

export interface Fault {
  target: 'twirp' | 'blob';
  /** Only calls whose recorded method contains this string (default: every call of the target). */
  method?: string;
  status: number;
  /** How many calls fail (default: all until `clearFaults`). */
  times?: number;
}

export interface ResultsStandInOptions {
  scope?: RuntimeScope;
  /** Injected clock for createdAt/lastModified. */
  now?: () => Date;
}

export interface ResultsStandIn {
  /** ACTIONS_RESULTS_URL (with the trailing slash the runner gives it). */
  readonly url: string;
  /** Origin of the blob storage the signed URLs point at. */
  readonly blobOrigin: string;
  readonly runtimeToken: string;
  readonly scope: RuntimeScope;
  /** The variables an action sees on a runner for this service. */
  readonly env: Readonly<Record<string, string>>;
  readonly calls: readonly RecordedCall[];
  cacheEntries(): CacheEntryState[];
  artifacts(): ArtifactState[];
  /** Make matching calls answer `status` (Twirp error body or Azure error XML). */
  fail(fault: Fault): void;
  clearFaults(): void;
  close(): Promise<void>;
}

interface CacheEntry extends CacheEntryState {
  blob: BlobRecord;
}

interface Artifact extends ArtifactState {
  blob: BlobRecord;
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new TwirpError('invalid_argument', `request body over ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve(`http://127.0.0.1:${port}`);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

function requireString(value: string, field: string): void {
  if (!value) throw new TwirpError('invalid_argument', `${field} is required`);
}

function checkCacheKey(key: string): void {
  requireString(key, 'key');
  if (key.length > 512) throw new TwirpError('invalid_argument', 'key is longer than 512 characters');
  if (key.includes(',')) throw new TwirpError('invalid_argument', 'key cannot contain commas');
}

function checkVersion(version: string): void {
  if (!/^[0-9a-f]{64}$/.test(version)) throw new TwirpError('invalid_argument', 'version must be a sha256 hex digest');
}

export async function startResultsStandIn(options: ResultsStandInOptions = {}): Promise<ResultsStandIn> {
  const scope = options.scope ?? { runId: 'run-00000000-0000-4000-8000-000000000001', jobId: 'job-00000000-0000-4000-8000-000000000002' };
  const now = options.now ?? (() => new Date());
  const token = makeRuntimeToken(scope);
  const calls: RecordedCall[] = [];
  const faults: Fault[] = [];
  const blobs = new Map<string, BlobRecord>();
  const caches: CacheEntry[] = [];
  const artifacts: Artifact[] = [];
  let nextId = 1;
  let blobOrigin = '';

  function takeFault(target: Fault['target'], method: string): Fault | undefined {
    const index = faults.findIndex((f) => f.target === target && (!f.method || method.includes(f.method)));
    const fault = faults[index];
    if (!fault) return undefined;
    if (fault.times !== undefined && --fault.times <= 0) faults.splice(index, 1);
    return fault;
  }

  function newBlob(container: string, name: string, contentType: string): BlobRecord {
    const blob: BlobRecord = {
      container,
      name,
      writeSig: randomBytes(16).toString('base64url'),
      readSig: randomBytes(16).toString('base64url'),
      contentType,
      blocks: new Map(),
      lastModified: now(),
    };
    blobs.set(`/${account}/${container}/${name}`, blob);
    return blob;
  }

  function signedUrl(blob: BlobRecord, permission: 'r' | 'cw'): string {
    const url = new URL(`/${account}/${blob.container}/${encodeURIComponent(blob.name)}`, blobOrigin);
    url.searchParams.set('sv', '2025-01-05');
    url.searchParams.set('sr', 'b');
    url.searchParams.set('sp', permission);
    url.searchParams.set('se', new Date(now().getTime() + 3600_000).toISOString());
    url.searchParams.set('sig', permission === 'r' ? blob.readSig : blob.writeSig);
    return url.href;
  }

  function checkScope(runId: string, jobId: string): void {
    if (runId !== scope.runId || jobId !== scope.jobId) {
      throw new TwirpError('permission_denied', 'workflow run or job backend id does not match the token scope');
    }
  }

  // ---- CacheService ----

  function createCacheEntry(req: CreateCacheEntryRequest): CreateCacheEntryResponse {
    checkCacheKey(req.key);
    checkVersion(req.version);
    if (caches.some((c) => c.key === req.key && c.version === req.version)) {
      throw new TwirpError('already_exists', 'cache entry with the same key, version, and scope already exists');
    }
    const id = nextId++;
    const blob = newBlob('caches', `${id}.tzst`, 'application/octet-stream');
    caches.push({ id, key: req.key, version: req.version, finalized: false, sizeBytes: undefined, createdAt: now(), blob });
    return { ok: true, signedUploadUrl: signedUrl(blob, 'cw'), message: '' };
  }

  function finalizeCacheEntry(req: FinalizeCacheEntryUploadRequest): FinalizeCacheEntryUploadResponse {
    checkCacheKey(req.key);
    checkVersion(req.version);
    const entry = caches.find((c) => c.key === req.key && c.version === req.version && !c.finalized);
    if (!entry) throw new TwirpError('not_found', `no cache entry being created for key ${req.key}`);
    if (!entry.blob.data) throw new TwirpError('failed_precondition', 'cache archive was not uploaded');
    if (BigInt(req.sizeBytes) !== BigInt(entry.blob.data.length)) {
      throw new TwirpError('invalid_argument', `size_bytes ${req.sizeBytes} does not match the ${entry.blob.data.length} bytes uploaded`);
    }
    entry.finalized = true;
    entry.sizeBytes = entry.blob.data.length;
    return { ok: true, entryId: String(entry.id), message: '' };
  }

  function getCacheDownloadUrl(req: GetCacheEntryDownloadURLRequest): GetCacheEntryDownloadURLResponse {
    checkCacheKey(req.key);
    checkVersion(req.version);
    for (const k of req.restoreKeys) checkCacheKey(k);
    const ready = caches.filter((c) => c.finalized && c.version === req.version);
    // Exact primary key first, then each restore key as a prefix, newest entry first.
    const newest = (match: (c: CacheEntry) => boolean) =>
      ready.filter(match).sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || b.id - a.id)[0];
    let hit = newest((c) => c.key === req.key);
    for (const prefix of req.restoreKeys) {
      if (hit) break;
      hit = newest((c) => c.key.startsWith(prefix));
    }
    if (!hit) return { ok: false, signedDownloadUrl: '', matchedKey: '' };
    return { ok: true, signedDownloadUrl: signedUrl(hit.blob, 'r'), matchedKey: hit.key };
  }

  // ---- ArtifactService ----

  function createArtifact(req: CreateArtifactRequest): CreateArtifactResponse {
    checkScope(req.workflowRunBackendId, req.workflowJobRunBackendId);
    requireString(req.name, 'name');
    if (req.version < 4) throw new TwirpError('invalid_argument', `unsupported artifact version ${req.version}`);
    const existing = artifacts.findIndex((a) => a.runId === req.workflowRunBackendId && a.name === req.name);
    if (existing >= 0) {
      if (artifacts[existing]!.finalized) {
        throw new TwirpError('already_exists', `an artifact with this name already exists on the workflow run: ${req.name}`);
      }
      artifacts.splice(existing, 1); // an unfinished upload is retried from scratch
    }
    const id = nextId++;
    const mimeType = req.mimeType?.value || 'application/zip';
    const blob = newBlob('artifacts', `${req.workflowRunBackendId}/${id}/${req.name}`, mimeType);
    artifacts.push({
      id,
      runId: req.workflowRunBackendId,
      jobId: req.workflowJobRunBackendId,
      name: req.name,
      finalized: false,
      size: undefined,
      digest: undefined,
      mimeType,
      createdAt: now(),
      expiresAt: req.expiresAt ? Timestamp.toDate(req.expiresAt) : undefined,
      blob,
    });
    return { ok: true, signedUploadUrl: signedUrl(blob, 'cw') };
  }

  function finalizeArtifact(req: FinalizeArtifactRequest): FinalizeArtifactResponse {
    checkScope(req.workflowRunBackendId, req.workflowJobRunBackendId);
    requireString(req.name, 'name');
    const artifact = artifacts.find((a) => a.runId === req.workflowRunBackendId && a.name === req.name && !a.finalized);
    if (!artifact) throw new TwirpError('not_found', `no artifact being uploaded named ${req.name}`);
    const data = artifact.blob.data;
    if (!data) throw new TwirpError('failed_precondition', 'artifact content was not uploaded');
    if (BigInt(req.size) !== BigInt(data.length)) {
      throw new TwirpError('invalid_argument', `size ${req.size} does not match the ${data.length} bytes uploaded`);
    }
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    if (req.hash && req.hash.value !== digest) {
      throw new TwirpError('invalid_argument', `hash ${req.hash.value} does not match the uploaded content (${digest})`);
    }
    artifact.finalized = true;
    artifact.size = data.length;
    artifact.digest = digest;
    return { ok: true, artifactId: String(artifact.id) };
  }

  function listArtifacts(req: ListArtifactsRequest): ListArtifactsResponse {
    checkScope(req.workflowRunBackendId, req.workflowJobRunBackendId);
    const found = artifacts.filter(
      (a) =>
        a.finalized &&
        a.runId === req.workflowRunBackendId &&
        (!req.nameFilter || a.name === req.nameFilter.value) &&
        (!req.idFilter || String(a.id) === req.idFilter.value),
    );
    return {
      artifacts: found.map((a) => ({
        workflowRunBackendId: a.runId,
        workflowJobRunBackendId: a.jobId,
        databaseId: String(a.id),
        name: a.name,
        size: String(a.size ?? 0),
        createdAt: Timestamp.fromDate(a.createdAt),
        ...(a.digest ? { digest: { value: a.digest } } : {}),
      })),
    };
  }

  function signedArtifactUrl(req: GetSignedArtifactURLRequest): GetSignedArtifactURLResponse {
    if (req.workflowRunBackendId !== scope.runId) throw new TwirpError('permission_denied', 'artifact is from another workflow run');
    requireString(req.name, 'name');
    const artifact = artifacts.find((a) => a.finalized && a.runId === req.workflowRunBackendId && a.name === req.name);
    if (!artifact) throw new TwirpError('not_found', `artifact not found: ${req.name}`);
    return { signedUrl: signedUrl(artifact.blob, 'r') };
  }

  function deleteArtifact(req: DeleteArtifactRequest): DeleteArtifactResponse {
    checkScope(req.workflowRunBackendId, req.workflowJobRunBackendId);
    requireString(req.name, 'name');
    const index = artifacts.findIndex((a) => a.finalized && a.runId === req.workflowRunBackendId && a.name === req.name);
    const artifact = artifacts[index];
    if (!artifact) throw new TwirpError('not_found', `artifact not found: ${req.name}`);
    artifacts.splice(index, 1);
    blobs.delete(`/${account}/${artifact.blob.container}/${artifact.blob.name}`);
    return { ok: true, artifactId: String(artifact.id) };
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  type Route = { request: MessageCodec<any>; response: MessageCodec<any>; handle: (req: any) => unknown };
  const route = <Req, Res>(request: MessageCodec<Req>, response: MessageCodec<Res>, handle: (req: Req) => Res): Route => ({
    request,
    response,
    handle: handle as (req: unknown) => unknown,
  });
  const routes = new Map<string, Route>([
    [`${cacheService}/CreateCacheEntry`, route(CreateCacheEntryRequest, CreateCacheEntryResponse, createCacheEntry)],
    [`${cacheService}/FinalizeCacheEntryUpload`, route(FinalizeCacheEntryUploadRequest, FinalizeCacheEntryUploadResponse, finalizeCacheEntry)],
    [`${cacheService}/GetCacheEntryDownloadURL`, route(GetCacheEntryDownloadURLRequest, GetCacheEntryDownloadURLResponse, getCacheDownloadUrl)],
    [`${artifactService}/CreateArtifact`, route(CreateArtifactRequest, CreateArtifactResponse, createArtifact)],
    [`${artifactService}/FinalizeArtifact`, route(FinalizeArtifactRequest, FinalizeArtifactResponse, finalizeArtifact)],
    [`${artifactService}/ListArtifacts`, route(ListArtifactsRequest, ListArtifactsResponse, listArtifacts)],
    [`${artifactService}/GetSignedArtifactURL`, route(GetSignedArtifactURLRequest, GetSignedArtifactURLResponse, signedArtifactUrl)],
    [`${artifactService}/DeleteArtifact`, route(DeleteArtifactRequest, DeleteArtifactResponse, deleteArtifact)],
  ]);

  async function handleTwirp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const name = path.startsWith('/twirp/') ? path.slice('/twirp/'.length) : path;
    const method = name.replace(/^github\.actions\.results\.api\.v1\./, '');
    let status = 200;
    try {
      const fault = takeFault('twirp', method);
      if (fault) {
        status = fault.status;
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ code: status >= 500 ? 'internal' : 'unknown', msg: 'injected fault' }));
        return;
      }
      const r = routes.get(name);
      if (!r || req.method !== 'POST') throw new TwirpError('bad_route', `no handler for ${req.method} ${path}`);
      if (req.headers.authorization !== `Bearer ${token}`) throw new TwirpError('unauthenticated', 'missing or invalid runtime token');
      const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
      if (contentType !== 'application/json') throw new TwirpError('bad_route', `unsupported content type ${contentType || '(none)'}`);
      const body = await readBody(req, maxTwirpBody);
      let json: unknown;
      try {
        json = JSON.parse(body.toString('utf8'));
      } catch {
        throw new TwirpError('malformed', 'request body is not JSON');
      }
      let message: unknown;
      try {
        message = r.request.fromJson(json, { ignoreUnknownFields: false });
      } catch (error) {
        throw new TwirpError('malformed', `request does not match ${name}Request: ${(error as Error).message}`);
      }
      const answer = r.handle(message);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(r.response.toJson(answer, { useProtoFieldName: true })));
    } catch (error) {
      const e = error instanceof TwirpError ? error : new TwirpError('internal', (error as Error).message);
      status = twirpStatus[e.code];
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ code: e.code, msg: e.message }));
    } finally {
      calls.push({ target: 'twirp', method, status });
    }
  }

  // ---- Azure blob storage (the subset the storage SDK uses for block blobs) ----

  function blobHeaders(blob: BlobRecord): Record<string, string> {
    return {
      'x-ms-request-id': randomBytes(8).toString('hex'),
      'x-ms-version': '2025-01-05',
      date: now().toUTCString(),
      etag: `"0x${blob.lastModified.getTime().toString(16).toUpperCase()}"`,
      'last-modified': blob.lastModified.toUTCString(),
    };
  }

  function parseBlockList(xml: string): string[] {
    if (!/<BlockList>/.test(xml)) throw new BlobError(400, 'InvalidXmlDocument', 'body is not a BlockList');
    return [...xml.matchAll(/<(Latest|Committed|Uncommitted)>([^<]*)<\/\1>/g)].map((m) => m[2]!);
  }

  function parseRange(header: string | undefined, size: number): { start: number; end: number } | undefined {
    if (!header) return undefined;
    const m = /^bytes=(\d+)-(\d*)$/.exec(header.trim());
    if (!m) throw new BlobError(416, 'InvalidRange', `bad range ${header}`);
    const start = Number(m[1]);
    const end = m[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
    if (start >= size || end < start) throw new BlobError(416, 'InvalidRange', `range ${header} outside 0-${size - 1}`);
    return { start, end };
  }

  async function handleBlob(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const comp = url.searchParams.get('comp');
    const method = `${req.method} ${req.method === 'PUT' ? (comp ?? 'blob') : 'blob'}`;
    let status = 500;
    try {
      const fault = takeFault('blob', method);
      if (fault) throw new BlobError(fault.status, 'InternalError', 'injected fault');
      const blob = blobs.get(decodeURIComponent(url.pathname));
      if (!blob) throw new BlobError(404, 'BlobNotFound', 'The specified blob does not exist.');
      const sig = url.searchParams.get('sig');
      const writing = req.method === 'PUT';
      if (sig !== (writing ? blob.writeSig : blob.readSig)) {
        throw new BlobError(403, 'AuthenticationFailed', 'Signature did not match or does not grant this permission.');
      }
      if (writing) {
        const body = await readBody(req, maxBlobBody);
        if (comp === 'block') {
          const id = url.searchParams.get('blockid');
          if (!id) throw new BlobError(400, 'InvalidQueryParameterValue', 'blockid is required');
          blob.blocks.set(id, body);
        } else if (comp === 'blocklist') {
          const ids = parseBlockList(body.toString('utf8'));
          const parts = ids.map((id) => {
            const block = blob.blocks.get(id);
            if (!block) throw new BlobError(400, 'InvalidBlockList', `block ${id} was not staged`);
            return block;
          });
          blob.data = Buffer.concat(parts);
          blob.blocks.clear();
          const type = req.headers['x-ms-blob-content-type'];
          if (typeof type === 'string' && type) blob.contentType = type;
        } else if (comp === null) {
          if (req.headers['x-ms-blob-type'] !== 'BlockBlob') {
            throw new BlobError(400, 'MissingRequiredHeader', 'x-ms-blob-type: BlockBlob is required');
          }
          blob.data = body;
        } else {
          throw new BlobError(400, 'UnsupportedQueryParameter', `comp=${comp} is not supported`);
        }
        blob.lastModified = now();
        status = 201;
        res.writeHead(status, { ...blobHeaders(blob), 'content-length': '0', 'x-ms-request-server-encrypted': 'true' });
        res.end();
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new BlobError(405, 'UnsupportedHttpVerb', `${req.method} is not supported`);
      const data = blob.data;
      if (!data) throw new BlobError(404, 'BlobNotFound', 'The specified blob does not exist.');
      const rangeHeader = req.headers['x-ms-range'] ?? req.headers.range;
      const range = parseRange(typeof rangeHeader === 'string' ? rangeHeader : undefined, data.length);
      const slice = range ? data.subarray(range.start, range.end + 1) : data;
      status = range ? 206 : 200;
      const headers: Record<string, string> = {
        ...blobHeaders(blob),
        'content-type': blob.contentType,
        'content-length': String(slice.length),
        'accept-ranges': 'bytes',
        'x-ms-blob-type': 'BlockBlob',
      };
      if (range) headers['content-range'] = `bytes ${range.start}-${range.end}/${data.length}`;
      if (blob.contentType !== 'application/zip') {
        headers['content-disposition'] = `attachment; filename="${blob.name.split('/').pop()}"`;
      }
      res.writeHead(status, headers);
      res.end(req.method === 'HEAD' ? undefined : slice);
    } catch (error) {
      const e = error instanceof BlobError ? error : new BlobError(500, 'InternalError', (error as Error).message);
      status = e.status;
      res.writeHead(status, { 'content-type': 'application/xml', 'x-ms-error-code': e.code });
      res.end(`<?xml version="1.0" encoding="utf-8"?><Error><Code>${e.code}</Code><Message>${e.message}</Message></Error>`);
    } finally {
      calls.push({ target: 'blob', method, status });
    }
  }

  const twirpServer = createServer((req, res) => void handleTwirp(req, res));
  const blobServer = createServer((req, res) => void handleBlob(req, res));
  const url = (await listen(twirpServer)) + '/';
  blobOrigin = await listen(blobServer);

  const snapshotCache = (c: CacheEntry): CacheEntryState => ({
    id: c.id,
    key: c.key,
    version: c.version,
    finalized: c.finalized,
    sizeBytes: c.sizeBytes,
    createdAt: c.createdAt,
  });
  const snapshotArtifact = ({ blob: _blob, ...a }: Artifact): ArtifactState => ({ ...a });

  return {
    url,
    blobOrigin,
    runtimeToken: token,
    scope,
    env: { ACTIONS_RESULTS_URL: url, ACTIONS_RUNTIME_TOKEN: token, ACTIONS_CACHE_SERVICE_V2: 'True' },
    calls,
    cacheEntries: () => caches.map(snapshotCache),
    artifacts: () => artifacts.map(snapshotArtifact),
    fail: (fault) => void faults.push({ ...fault }),
    clearFaults: () => void faults.splice(0),
    close: async () => {
      await Promise.all([closeServer(twirpServer), closeServer(blobServer)]);
    },
  };
}
