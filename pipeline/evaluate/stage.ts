// Stage kind `evaluate`: Evaluate a model on the test split, compare with the champion and apply the gates.

import { defineStage } from '../core/stage.ts';

export const evaluateStage = defineStage({
  kind: 'evaluate',
  title: 'Evaluate a model on the test split, compare with the champion and apply the gates',
  params: {},
  outputs: {},
  codePaths: ['evaluate'],
});
