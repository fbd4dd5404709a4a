// Stage kind `command`: any shell command with declared deps and outs, like a dvc stage.

import { defineStage } from '../core/stage.ts';

export const commandStage = defineStage({
  kind: 'command',
  title: 'Run a shell command with declared deps and outs',
  params: {
    cmd: { type: 'string', required: true, description: 'Shell command, run from the repository root' },
  },
  outputs: {},
  codePaths: ['command'],
});
