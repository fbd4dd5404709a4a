import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../../pipeline/cli/main.ts';
import type { CliIO } from '../../pipeline/cli/types.ts';
import { snapshot } from '../engine/helpers.ts';

const PIPELINE = `# demo pipeline
stages:
  upper:
    kind: command
    params:
      cmd: mkdir -p out && tr a-z A-Z < in.txt > out/upper.txt
    deps: [in.txt]
    outs: [out/upper.txt]
  count:
    kind: command
    params:
      cmd: wc -c < out/upper.txt | tr -d ' ' > count.txt
    deps: [out/upper.txt]
    outs: [count.txt]
`;

let root: string | undefined;
afterEach(async () => {
  if (root) await rm(join(root, '..'), { recursive: true, force: true });
  root = undefined;
});

async function repo(yaml = PIPELINE): Promise<string> {
  const base = await mkdtemp(join(tmpdir(), 'skintwin-cli-'));
  root = join(base, 'repo');
  await mkdir(join(root, 'pipeline'), { recursive: true });
  await writeFile(join(root, 'package.json'), '{"name":"demo"}\n');
  await writeFile(join(root, 'in.txt'), 'hello\n');
  await writeFile(join(root, 'pipeline/pipeline.yaml'), yaml);
  return root;
}

async function cli(argv: string[], opts: Partial<CliIO> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
    env: { PATH: process.env.PATH, CI: 'true' },
    cwd: root ?? tmpdir(),
    isTTY: false,
    ...opts,
  });
  return { code, stdout, stderr };
}

describe('skintwin CLI', () => {
  it('--help lists the commands and the exit codes; <cmd> --help lists its options', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    for (const c of ['repro', 'status', 'run', 'schema']) expect(help.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
    expect(help.stdout).toMatch(/130\s+interrupted/);
    const sub = await cli(['run', '--help']);
    expect(sub.code).toBe(0);
    for (const o of ['--dry-run', '--force', '--json', '--config <path>', '--jobs <n>', '--help']) expect(sub.stdout).toContain(o);
    expect((await cli([])).code).toBe(2);
  });

  it('usage mistakes exit 2 with a suggestion', async () => {
    await repo();
    const unknownCommand = await cli(['stauts']);
    expect(unknownCommand).toMatchObject({ code: 2 });
    expect(unknownCommand.stderr).toContain('unknown command `stauts` (did you mean `status`?)');
    const unknownOption = await cli(['repro', '--dryrun']);
    expect(unknownOption.code).toBe(2);
    expect(unknownOption.stderr).toContain('unknown option `--dryrun` (did you mean `dry-run`?)');
    const unknownStage = await cli(['repro', 'cuont']);
    expect(unknownStage.code).toBe(2);
    expect(unknownStage.stderr).toContain('unknown stage `cuont` (did you mean `count`?)');
    const badJobs = await cli(['repro', '--jobs', '0']);
    expect(badJobs.code).toBe(2);
  });

  it('repro runs, reports where results are, then skips; status names the stale dep', async () => {
    const dir = await repo();
    const first = await cli(['repro']);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^upper\s+command\s+ran\s.*never run$/m);
    expect(first.stdout).toContain('Results:\n  upper: out/upper.txt\n  count: count.txt\n');
    expect(await readFile(join(dir, 'count.txt'), 'utf8')).toBe('6\n');
    expect(first.stderr).not.toMatch(/\x1b\[/);

    const second = await cli(['repro']);
    expect(second.stdout).toMatch(/^upper\s+command\s+skipped\s/m);

    await writeFile(join(dir, 'in.txt'), 'hello world\n');
    const st = await cli(['status']);
    expect(st.code).toBe(0);
    expect(st.stdout).toMatch(/^upper\s+command\s+stale\s+dep `in.txt` changed$/m);
    expect(st.stdout).toMatch(/^count\s+command\s+stale\s+upstream stage `upper` is stale$/m);
  });

  it('--json prints one document with each stage', async () => {
    await repo();
    const r = await cli(['repro', '--json']);
    const doc = JSON.parse(r.stdout) as Record<string, unknown> & { stages: Record<string, unknown>[] };
    expect(doc).toMatchObject({ command: 'repro', ok: true, exitCode: 0, dryRun: false });
    expect(doc.stages.map((s) => [s.stage, s.action])).toEqual([['upper', 'ran'], ['count', 'ran']]);
    expect(Object.keys(doc.stages[0]!).sort()).toEqual(['action', 'durationMs', 'kind', 'outputs', 'outs', 'reasons', 'reports', 'stage', 'summary']);
    const s = JSON.parse((await cli(['status', 'count', '--json'])).stdout) as { stages: unknown[] };
    expect(s.stages).toEqual([{ stage: 'count', kind: 'command', state: 'up-to-date', reasons: [], why: [] }]);
    const bad = await cli(['status', 'nope', '--json']);
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stdout)).toMatchObject({ ok: false, exitCode: 2, error: { name: 'ConfigurationError' } });
  });

  it('--dry-run changes nothing', async () => {
    const dir = await repo();
    const before = await snapshot(dir);
    const r = await cli(['repro', '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Dry run: nothing was changed.');
    expect(r.stdout).toMatch(/^count\s+command\s+would run\s+never run, upstream stage `upper` is stale$/m);
    expect(await snapshot(dir)).toEqual(before);
    await cli(['repro']);
    const after = await snapshot(dir);
    expect((await cli(['run', 'count', '--dry-run'])).stdout).toMatch(/^count\s+command\s+would run\s+forced$/m);
    expect(await snapshot(dir)).toEqual(after);
  });

  it('run overrides params by flag; unknown params get a suggestion', async () => {
    const dir = await repo();
    await cli(['repro']);
    const r = await cli(['run', 'count', '--cmd', 'echo 42 > count.txt']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^count\s+command\s+ran\s.*forced, param `cmd` changed$/m);
    expect(await readFile(join(dir, 'count.txt'), 'utf8')).toBe('42\n');
    const bad = await cli(['run', 'count', '--cdm', 'x']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('command line: stage `count`: unknown param `cdm` (did you mean `cmd`?)');
    expect((await cli(['run'])).code).toBe(2);
  });

  it('run shares repro\'s --json and --jobs handling and leaves upstream stages alone', async () => {
    const dir = await repo();
    await cli(['repro']);
    await writeFile(join(dir, 'in.txt'), 'hello world\n');
    const r = await cli(['run', 'count', '--json']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as Record<string, unknown> & { stages: Record<string, unknown>[] };
    expect(doc).toMatchObject({ command: 'run', ok: true, exitCode: 0 });
    // Only the named stage ran: `upper` is stale, but `run` does not bring it up to date.
    expect(doc.stages.map((s) => [s.stage, s.action])).toEqual([['count', 'ran']]);
    expect(await readFile(join(dir, 'out/upper.txt'), 'utf8')).toBe('HELLO\n');
    const badJobs = await cli(['run', 'count', '--jobs', 'two']);
    expect(badJobs.code).toBe(2);
    expect(badJobs.stderr).toContain('option `--jobs` must be an integer ≥ 1, got `two`');
  });

  it('a failing stage exits 1; a bad definition exits 2 naming file and line', async () => {
    const dir = await repo();
    await cli(['repro']);
    await writeFile(join(dir, 'pipeline/pipeline.yaml'), PIPELINE.replace('tr a-z A-Z < in.txt > out/upper.txt', 'exit 4'));
    await writeFile(join(dir, 'in.txt'), 'changed\n');
    const failed = await cli(['repro']);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/^upper\s+command\s+FAILED\s.*command exited with code 4$/m);
    expect(failed.stdout).toMatch(/^count\s+command\s+not run\s+upstream stage `upper` failed$/m);
    expect(await readFile(join(dir, 'out/upper.txt'), 'utf8')).toBe('HELLO\n');

    await writeFile(join(dir, 'pipeline/pipeline.yaml'), PIPELINE.replace('kind: command\n    params:\n      cmd: wc', 'kind: comand\n    params:\n      cmd: wc'));
    const bad = await cli(['status']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('pipeline/pipeline.yaml:10:11: stage `count`: unknown stage kind `comand` (did you mean `command`?)');
  });

  it('--config points at another pipeline file', async () => {
    const dir = await repo();
    await mkdir(join(dir, 'alt'));
    await writeFile(join(dir, 'alt/p.yaml'), `stages:\n  one:\n    kind: command\n    params: { cmd: 'echo 1 > one.txt' }\n    outs: [one.txt]\n`);
    const r = await cli(['repro', '--config', 'alt/p.yaml']);
    expect(r.code).toBe(0);
    expect(await readFile(join(dir, 'one.txt'), 'utf8')).toBe('1\n');
    expect(await readFile(join(dir, 'alt/p.lock'), 'utf8')).toContain('one:');
  });

  it('an abort exits 130 and keeps the previous outs', async () => {
    const dir = await repo(`stages:\n  slow:\n    kind: command\n    params: { cmd: 'echo NEW > out.txt; echo started; exec sleep 30' }\n    outs: [out.txt]\n`);
    await writeFile(join(dir, 'out.txt'), 'OLD');
    const controller = new AbortController();
    let stderr = '';
    const code = await main(['repro'], {
      stdout: { write: () => undefined },
      stderr: {
        write: (t: string) => {
          stderr += t;
          if (t.includes('started')) controller.abort();
        },
      },
      env: { PATH: process.env.PATH, CI: 'true' },
      cwd: dir,
      isTTY: false,
      signal: controller.signal,
    });
    expect(code).toBe(130);
    expect(stderr).toContain('interrupted');
    expect(await readFile(join(dir, 'out.txt'), 'utf8')).toBe('OLD');
  });

  it('the bundled entry exits 130 on SIGINT', async () => {
    const dir = await repo(`stages:\n  slow:\n    kind: command\n    params: { cmd: 'echo started; exec sleep 30' }\n    outs: [out.txt]\n`);
    const bundle = join(dir, '..', 'cli.mjs');
    await build({
      entryPoints: [join(import.meta.dirname, '../../pipeline/cli/entry.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outfile: bundle,
      external: ['sharp', 'onnxruntime-node'],
      // Aliased as the real build does (scripts/build.mjs): bundled modules may import createRequire themselves.
      banner: { js: "import { createRequire as __skintwinCreateRequire } from 'node:module'; const require = __skintwinCreateRequire(import.meta.url);" },
      logLevel: 'silent',
    });
    const child = spawn(process.execPath, [bundle, 'repro'], { cwd: dir, env: { PATH: process.env.PATH, CI: 'true' } });
    let stderr = '';
    let sent = false;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (!sent && stderr.includes('started')) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((done) => child.on('close', done));
    expect(code, stderr).toBe(130);
    expect(stderr).toContain('interrupted');
  });
});
