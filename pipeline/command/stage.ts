// Stage kind `command`: any shell command with declared deps and outs, like a dvc stage.
// The command writes its outs in place; this kind moves them into the engine's staging paths
// and puts the previous outs back, so the engine's atomic swap is the only thing that changes them.

import { spawn } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { InterruptedError } from '../core/errors.ts';
import { exists, move } from '../core/fs.ts';
import type { Logger } from '../core/logger.ts';
import { defineStage } from '../core/stage.ts';

/** How long a command may take to stop after SIGTERM before it is killed. */
const KILL_GRACE_MS = 5000;

export const commandStage = defineStage({
  kind: 'command',
  title: 'Run a shell command with declared deps and outs',
  params: {
    cmd: { type: 'string', required: true, description: 'Shell command, run from the repository root' },
    env: { type: 'mapping', description: 'Extra environment variables for the command' },
  },
  outputs: {
    'exit-code': 'Exit code of the command',
  },
  codePaths: ['command'],
  async run(ctx) {
    const aside = join(ctx.tmpDir, 'previous-outs');
    const movedAside: string[] = [];
    for (const out of ctx.outs) {
      if (await exists(ctx.path(out))) {
        await mkdir(dirname(join(aside, out)), { recursive: true });
        await move(ctx.path(out), join(aside, out));
        movedAside.push(out);
      }
    }
    try {
      for (const out of ctx.outs) await mkdir(dirname(ctx.path(out)), { recursive: true });
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(ctx.env)) if (v !== undefined) env[k] = v;
      Object.assign(env, ctx.params.env ?? {});
      const code = await runShell(ctx.params.cmd, { cwd: ctx.root, env, logger: ctx.logger, signal: ctx.signal });
      if (code !== 0) throw new Error(`stage \`${ctx.name}\`: command exited with code ${code}`);
    } finally {
      // Whatever the command produced goes to staging; the previous outs go back, success or not.
      for (const out of ctx.outs) {
        if (await exists(ctx.path(out))) {
          const staged = ctx.out(out);
          await rm(staged, { recursive: true, force: true });
          await move(ctx.path(out), staged);
        }
      }
      for (const out of movedAside) await move(join(aside, out), ctx.path(out));
    }
    return {
      outputs: { 'exit-code': '0' },
      summary: `### \`${ctx.name}\` (command)\n\n\`\`\`sh\n${ctx.params.cmd}\n\`\`\`\n`,
    };
  },
});

/**
 * Run `cmd` with `sh -c` in its own process group, streaming its output lines into the logger.
 * Abort kills the whole group (SIGTERM, then SIGKILL after a grace period).
 */
export function runShell(
  cmd: string,
  opts: { cwd: string; env: Record<string, string>; logger: Logger; signal: AbortSignal },
): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    if (opts.signal.aborted) return reject(new InterruptedError());
    const child = spawn('sh', ['-c', cmd], { cwd: opts.cwd, env: opts.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let killTimer: NodeJS.Timeout | undefined;
    const kill = (): void => {
      if (child.pid === undefined || child.exitCode !== null) return;
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // Already gone.
      }
      killTimer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }, KILL_GRACE_MS);
      killTimer.unref();
    };
    opts.signal.addEventListener('abort', kill, { once: true });
    const pump = (stream: NodeJS.ReadableStream, log: (line: string) => void): Promise<void> =>
      new Promise((done) => {
        const lines = createInterface({ input: stream, crlfDelay: Infinity });
        lines.on('line', log);
        lines.on('close', done);
      });
    const streams = Promise.all([
      pump(child.stdout!, (l) => opts.logger.info(l)),
      pump(child.stderr!, (l) => opts.logger.info(l)),
    ]);
    child.on('error', (error) => {
      opts.signal.removeEventListener('abort', kill);
      reject(error);
    });
    child.on('close', (code, sig) => {
      opts.signal.removeEventListener('abort', kill);
      if (killTimer) clearTimeout(killTimer);
      void streams.then(() => {
        if (opts.signal.aborted) reject(new InterruptedError());
        else resolvePromise(code ?? (sig ? 128 + (signalNumber(sig) ?? 0) : 1));
      });
    });
  });
}

function signalNumber(sig: NodeJS.Signals): number | undefined {
  return ({ SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 } as Record<string, number>)[sig];
}
