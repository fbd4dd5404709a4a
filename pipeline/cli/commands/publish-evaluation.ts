// `skintwin publish-evaluation`: post reports/<model>/evaluation.json as a pull request would get
// them (one comment per model, edited in place, and a check run per model), on the local forge
// under .skintwin/forge/: the same function the publish-evaluation action runs on GitHub.

import { execFile } from 'node:child_process';
import { join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { ConfigurationError, ExitCode } from '../../core/errors.ts';
import { createLocalForge, LOCAL_FORGE_DIR } from '../../github/local.ts';
import { publishEvaluation } from '../../github/publish.ts';
import { locatePipeline, printJson } from '../common.ts';
import type { CliCommand } from '../types.ts';

/** The local forge's stand-in pull request when none is named. */
const LOCAL_PR = 1;

async function gitHead(cwd: string): Promise<string | undefined> {
  try {
    const { stdout } = await promisify(execFile)('git', ['rev-parse', 'HEAD'], { cwd });
    return stdout.trim();
  } catch {
    return undefined;
  }
}

export const publishEvaluationCommand: CliCommand = {
  name: 'publish-evaluation',
  summary: 'post the evaluation reports as a pull request would get them, on the local forge (.skintwin/forge/)',
  usage: 'skintwin publish-evaluation [--reports-dir reports] [--pull-request n] [--head-sha sha] [--models a,b] [--json]',
  description:
    `Each model's comment is written to ${LOCAL_FORGE_DIR}/issues/<n>/comment-<id>.md and edited in place on the next run;\n` +
    `its check run to ${LOCAL_FORGE_DIR}/check-runs/. On GitHub, the publish-evaluation action does the same through the REST API.`,
  options: [
    { name: 'reports-dir', type: 'string', value: '<dir>', description: 'folder of <model>/evaluation.json (default: reports)' },
    { name: 'pull-request', type: 'string', value: '<n>', description: `pull request number on the local forge (default: ${LOCAL_PR})` },
    { name: 'head-sha', type: 'string', value: '<sha>', description: 'commit the check runs attach to (default: the checkout’s HEAD)' },
    { name: 'models', type: 'string', value: '<a,b>', description: 'only these models (default: every report found)' },
    { name: 'artifact-url', type: 'string', value: '<url>', description: 'where the plots are linked (default: none)' },
    { name: 'config', type: 'string', value: '<path>', description: 'pipeline definition, to find the repository root' },
    { name: 'json', type: 'boolean', description: 'print one JSON document on stdout instead of text' },
    { name: 'help', type: 'boolean', description: 'show this help' },
  ],
  async run(ctx) {
    const flags = ctx.args.flags;
    const text = (name: string): string | undefined => (typeof flags[name] === 'string' && flags[name] !== '' ? (flags[name] as string) : undefined);
    if (ctx.args.positionals.length) throw new ConfigurationError(`\`publish-evaluation\` takes no positional arguments, got \`${ctx.args.positionals[0]}\``);
    const { root } = locatePipeline(ctx.io, text('config'));
    const problems: ConfigurationError[] = [];
    const prText = text('pull-request') ?? String(LOCAL_PR);
    if (!/^[1-9]\d*$/.test(prText)) problems.push(new ConfigurationError(`\`--pull-request\` must be a positive integer, got \`${prText}\``, { field: 'pull-request' }));
    const headSha = text('head-sha') ?? (await gitHead(root));
    if (!headSha) problems.push(new ConfigurationError('no git HEAD here: pass `--head-sha <sha>`', { field: 'head-sha' }));
    else if (!/^[0-9a-f]{40}$/.test(headSha)) problems.push(new ConfigurationError(`\`--head-sha\` must be a 40-hex commit sha, got \`${headSha}\``, { field: 'head-sha' }));
    if (problems.length) throw ConfigurationError.all(problems);
    const models = text('models')?.split(/[\s,]+/).filter(Boolean);
    const artifactUrl = text('artifact-url');

    const reportsDir = resolve(ctx.io.cwd, text('reports-dir') ?? join(root, 'reports'));
    const result = await publishEvaluation({
      forge: createLocalForge({ root }),
      pr: Number(prText),
      headSha: headSha!,
      reportsDir,
      ...(models?.length ? { models } : {}),
      ...(artifactUrl ? { artifactUrl } : {}),
      logger: ctx.logger,
      root,
    });
    const code = result.ok ? ExitCode.ok : ExitCode.failed;
    const commentFile = (id: number) => join(relative(ctx.io.cwd, root) || '.', LOCAL_FORGE_DIR, 'issues', prText, `comment-${id}.md`);
    if (flags.json) {
      printJson(ctx.io, {
        command: 'publish-evaluation',
        ok: result.ok,
        exitCode: code,
        pullRequest: Number(prText),
        published: result.published.map((p) => ({ ...p, commentFile: commentFile(p.comment.id) })),
        failed: result.failed,
      });
    } else {
      const lines = result.published.map((p) => `${p.model}: ${p.verdict} (check ${p.conclusion}) → ${commentFile(p.comment.id)} (${p.comment.action})`);
      for (const f of result.failed) lines.push(`${f.model}: not published: ${f.error}`);
      ctx.io.stdout.write(lines.join('\n') + '\n');
    }
    return code;
  },
};
