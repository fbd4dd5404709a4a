// A loopback Kaggle stand-in with two origins, as the real service has: the API host answers
// DownloadDataset with a 302 to a signed URL on a storage host, which serves the zip with its MD5
// in `x-goog-hash` and honours Range. Faults can be switched on to exercise the client's recovery.

import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface KaggleFaults {
  /** The next storage response drops the connection after this many body bytes (once). */
  dropAfterBytes?: number;
  /** Storage flips one byte of the body; `x-goog-hash` still describes the good bytes. */
  corrupt?: boolean;
  /** Storage never serves past this absolute offset: every response dies there (a truncated object). */
  truncateAt?: number;
  /** The next request to this origin answers 503 (once). */
  serverErrorOnce?: 'api' | 'storage';
  /** The API answers every request with this status. */
  apiStatus?: 401 | 403 | 404;
  /** Storage omits `x-goog-hash`. */
  noHash?: boolean;
}

export interface RecordedRequest {
  origin: 'api' | 'storage';
  method: string;
  path: string;
  range?: string;
  authorization?: string;
  body?: unknown;
  status: number;
}

export interface KaggleStandInOptions {
  /** `owner/slug` → version number → archive bytes. The highest version is the latest. */
  datasets: Record<string, Record<number, Buffer>>;
  /** Accepted Bearer token (KAGGLE_API_TOKEN). */
  token?: string;
  /** Accepted Basic credentials (KAGGLE_USERNAME / KAGGLE_KEY, kaggle.json). */
  username?: string;
  key?: string;
}

export interface KaggleStandIn {
  apiUrl: string;
  storageUrl: string;
  /** Switch faults on and off between (or during) tests. */
  faults: KaggleFaults;
  requests: RecordedRequest[];
  /** True as soon as any request to the storage origin carried an Authorization header. */
  storageSawAuthorization: boolean;
  /** The signature of storage URLs: secret-looking, must never be logged. */
  signatureOf(path: string): string;
  close(): Promise<void>;
}

const API_PATH = '/v1/datasets.DatasetApiService/DownloadDataset';

export async function startKaggleStandIn(options: KaggleStandInOptions): Promise<KaggleStandIn> {
  const signingKey = randomBytes(16);
  const signatureOf = (path: string): string => createHmac('sha256', signingKey).update(path).digest('hex');
  const state: KaggleStandIn = {
    apiUrl: '',
    storageUrl: '',
    faults: {},
    requests: [],
    storageSawAuthorization: false,
    signatureOf,
    close: async () => {},
  };

  const authorised = (header: string | undefined): boolean => {
    if (!header) return false;
    if (options.token && header === `Bearer ${options.token}`) return true;
    if (options.username && options.key && header === `Basic ${Buffer.from(`${options.username}:${options.key}`).toString('base64')}`) return true;
    return false;
  };

  const api = createServer((req, res) => {
    void readBody(req).then((raw) => {
      const record: RecordedRequest = { origin: 'api', method: req.method ?? '', path: req.url ?? '', status: 0 };
      if (req.headers.authorization) record.authorization = req.headers.authorization;
      if (req.headers.range) record.range = req.headers.range;
      const answer = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
        record.status = status;
        state.requests.push(record);
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(JSON.stringify(body));
      };
      if (req.method !== 'POST' || req.url !== API_PATH) return answer(404, { error: 'unknown route' });
      if (state.faults.serverErrorOnce === 'api') {
        delete state.faults.serverErrorOnce;
        return answer(503, { error: 'unavailable' });
      }
      let body: { ownerSlug?: unknown; datasetSlug?: unknown; datasetVersionNumber?: unknown };
      try {
        body = JSON.parse(raw.toString('utf8')) as typeof body;
        record.body = body;
      } catch {
        return answer(400, { error: 'body must be JSON' });
      }
      if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) return answer(400, { error: 'content-type' });
      if (!authorised(req.headers.authorization)) return answer(401, { error: 'Unauthenticated' });
      if (state.faults.apiStatus) return answer(state.faults.apiStatus, { error: 'fault' });
      const versions = options.datasets[`${String(body.ownerSlug)}/${String(body.datasetSlug)}`];
      if (!versions) return answer(404, { error: 'Dataset not found' });
      const latest = Math.max(...Object.keys(versions).map(Number));
      const version = body.datasetVersionNumber === undefined ? latest : Number(body.datasetVersionNumber);
      if (!versions[version]) return answer(404, { error: 'Version not found' });
      const path = `/kaggle-data-sets/${String(body.ownerSlug)}/${String(body.datasetSlug)}/${version}/archive.zip`;
      const query = `X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Expires=259200&X-Goog-Signature=${signatureOf(path)}`;
      return answer(302, {}, { location: `${state.storageUrl}${path}?${query}` });
    });
  });

  const storage = createServer((req, res) => {
    const record: RecordedRequest = { origin: 'storage', method: req.method ?? '', path: req.url ?? '', status: 0 };
    if (req.headers.authorization) {
      record.authorization = req.headers.authorization;
      state.storageSawAuthorization = true;
    }
    if (req.headers.range) record.range = req.headers.range;
    state.requests.push(record);
    const fail = (status: number, message: string): void => {
      record.status = status;
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(message);
    };
    if (state.faults.serverErrorOnce === 'storage') {
      delete state.faults.serverErrorOnce;
      return fail(503, 'Service Unavailable');
    }
    const url = new URL(req.url ?? '/', 'http://storage');
    const m = /^\/kaggle-data-sets\/([^/]+)\/([^/]+)\/(\d+)\/archive\.zip$/.exec(url.pathname);
    if (req.method !== 'GET' || !m) return fail(404, 'NoSuchKey');
    if (url.searchParams.get('X-Goog-Signature') !== signatureOf(url.pathname)) return fail(403, 'SignatureDoesNotMatch');
    const data = options.datasets[`${m[1]}/${m[2]}`]?.[Number(m[3])];
    if (!data) return fail(404, 'NoSuchKey');

    let start = 0;
    const range = req.headers.range;
    if (range) {
      const r = /^bytes=(\d+)-$/.exec(range);
      if (!r) return fail(416, 'bad range');
      start = Number(r[1]);
      if (start >= data.length) {
        record.status = 416;
        res.writeHead(416, { 'content-range': `bytes */${data.length}` });
        return res.end();
      }
    }
    const headers: Record<string, string> = {
      'content-type': 'application/zip',
      'accept-ranges': 'bytes',
      'content-length': String(data.length - start),
    };
    if (!state.faults.noHash) headers['x-goog-hash'] = `crc32c=AAAAAA==,md5=${createHash('md5').update(data).digest('base64')}`;
    if (range) headers['content-range'] = `bytes ${start}-${data.length - 1}/${data.length}`;
    record.status = range ? 206 : 200;
    res.writeHead(record.status, headers);

    let body = data.subarray(start);
    if (state.faults.corrupt) {
      body = Buffer.from(body);
      const at = Math.floor(body.length / 2);
      body[at] = body[at]! ^ 0xff;
    }
    let cut: number | undefined;
    if (state.faults.dropAfterBytes !== undefined) {
      cut = state.faults.dropAfterBytes;
      delete state.faults.dropAfterBytes;
    }
    if (state.faults.truncateAt !== undefined) cut = Math.min(cut ?? Infinity, Math.max(0, state.faults.truncateAt - start));
    if (cut === undefined) return res.end(body);
    res.write(body.subarray(0, cut), () => res.destroy());
  });

  await Promise.all([listen(api), listen(storage)]);
  state.apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
  state.storageUrl = `http://127.0.0.1:${(storage.address() as AddressInfo).port}`;
  state.close = async () => {
    await Promise.all([close(api), close(storage)]);
  };
  return state;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function listen(server: Server): Promise<void> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
