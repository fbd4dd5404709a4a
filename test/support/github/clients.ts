// Real Octokit clients for the stand-in tests, and what a failed request answered.

import { Octokit } from 'octokit';
import { DEFAULT_TOKEN } from './server.ts';

/**
 * An Octokit at `apiUrl` with retries and throttling off, so each call is exactly one request
 * the test can count. `token: null` sends no Authorization header.
 */
export function plainOctokit(apiUrl: string, token: string | null = DEFAULT_TOKEN): Octokit {
  return new Octokit({ ...(token === null ? {} : { auth: token }), baseUrl: apiUrl, throttle: { enabled: false }, retry: { enabled: false } });
}

/** The status, body and headers of a request that must fail; throws when it succeeds. */
export async function requestFailure(p: Promise<unknown>): Promise<{ status: number; data: any; headers: Record<string, string | undefined> }> {
  try {
    await p;
  } catch (e) {
    const err = e as { status: number; response?: { data: unknown; headers: Record<string, string> } };
    return { status: err.status, data: err.response?.data, headers: err.response?.headers ?? {} };
  }
  throw new Error('expected the request to fail');
}
