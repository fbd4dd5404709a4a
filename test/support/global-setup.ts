// Vitest global setup: build the bundles once per test run, so tests that spawn dist/ (actions,
// CLI) run what `npm run build` produces, never a stale build. A failed build is handed to the
// tests (`inject('buildError')`) rather than thrown, so it fails the tests that need dist/ and
// says why, while the rest of the suite still reports.

import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Empty when scripts/build.mjs succeeded, else its output. */
    buildError: string;
  }
}

export default function setup(project: TestProject): void {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
  const result = spawnSync(process.execPath, [join(root, 'scripts/build.mjs'), '--quiet'], { cwd: root, encoding: 'utf8' });
  const error = result.status === 0 ? '' : `scripts/build.mjs failed (exit ${result.status ?? result.signal}):\n${result.stdout}${result.stderr}`;
  if (error) console.error(error);
  project.provide('buildError', error);
}
