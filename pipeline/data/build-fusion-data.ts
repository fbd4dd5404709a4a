// Stage kind `build-fusion-data`: Build the 27-feature fusion table for the context-correction model.

import { defineStage } from '../core/stage.ts';

export const buildFusionDataStage = defineStage({
  kind: 'build-fusion-data',
  title: 'Build the 27-feature fusion table for the context-correction model',
  params: {},
  outputs: {},
  codePaths: ['data'],
});
