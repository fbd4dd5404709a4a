import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkUrl, downloadResumable, md5FromGoogHash, redactUrl, type OpenRange } from '../../pipeline/data/fetch/download.ts';
import { RecordingLogger } from '../support/logger.ts';

const DATA = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251));
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

let dir: string;
let logger: RecordingLogger;
let sleeps: number[];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'download-test-'));
  logger = new RecordingLogger();
  sleeps = [];
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A body that yields `bytes` and then fails like a dropped socket. */
function dropping(bytes: Buffer): ReadableStream<Uint8Array> {
  let sent = false;
  return new ReadableStream({
    pull(controller) {
      if (!sent) {
        sent = true;
        controller.enqueue(new Uint8Array(bytes));
      } else controller.error(new TypeError('terminated', { cause: { code: 'UND_ERR_SOCKET' } }));
    },
  });
}

const opts = () => ({ logger, label: 'test file', sleep: async (ms: number) => void sleeps.push(ms) });

describe('downloadResumable', () => {
  it('starts over when the server ignores Range, and the result is still exact', async () => {
    const offsets: number[] = [];
    const open: OpenRange = async (offset) => {
      offsets.push(offset);
      if (offsets.length === 1) return new Response(dropping(DATA.subarray(0, 1234)), { status: 200, headers: { 'content-length': String(DATA.length) } });
      return new Response(DATA, { status: 200, headers: { 'content-length': String(DATA.length) } });
    };
    const result = await downloadResumable(join(dir, 'f'), open, opts());
    expect(offsets).toEqual([0, 1234]);
    expect(result).toMatchObject({ bytes: 5000, sha256: sha(DATA), resumes: 1 });
    expect(sha(await readFile(join(dir, 'f')))).toBe(sha(DATA));
    expect(logger.messages('warn').join('\n')).toMatch(/server ignored the Range request; starting over/);
  });

  it('treats a 416 at the known end as complete', async () => {
    const open: OpenRange = async (offset) => {
      if (offset === 0) return new Response(dropping(DATA), { status: 200, headers: { 'content-length': String(DATA.length) } });
      return new Response(null, { status: 416, headers: { 'content-range': `bytes */${DATA.length}` } });
    };
    const result = await downloadResumable(join(dir, 'f'), open, opts());
    expect(result.sha256).toBe(sha(DATA));
  });

  it('does not retry a 4xx and reports it through httpError', async () => {
    let calls = 0;
    const open: OpenRange = async () => {
      calls++;
      return new Response('nope', { status: 410, statusText: 'Gone' });
    };
    await expect(downloadResumable(join(dir, 'f'), open, { ...opts(), httpError: (r) => new Error(`custom ${r.status}`) })).rejects.toThrow('custom 410');
    expect(calls).toBe(1);
    expect(sleeps).toEqual([]);
  });

  it('retries connection failures with exponential backoff, then gives up', async () => {
    const open: OpenRange = async () => {
      throw new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } });
    };
    await expect(downloadResumable(join(dir, 'f'), open, { ...opts(), maxAttempts: 4 })).rejects.toThrow(/download failed after 4 attempts: connection failed \(ECONNREFUSED\)/);
    expect(sleeps).toEqual([1000, 2000, 4000]);
  });

  it('stops at once when the signal aborts', async () => {
    const ac = new AbortController();
    const open: OpenRange = async () => {
      ac.abort();
      throw new DOMException('aborted', 'AbortError');
    };
    const error = (await downloadResumable(join(dir, 'f'), open, { ...opts(), signal: ac.signal }).catch((e: Error) => e)) as Error;
    expect(error.name).toBe('InterruptedError');
    expect(sleeps).toEqual([]);
  });

  it('rejects more bytes than announced', async () => {
    const open: OpenRange = async () => new Response(DATA, { status: 200, headers: { 'content-length': '10' } });
    await expect(downloadResumable(join(dir, 'f'), open, opts())).rejects.toThrow(/received 5000 bytes, more than the 10 announced/);
  });
});

describe('URL helpers', () => {
  it('parses the md5 out of x-goog-hash', () => {
    const md5 = createHash('md5').update('abc').digest();
    expect(md5FromGoogHash(`crc32c=n03x6A==,md5=${md5.toString('base64')}`)).toBe(md5.toString('hex'));
    expect(md5FromGoogHash('crc32c=n03x6A==')).toBeUndefined();
    expect(md5FromGoogHash(null)).toBeUndefined();
  });

  it('redacts signed query strings and enforces https', () => {
    expect(redactUrl('https://storage.example/o/a.zip?X-Goog-Signature=secret')).toBe('https://storage.example/o/a.zip?…');
    expect(() => checkUrl('http://example.org/a', 'url')).toThrow(/only https/);
    expect(() => checkUrl('http://127.0.0.1:1/a', 'url')).toThrow(/only https/);
    expect(checkUrl('http://127.0.0.1:1/a', 'url', { allowInsecureLoopback: true }).port).toBe('1');
    expect(() => checkUrl('ftp://127.0.0.1/a', 'url', { allowInsecureLoopback: true })).toThrow(/only https/);
    expect(() => checkUrl('not a url', 'url')).toThrow(/not a valid URL/);
  });
});
