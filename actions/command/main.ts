// Action entry for the `command` stage kind: everything happens in the shared runner.

import { runStageAction } from '../lib/runner.ts';

await runStageAction('command');
