// Action entry for the `fetch-dataset` stage kind: everything happens in the shared runner.

import { runStageAction } from '../lib/runner.ts';

await runStageAction('fetch-dataset');
