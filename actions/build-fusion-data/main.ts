// Action entry for the `build-fusion-data` stage kind: everything happens in the shared runner.

import { runStageAction } from '../lib/runner.ts';

await runStageAction('build-fusion-data');
