import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yazl from 'yazl';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { downloadKaggleDataset, kaggleAuth, type KaggleDownloadOptions } from '../../pipeline/data/fetch/kaggle.ts';
import { startKaggleStandIn, type KaggleStandIn } from '../support/kaggle/stand-in.ts';
import { RecordingLogger } from '../support/logger.ts';

const TOKEN = 'kgat_0123456789abcdef0123456789abcdef';
const USER = 'safa';
const KEY = '0badc0ffee0badc0ffee0badc0ffee00';

async function zipOf(files: Record<string, Buffer | string>): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const [name, body] of Object.entries(files)) zip.addBuffer(Buffer.from(body), name);
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

let kaggle: KaggleStandIn;
let archive: Buffer;
let archiveV1: Buffer;
let dir: string;
let logger: RecordingLogger;
let sleeps: number[];

beforeAll(async () => {
  // Incompressible content so the archive spans many network chunks.
  archive = await zipOf({ 'datasetam/data.yaml': 'nc: 1\nnames: [Acne]\n', 'datasetam/train/images/a.jpg': randomBytes(300_000) });
  archiveV1 = await zipOf({ 'old.txt': 'version one' });
  kaggle = await startKaggleStandIn({
    datasets: { 'safabenammor/datasetam': { 1: archiveV1, 2: archive } },
    token: TOKEN,
    username: USER,
    key: KEY,
  });
});
afterAll(async () => {
  await kaggle.close();
});
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kaggle-test-'));
  logger = new RecordingLogger();
  sleeps = [];
  kaggle.faults = {};
  kaggle.requests.length = 0;
  kaggle.storageSawAuthorization = false;
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function options(env: Record<string, string | undefined>, extra: Partial<KaggleDownloadOptions> = {}): KaggleDownloadOptions {
  return {
    dataset: 'safabenammor/datasetam',
    env: { KAGGLE_API_URL: kaggle.apiUrl, HOME: join(dir, 'home'), ...env },
    logger,
    sleep: async (ms) => void sleeps.push(ms),
    policy: { allowInsecureLoopback: true },
    ...extra,
  };
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const allLogs = (): string => logger.messages().join('\n');

describe('Kaggle download', () => {
  it('Bearer token: follows the 302 to storage without the credentials, verifies the MD5', async () => {
    const dest = join(dir, 'a.zip');
    const result = await downloadKaggleDataset(dest, options({ KAGGLE_API_TOKEN: TOKEN }));
    expect(sha(await readFile(dest))).toBe(sha(archive));
    expect(result).toMatchObject({ sha256: sha(archive), bytes: archive.length, auth: 'KAGGLE_API_TOKEN', resumes: 0 });
    expect(result.serverMd5).toBe(createHash('md5').update(archive).digest('hex'));
    const [post, get] = kaggle.requests;
    expect(post).toMatchObject({ origin: 'api', method: 'POST', status: 302, authorization: `Bearer ${TOKEN}` });
    expect(post!.body).toEqual({ ownerSlug: 'safabenammor', datasetSlug: 'datasetam' });
    expect(get).toMatchObject({ origin: 'storage', method: 'GET', status: 200 });
    expect(get!.authorization).toBeUndefined();
    expect(kaggle.storageSawAuthorization).toBe(false);
    expect(logger.progressDone.at(-1)).toMatchObject({ done: archive.length });
  });

  it('Basic auth from KAGGLE_USERNAME / KAGGLE_KEY, with a pinned version', async () => {
    const dest = join(dir, 'a.zip');
    const result = await downloadKaggleDataset(dest, options({ KAGGLE_USERNAME: USER, KAGGLE_KEY: KEY }, { version: 1 }));
    expect(sha(await readFile(dest))).toBe(sha(archiveV1));
    expect(result.auth).toBe('KAGGLE_USERNAME/KAGGLE_KEY');
    expect(kaggle.requests[0]!.authorization).toBe(`Basic ${Buffer.from(`${USER}:${KEY}`).toString('base64')}`);
    expect(kaggle.requests[0]!.body).toEqual({ ownerSlug: 'safabenammor', datasetSlug: 'datasetam', datasetVersionNumber: 1 });
    expect(kaggle.storageSawAuthorization).toBe(false);
  });

  it('Basic auth from ~/.kaggle/kaggle.json (home from the stage env)', async () => {
    await mkdir(join(dir, 'home/.kaggle'), { recursive: true });
    await writeFile(join(dir, 'home/.kaggle/kaggle.json'), JSON.stringify({ username: USER, key: KEY }));
    const result = await downloadKaggleDataset(join(dir, 'a.zip'), options({}));
    expect(result.auth).toBe('kaggle.json');
    expect(kaggle.storageSawAuthorization).toBe(false);
  });

  it('never logs the credentials or the storage signature', async () => {
    await downloadKaggleDataset(join(dir, 'a.zip'), options({ KAGGLE_API_TOKEN: TOKEN }));
    expect(logger.secrets.has(TOKEN)).toBe(true);
    logger.info(`a careless line with ${TOKEN}`);
    expect(logger.messages().at(-1)).toBe('a careless line with ***');
    const logs = allLogs();
    expect(logs).not.toContain(TOKEN);
    const sig = kaggle.signatureOf('/kaggle-data-sets/safabenammor/datasetam/2/archive.zip');
    expect(logs).not.toContain(sig);

    const basic = new RecordingLogger();
    await kaggleAuth({ KAGGLE_USERNAME: USER, KAGGLE_KEY: KEY }, basic);
    expect(basic.secrets.has(KEY)).toBe(true);
    expect(basic.secrets.has(Buffer.from(`${USER}:${KEY}`).toString('base64'))).toBe(true);
  });

  it('missing or half-set credentials are configuration errors', async () => {
    await expect(kaggleAuth({ HOME: join(dir, 'nohome') }, logger)).rejects.toThrow(/no Kaggle credentials found.*KAGGLE_API_TOKEN/);
    await expect(kaggleAuth({ KAGGLE_USERNAME: USER }, logger)).rejects.toThrow(/KAGGLE_USERNAME is set but KAGGLE_KEY is not/);
    await mkdir(join(dir, 'h/.kaggle'), { recursive: true });
    await writeFile(join(dir, 'h/.kaggle/kaggle.json'), '{"username": "x"}');
    await expect(kaggleAuth({ HOME: join(dir, 'h') }, logger)).rejects.toThrow(/kaggle.json.*must hold/);
  });

  it.each([
    ['a wrong token (401)', { KAGGLE_API_TOKEN: 'wrong-token-value' }, {}],
    ['403', { KAGGLE_API_TOKEN: TOKEN }, { apiStatus: 403 as const }],
    ['404', { KAGGLE_API_TOKEN: TOKEN }, { apiStatus: 404 as const }],
  ])('%s → not found or not accessible', async (_name, env, faults) => {
    kaggle.faults = faults;
    const error = await downloadKaggleDataset(join(dir, 'a.zip'), options(env)).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).name).toBe('ConfigurationError');
    expect((error as Error).message).toMatch(/dataset `safabenammor\/datasetam` not found or not accessible with these credentials/);
    expect(sleeps).toEqual([]);
  });

  it('an unknown slug or version is reported the same way', async () => {
    await expect(downloadKaggleDataset(join(dir, 'a.zip'), options({ KAGGLE_API_TOKEN: TOKEN }, { dataset: 'someone/nothing' }))).rejects.toThrow(
      /dataset `someone\/nothing` not found or not accessible/,
    );
    await expect(downloadKaggleDataset(join(dir, 'a.zip'), options({ KAGGLE_API_TOKEN: TOKEN }, { version: 9 }))).rejects.toThrow(
      /dataset `safabenammor\/datasetam` version 9 not found/,
    );
  });

  it('resumes with Range after a dropped connection', async () => {
    kaggle.faults.dropAfterBytes = 100_000;
    const dest = join(dir, 'a.zip');
    const result = await downloadKaggleDataset(dest, options({ KAGGLE_API_TOKEN: TOKEN }));
    expect(sha(await readFile(dest))).toBe(sha(archive));
    expect(result.sha256).toBe(sha(archive));
    expect(result.resumes).toBe(1);
    const storage = kaggle.requests.filter((r) => r.origin === 'storage');
    expect(storage).toHaveLength(2);
    expect(storage[1]!.range).toMatch(/^bytes=\d+-$/);
    const resumedAt = Number(/bytes=(\d+)-/.exec(storage[1]!.range!)![1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(100_000);
    expect(storage[1]!.status).toBe(206);
    expect(kaggle.storageSawAuthorization).toBe(false);
    expect(sleeps).toEqual([1000]);
    expect(logger.messages('warn').join('\n')).toMatch(/resuming from byte \d+/);
  });

  it('a corrupted body fails on the MD5 with both hashes named', async () => {
    kaggle.faults.corrupt = true;
    const error = (await downloadKaggleDataset(join(dir, 'a.zip'), options({ KAGGLE_API_TOKEN: TOKEN })).catch((e: Error) => e)) as Error;
    expect(error.name).toBe('DataError');
    const good = createHash('md5').update(archive).digest('hex');
    expect(error.message).toContain(`MD5 mismatch: the server announced ${good}`);
    expect(error.message).toMatch(/hash to [0-9a-f]{32}/);
  });

  it('a truncated object fails after bounded retries with exponential backoff', async () => {
    kaggle.faults.truncateAt = 50_000;
    const error = (await downloadKaggleDataset(join(dir, 'a.zip'), options({ KAGGLE_API_TOKEN: TOKEN })).catch((e: Error) => e)) as Error;
    expect(error.name).toBe('DataError');
    expect(error.message).toMatch(/download failed after \d+ attempts: connection lost after 50000 bytes/);
    expect(sleeps).toEqual([1000, 2000, 4000, 8000]);
  });

  it.each(['api', 'storage'] as const)('retries a 5xx from the %s origin once', async (origin) => {
    kaggle.faults.serverErrorOnce = origin;
    const dest = join(dir, 'a.zip');
    await downloadKaggleDataset(dest, options({ KAGGLE_API_TOKEN: TOKEN }));
    expect(sha(await readFile(dest))).toBe(sha(archive));
    expect(sleeps).toEqual([1000]);
    expect(kaggle.requests.some((r) => r.origin === origin && r.status === 503)).toBe(true);
  });

  it('without x-goog-hash the download still completes (sha256 pinning is the check then)', async () => {
    kaggle.faults.noHash = true;
    const result = await downloadKaggleDataset(join(dir, 'a.zip'), options({ KAGGLE_API_TOKEN: TOKEN }));
    expect(result.serverMd5).toBeUndefined();
    expect(result.sha256).toBe(sha(archive));
  });

  it('reads kaggle.json from KAGGLE_CONFIG_DIR first', async () => {
    await mkdir(join(dir, 'conf'), { recursive: true });
    await writeFile(join(dir, 'conf/kaggle.json'), JSON.stringify({ username: USER, key: KEY }));
    const auth = await kaggleAuth({ KAGGLE_CONFIG_DIR: join(dir, 'conf'), HOME: join(dir, 'nohome') }, logger);
    expect(auth).toEqual({ header: `Basic ${Buffer.from(`${USER}:${KEY}`).toString('base64')}`, via: 'kaggle.json' });
  });

  it('refuses a plain-http API URL without the test seam', async () => {
    await expect(downloadKaggleDataset(join(dir, 'a.zip'), { ...options({ KAGGLE_API_TOKEN: TOKEN }), policy: {} })).rejects.toThrow(
      /KAGGLE_API_URL: only https URLs are accepted/,
    );
    expect(kaggle.requests).toHaveLength(0);
  });
});
