// The RemoteCache port on GitHub runners, backed by @actions/cache. Caching is an optimisation:
// every service problem (unreachable, 5xx, a reservation held by another job) is a warning and
// a `false`, never an exception, so a run without a cache still completes.

import * as cache from '@actions/cache';
import { errorMessage } from '../../pipeline/core/errors.ts';
import type { Logger } from '../../pipeline/core/logger.ts';
import type { RemoteCache } from '../../pipeline/core/ports.ts';

/**
 * The variables @actions/cache reads from process.env at call time. The adapter applies the values
 * from its own `env` around each call (on a runner they are the same object, so nothing changes).
 */
const runtimeVariables = [
  'ACTIONS_RUNTIME_TOKEN',
  'ACTIONS_RESULTS_URL',
  'ACTIONS_CACHE_URL',
  'ACTIONS_CACHE_SERVICE_V2',
  'ACTIONS_CACHE_MODE',
  'GITHUB_SERVER_URL',
  'GITHUB_WORKSPACE',
  'RUNNER_TEMP',
] as const;

type Env = Readonly<Record<string, string | undefined>>;

let activeCalls = 0;
let savedEnv: Map<string, string | undefined> | undefined;

/** Apply `env`'s runtime variables to process.env while any cache call runs (calls may overlap). */
async function withRuntimeEnv<T>(env: Env, fn: () => Promise<T>): Promise<T> {
  if (activeCalls++ === 0) {
    savedEnv = new Map(runtimeVariables.map((name) => [name, process.env[name]]));
    for (const name of runtimeVariables) setEnv(name, env[name]);
  }
  try {
    return await fn();
  } finally {
    if (--activeCalls === 0 && savedEnv) {
      for (const [name, value] of savedEnv) setEnv(name, value);
      savedEnv = undefined;
    }
  }
}

function setEnv(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

// @actions/cache swallows service errors and reports them only as workflow commands written to
// stdout through @actions/core. Watching those lines is the only way to tell "the service failed"
// from "no entry", so the reason reaches our logger (and the CLI's JSON report) too.
type Listener = (line: string) => void;
const listeners = new Set<Listener>();
let originalWrite: typeof process.stdout.write | undefined;

function unescapeCommand(text: string): string {
  return text.replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%25/g, '%');
}

/** Messages from the cache library that mean the call did not do its job. */
function problemIn(line: string): string | undefined {
  const command = /^::(warning|error)(?: [^:]*)?::(.*)$/.exec(line);
  // Our own warnings about an overlapping call are not this call's problem.
  if (command) return command[2]!.startsWith('Remote cache:') ? undefined : unescapeCommand(command[2]!);
  if (/^Failed to (save|restore):/.test(line)) return line;
  return undefined;
}

function watchProblems(): { problems: string[]; stop(): void } {
  const problems: string[] = [];
  const listener: Listener = (line) => {
    const problem = problemIn(line);
    if (problem) problems.push(problem);
  };
  listeners.add(listener);
  if (!originalWrite) {
    const original = process.stdout.write;
    originalWrite = original;
    process.stdout.write = function (this: unknown, chunk: unknown, ...rest: unknown[]) {
      if (typeof chunk === 'string' || chunk instanceof Uint8Array) {
        for (const line of Buffer.from(chunk).toString('utf8').split(/\r?\n/)) {
          if (line) for (const l of listeners) l(line);
        }
      }
      return (original as (...args: unknown[]) => boolean).apply(process.stdout, [chunk, ...rest]);
    } as typeof process.stdout.write;
  }
  return {
    problems,
    stop() {
      listeners.delete(listener);
      if (!listeners.size && originalWrite) {
        process.stdout.write = originalWrite;
        originalWrite = undefined;
      }
    },
  };
}

/** Why the runtime cache cannot be used with this environment, or undefined when it can. */
function unavailableReason(env: Env): string | undefined {
  if (!env.ACTIONS_RUNTIME_TOKEN) return 'ACTIONS_RUNTIME_TOKEN is not set (not running inside a GitHub Actions job)';
  if (!env.ACTIONS_RESULTS_URL && !env.ACTIONS_CACHE_URL) return 'neither ACTIONS_RESULTS_URL nor ACTIONS_CACHE_URL is set';
  return undefined;
}

/**
 * The GitHub Actions cache as a RemoteCache, or undefined (saying why at info level) when `env`
 * is not a runner's. Keys must be exact content hashes: restore never falls back to a prefix.
 */
export function createActionsCache(env: Env, logger: Logger): RemoteCache | undefined {
  const reason = unavailableReason(env);
  if (reason) {
    logger.info(`Remote cache off: ${reason}; stage outputs are cached locally only.`);
    return undefined;
  }
  logger.secret(env.ACTIONS_RUNTIME_TOKEN!);

  async function call<T>(fn: () => Promise<T>): Promise<{ value?: T; error?: unknown; problems: string[] }> {
    const watch = watchProblems();
    try {
      return { value: await withRuntimeEnv(env, fn), problems: watch.problems };
    } catch (error) {
      return { error, problems: watch.problems };
    } finally {
      watch.stop();
    }
  }

  const because = (problems: string[], error: unknown) => {
    const reasons = [...problems, ...(error === undefined ? [] : [errorMessage(error)])];
    return reasons.length ? `: ${reasons.map((r) => r.replace(/\.$/, '')).join('; ')}` : '';
  };

  // The runner narrows the cache for untrusted events (ACTIONS_CACHE_MODE): that is policy, not a fault.
  const mode = (env.ACTIONS_CACHE_MODE ?? '').trim().toLowerCase();
  const readable = !['none', 'write-only'].includes(mode);
  const writable = !['none', 'read'].includes(mode);

  return {
    name: 'github-actions-cache',

    async save(key, dir) {
      if (!writable) {
        logger.info(`Remote cache: ${key} not saved: this job's cache is ${mode === 'none' ? 'off' : 'read-only'} (ACTIONS_CACHE_MODE=${mode}).`);
        return false;
      }
      const { value, error, problems } = await call(() => cache.saveCache([dir], key));
      if (error === undefined && value !== undefined && value !== -1) {
        logger.info(`Remote cache: saved ${key}.`);
        return true;
      }
      logger.warn(`Remote cache: ${key} was not saved${because(problems, error)}. Continuing without it.`);
      return false;
    },

    async restore(key, dir) {
      if (!readable) {
        logger.info(`Remote cache: ${key} not restored: this job's cache is ${mode === 'none' ? 'off' : 'write-only'} (ACTIONS_CACHE_MODE=${mode}).`);
        return false;
      }
      const { value, error, problems } = await call(() => cache.restoreCache([dir], key));
      if (error === undefined && value === key) {
        logger.info(`Remote cache: restored ${key}.`);
        return true;
      }
      if (error !== undefined || problems.length) {
        logger.warn(`Remote cache: could not restore ${key}${because(problems, error)}. Treating it as a miss.`);
      } else {
        logger.info(`Remote cache: no entry for ${key}.`);
      }
      return false;
    },
  };
}
