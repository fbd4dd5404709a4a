#!/usr/bin/env node
// `skintwin` / `npx skintwin`: runs the bundled CLI (dist/cli.js, built by `npm run build`).

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const bundle = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(fileURLToPath(bundle))) {
  process.stderr.write('skintwin: dist/cli.js is missing: run `npm run build` (or `npm install`) first\n');
  process.exit(2);
}
await import(bundle.href);
