import { mkdtemp, readFile, readdir, rm, writeFile, lstat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import yazl from 'yazl';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { extractArchive, safeEntryPath, sniffArchive } from '../../pipeline/data/fetch/extract.ts';
import { makeTar } from '../support/archives.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'extract-test-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface ZipItem {
  name: string;
  body?: Buffer | string;
  mode?: number;
  dir?: boolean;
  compress?: boolean;
}

/** Build a zip in memory; `patch` rewrites names afterwards, since yazl refuses unsafe ones. */
async function makeZip(items: ZipItem[], patch: [string, string][] = []): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const item of items) {
    if (item.dir) zip.addEmptyDirectory(item.name);
    else {
      const opts: Partial<yazl.Options> = { compress: item.compress ?? true };
      if (item.mode !== undefined) opts.mode = item.mode;
      zip.addBuffer(Buffer.from(item.body ?? ''), item.name, opts);
    }
  }
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream) chunks.push(chunk as Buffer);
  let buf = Buffer.concat(chunks);
  for (const [from, to] of patch) {
    expect(Buffer.byteLength(from)).toBe(Buffer.byteLength(to));
    let at = buf.indexOf(from);
    expect(at).toBeGreaterThanOrEqual(0);
    while (at >= 0) {
      buf.write(to, at, 'latin1');
      at = buf.indexOf(from, at + 1);
    }
  }
  return buf;
}


async function put(name: string, data: Buffer): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, data);
  return file;
}

async function listTree(root: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(root, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(`${rel}/`, ...(await listTree(root, rel)));
    else out.push(rel);
  }
  return out.sort();
}

describe('safeEntryPath', () => {
  it('normalises harmless names', () => {
    expect(safeEntryPath('a/./b//c.txt', 'x.zip')).toBe('a/b/c.txt');
    expect(safeEntryPath('./', 'x.zip')).toBe('');
  });
  it.each([
    ['../evil', '`..`'],
    ['a/../../evil', '`..`'],
    ['/etc/passwd', 'absolute'],
    ['C:/Windows/evil', 'drive letter'],
    ['a\\..\\evil', 'backslash'],
    ['a\0b', 'NUL'],
  ])('rejects %j', (name, why) => {
    expect(() => safeEntryPath(name, 'x.zip')).toThrow(why);
  });
});

describe('extractArchive: zip', () => {
  it('extracts files and folders and reports them', async () => {
    const zip = await put('ok.zip', await makeZip([
      { name: 'top/', dir: true },
      { name: 'top/a.txt', body: 'hello' },
      { name: 'top/sub/b.bin', body: Buffer.alloc(3000, 7) },
    ]));
    expect(await sniffArchive(zip)).toBe('zip');
    const report = await extractArchive(zip, join(dir, 'out'));
    expect(await listTree(join(dir, 'out'))).toEqual(['top/', 'top/a.txt', 'top/sub/', 'top/sub/b.bin']);
    expect(await readFile(join(dir, 'out/top/a.txt'), 'utf8')).toBe('hello');
    expect(report).toMatchObject({ format: 'zip', files: 2, directories: 1, entries: 3, bytes: 3005, skipped: [] });
  });

  it('rejects a `../` entry and writes nothing outside', async () => {
    const zip = await put('evil.zip', await makeZip([{ name: 'ok.txt', body: 'x' }, { name: 'xx/evil.txt', body: 'pwned' }], [['xx/evil.txt', '../evil.txt']]));
    await expect(extractArchive(zip, join(dir, 'out'))).rejects.toThrow(/unsafe archive entry.*\.\.\/evil\.txt/);
    await expect(lstat(join(dir, 'evil.txt'))).rejects.toThrow();
  });

  it('rejects absolute paths and drive letters', async () => {
    const abs = await put('abs.zip', await makeZip([{ name: 'xtmp/evil.txt', body: 'x' }], [['xtmp/evil.txt', '/tmp/evil.txt']]));
    await expect(extractArchive(abs, join(dir, 'out1'))).rejects.toThrow(/unsafe archive entry.*absolute path/);
    const drive = await put('drive.zip', await makeZip([{ name: 'xx/evil.txt', body: 'x' }], [['xx/evil.txt', 'C:/evil.txt']]));
    await expect(extractArchive(drive, join(dir, 'out2'))).rejects.toThrow(/unsafe archive entry.*absolute path/);
  });

  it('never creates a symlink, even one pointing out; reports it', async () => {
    const zip = await put('link.zip', await makeZip([
      { name: 'link', body: '/etc', mode: 0o120777 },
      { name: 'data/a.txt', body: 'a' },
    ]));
    const report = await extractArchive(zip, join(dir, 'out'));
    expect(report.skipped).toEqual([{ path: 'link', type: 'symlink', reason: 'links are never extracted' }]);
    expect(await listTree(join(dir, 'out'))).toEqual(['data/', 'data/a.txt']);
  });

  it('stops a zip bomb on its compression ratio', async () => {
    const zip = await put('bomb.zip', await makeZip([{ name: 'bomb.bin', body: Buffer.alloc(8 * 1024 * 1024) }]));
    await expect(extractArchive(zip, join(dir, 'out'), { limits: { maxRatio: 100 } })).rejects.toThrow(/compression ratio \d+:1 of entry `bomb.bin` exceeds max-ratio 100:1/);
    // The same archive passes when the limit is raised on purpose.
    const report = await extractArchive(zip, join(dir, 'out2'), { limits: { maxRatio: 5000 } });
    expect(report.bytes).toBe(8 * 1024 * 1024);
  });

  it('enforces the entry count and the total size', async () => {
    const items = Array.from({ length: 12 }, (_, i) => ({ name: `f${i}.txt`, body: 'x'.repeat(100) }));
    const zip = await put('many.zip', await makeZip(items));
    await expect(extractArchive(zip, join(dir, 'o1'), { limits: { maxEntries: 10 } })).rejects.toThrow(/12 entries, more than max-entries 10/);
    await expect(extractArchive(zip, join(dir, 'o2'), { limits: { maxBytes: 1000 } })).rejects.toThrow(/more than 1000 bytes \(max-bytes\)/);
    const report = await extractArchive(zip, join(dir, 'o3'), { limits: { maxBytes: 1200, maxEntries: 12 } });
    expect(report.files).toBe(12);
  });

  it('does not trust a header that understates the size', async () => {
    const body = Buffer.alloc(4000, 1);
    const lie = await makeZip([{ name: 'a.bin', body }]);
    // Claim 40 uncompressed bytes in the local header (offset 22) and the central directory (offset 24).
    const local = lie.indexOf(Buffer.from([0x50, 0x4b, 3, 4]));
    const central = lie.indexOf(Buffer.from([0x50, 0x4b, 1, 2]));
    expect(lie.readUInt32LE(local + 22)).toBe(4000);
    expect(lie.readUInt32LE(central + 24)).toBe(4000);
    lie.writeUInt32LE(40, local + 22);
    lie.writeUInt32LE(40, central + 24);
    const zip = await put('lie.zip', lie);
    await expect(extractArchive(zip, join(dir, 'out'), { limits: { maxBytes: 1000 } })).rejects.toThrow(/max-bytes|too many bytes/);
  });

  it('rejects duplicate entries rather than overwriting', async () => {
    const zip = await put('dup.zip', await makeZip([{ name: 'a.txt', body: 'one' }, { name: 'b.txt', body: 'two' }], [['b.txt', 'a.txt']]));
    await expect(extractArchive(zip, join(dir, 'out'))).rejects.toThrow(/duplicate entry `a.txt`/);
  });

  it('rejects something that is not an archive', async () => {
    const file = await put('x.bin', Buffer.from('just some text'));
    expect(await sniffArchive(file)).toBeNull();
    await expect(extractArchive(file, join(dir, 'out'))).rejects.toThrow(/not a zip, tar or tar.gz archive/);
  });
});

describe('extractArchive: tar', () => {
  it('extracts a tar and a tar.gz', async () => {
    const raw = makeTar([{ name: 'd/', type: '5' }, { name: 'd/a.txt', body: 'alpha' }, { name: 'b.txt', body: 'beta' }]);
    const tar = await put('ok.tar', raw);
    const tgz = await put('ok.tar.gz', gzipSync(raw));
    expect(await sniffArchive(tar)).toBe('tar');
    expect(await sniffArchive(tgz)).toBe('tar.gz');
    for (const [file, out] of [[tar, 'o1'], [tgz, 'o2']] as const) {
      const report = await extractArchive(file, join(dir, out));
      expect(report).toMatchObject({ files: 2, directories: 1, bytes: 9, skipped: [] });
      expect(await listTree(join(dir, out))).toEqual(['b.txt', 'd/', 'd/a.txt']);
      expect(await readFile(join(dir, out, 'd/a.txt'), 'utf8')).toBe('alpha');
    }
  });

  it('rejects `../` and absolute names', async () => {
    const up = await put('up.tar', makeTar([{ name: '../evil.txt', body: 'x' }]));
    await expect(extractArchive(up, join(dir, 'o1'))).rejects.toThrow(/unsafe archive entry `..\/evil.txt`/);
    const abs = await put('abs.tar', makeTar([{ name: '/tmp/evil.txt', body: 'x' }]));
    await expect(extractArchive(abs, join(dir, 'o2'))).rejects.toThrow(/unsafe archive entry `\/tmp\/evil.txt`: absolute path/);
    await expect(lstat(join(dir, 'evil.txt'))).rejects.toThrow();
  });

  it('skips symlinks, hardlinks and fifos with a report; a file under the link name stays inside', async () => {
    const tar = await put('links.tar', makeTar([
      { name: 'out', type: '2', link: '/etc' },
      { name: 'hard', type: '1', link: '../../etc/passwd' },
      { name: 'pipe', type: '6' },
      { name: 'dev', type: '3' },
      { name: 'out/x.txt', body: 'inside' },
    ]));
    const report = await extractArchive(tar, join(dir, 'o'));
    expect(report.skipped.map((s) => `${s.path}:${s.type}`)).toEqual(['out:symlink', 'hard:hardlink', 'pipe:fifo', 'dev:character-device']);
    expect(await listTree(join(dir, 'o'))).toEqual(['out/', 'out/x.txt']);
    expect((await lstat(join(dir, 'o/out'))).isDirectory()).toBe(true);
  });

  it('stops a tar.gz bomb on the bytes actually written', async () => {
    const bomb = await put('bomb.tar.gz', gzipSync(makeTar([{ name: 'zeros.bin', body: Buffer.alloc(8 * 1024 * 1024) }])));
    await expect(extractArchive(bomb, join(dir, 'o'), { limits: { maxRatio: 100 } })).rejects.toThrow(/compression ratio \d+:1 of the archive .* exceeds max-ratio 100:1/);
  });

  it('enforces limits on entries and size', async () => {
    const tar = await put('many.tar', makeTar(Array.from({ length: 5 }, (_, i) => ({ name: `f${i}`, body: 'y'.repeat(50) }))));
    await expect(extractArchive(tar, join(dir, 'o1'), { limits: { maxEntries: 4 } })).rejects.toThrow(/more than 4 entries/);
    await expect(extractArchive(tar, join(dir, 'o2'), { limits: { maxBytes: 120 } })).rejects.toThrow(/more than 120 bytes/);
  });
});
