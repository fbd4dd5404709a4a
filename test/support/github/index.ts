// Entry point of the GitHub REST stand-in for tests: start it, point a real Octokit at it, and
// fail the test on any contract violation or call to an operation it does not implement.

import { afterEach, beforeEach } from 'vitest';
import { DEFAULT_TOKEN, GitHubStandIn, type StandInOptions } from './server.ts';

export { DEFAULT_TOKEN, GitHubStandIn } from './server.ts';
export type { Fault, Handler, HandlerContext, Level, Permissions, RateLimit, RecordedRequest, Reply, StandInOptions, TokenSpec } from './server.ts';
export { RepositoryState, gitBlobSha, sha256Digest } from './state.ts';
export type { TriggeredWorkflow } from './state.ts';
export { OpenApiContract } from './openapi.ts';

/** Start a stand-in on three loopback origins (API, uploads, objects). Close it when done. */
export async function startGitHubStandIn(options: StandInOptions = {}): Promise<GitHubStandIn> {
  const gh = new GitHubStandIn(options);
  await gh.listen();
  return gh;
}

/**
 * Throw when the stand-in saw a contract violation (a request or response GitHub's description
 * does not allow) or a call to an operation it does not implement. Run it after every test.
 */
export function assertStandInClean(gh: GitHubStandIn): void {
  const violations = gh.violations();
  if (violations.length) {
    throw new Error(`GitHub stand-in: ${violations.length} contract violation(s):\n  - ${violations.join('\n  - ')}`);
  }
}

/** Throw when the code under test called an operation the stand-in does not implement. */
export function assertOnlyImplementedOperations(gh: GitHubStandIn): void {
  const implemented = new Set(gh.implementedOperations());
  const missing = gh.calledOperations().filter((op) => !implemented.has(op));
  if (missing.length) throw new Error(`operations called but not implemented by the GitHub stand-in: ${missing.join(', ')}`);
}

/**
 * Vitest wiring: a fresh stand-in before each test, checked and closed after it.
 * `const gh = useGitHubStandIn(); … gh().apiUrl`
 */
export function useGitHubStandIn(options: StandInOptions | (() => StandInOptions) = {}): () => GitHubStandIn {
  let current: GitHubStandIn | undefined;
  beforeEach(async () => {
    current = await startGitHubStandIn(typeof options === 'function' ? options() : options);
  });
  afterEach(async () => {
    const gh = current;
    current = undefined;
    if (!gh) return;
    try {
      assertOnlyImplementedOperations(gh);
      assertStandInClean(gh);
    } finally {
      await gh.close();
    }
  });
  return () => {
    if (!current) throw new Error('the GitHub stand-in only exists inside a test');
    return current;
  };
}

/** Options for `new Octokit(...)` / `getOctokit(token, ...)` that reach the stand-in. */
export function octokitOptions(gh: GitHubStandIn, token: string = DEFAULT_TOKEN): { auth: string; baseUrl: string } {
  return { auth: token, baseUrl: gh.apiUrl };
}
