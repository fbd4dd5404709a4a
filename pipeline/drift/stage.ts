// Stage kind `drift`: Compare production predictions with the reference profile and report drift.

import { defineStage } from '../core/stage.ts';

export const driftStage = defineStage({
  kind: 'drift',
  title: 'Compare production predictions with the reference profile and report drift',
  params: {},
  outputs: {},
  codePaths: ['drift'],
});
