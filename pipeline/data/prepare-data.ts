// Stage kind `prepare-data`: Validate, split and preprocess a dataset and write its reference profile.

import { defineStage } from '../core/stage.ts';

export const prepareDataStage = defineStage({
  kind: 'prepare-data',
  title: 'Validate, split and preprocess a dataset and write its reference profile',
  params: {},
  outputs: {},
  codePaths: ['data'],
});
