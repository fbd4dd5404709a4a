// Action entry for the `drift` stage kind: everything happens in the shared runner.

import { runStageAction } from '../lib/runner.ts';

await runStageAction('drift');
