import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256, sha256File } from '../../pipeline/core/fs.ts';
import { findCodeRoot } from '../../pipeline/engine/code-version.ts';
import { dirHash, hashTree, StatCache, subtreeHash } from '../../pipeline/engine/hash.ts';

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('hashTree', () => {
  it('hashes a directory as the sorted (path, file hash) list; a file as its sha256', async () => {
    dir = await mkdtemp(join(tmpdir(), 'skintwin-hash-'));
    await mkdir(join(dir, 't/b'), { recursive: true });
    await writeFile(join(dir, 't/b/z.txt'), 'zz');
    await writeFile(join(dir, 't/a.txt'), 'aa');
    const tree = (await hashTree(join(dir, 't')))!;
    expect(tree.files.map((f) => f.path)).toEqual(['a.txt', 'b/z.txt']);
    expect(tree.hash).toBe(sha256(`a.txt\t${sha256('aa')}\nb/z.txt\t${sha256('zz')}\n`));
    expect(tree.bytes).toBe(4);
    expect(subtreeHash(tree, 'b')).toBe(dirHash([{ path: 'z.txt', hash: sha256('zz') }]));
    expect((await hashTree(join(dir, 't/a.txt')))!.hash).toBe(sha256('aa'));
    expect(await hashTree(join(dir, 'missing'))).toBeUndefined();
  });

  it('the stat cache skips unchanged files and sees changed ones', async () => {
    dir = await mkdtemp(join(tmpdir(), 'skintwin-hash-'));
    const file = join(dir, 'f.txt');
    await writeFile(file, 'one');
    await utimes(file, 1_000_000, 1_000_000);
    const cache = new StatCache(join(dir, 'cache.json'));
    expect((await hashTree(file, { statCache: cache }))!.hash).toBe(sha256('one'));
    await cache.save();
    // Same size and mtime, same inode: the cache answers without reading (so it still says `one`).
    await writeFile(file, 'two');
    await utimes(file, 1_000_000, 1_000_000);
    const loaded = await StatCache.load(join(dir, 'cache.json'));
    expect((await hashTree(file, { statCache: loaded }))!.hash).toBe(sha256('one'));
    // A new mtime invalidates the entry.
    await utimes(file, 1_000_000, 1_000_005);
    expect((await hashTree(file, { statCache: loaded }))!.hash).toBe(sha256('two'));
  });

  it('the stat cache forgets files deleted from a hashed tree', async () => {
    dir = await mkdtemp(join(tmpdir(), 'skintwin-hash-'));
    await mkdir(join(dir, 't'));
    await writeFile(join(dir, 't/a'), 'a');
    await writeFile(join(dir, 't/b'), 'b');
    const cache = new StatCache(join(dir, 'cache.json'));
    await hashTree(join(dir, 't'), { statCache: cache });
    await rm(join(dir, 't/b'));
    await hashTree(join(dir, 't'), { statCache: cache });
    await cache.save();
    const saved = JSON.parse(await readFile(join(dir, 'cache.json'), 'utf8')) as { entries: Record<string, unknown> };
    expect(Object.keys(saved.entries)).toEqual([join(dir, 't/a')]);
  });

  it('large jobs shared with the helper thread give the same hashes', async () => {
    dir = await mkdtemp(join(tmpdir(), 'skintwin-hash-'));
    await mkdir(join(dir, 'many'));
    const n = 2100;
    await Promise.all(Array.from({ length: n }, (_, i) => writeFile(join(dir!, 'many', `f${String(i).padStart(4, '0')}`), `file ${i}`)));
    await writeFile(join(dir, 'many', 'big.bin'), Buffer.alloc(3 << 20, 7));
    const tree = (await hashTree(join(dir, 'many'), { statCache: new StatCache() }))!;
    expect(tree.files).toHaveLength(n + 1);
    const byPath = new Map(tree.files.map((f) => [f.path, f.hash]));
    for (let i = 0; i < n; i++) expect(byPath.get(`f${String(i).padStart(4, '0')}`)).toBe(sha256(`file ${i}`));
    expect(tree.files.find((f) => f.path === 'big.bin')!.hash).toBe(await sha256File(join(dir, 'many', 'big.bin')));
  });

  it('finds the project pipeline/ folder from its own location', () => {
    expect(findCodeRoot()).toBe(join(import.meta.dirname, '../../pipeline'));
  });
});
