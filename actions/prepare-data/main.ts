// Action entry for the `prepare-data` stage kind: everything happens in the shared runner.

import { runStageAction } from '../lib/runner.ts';

await runStageAction('prepare-data');
