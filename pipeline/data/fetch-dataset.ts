// Stage kind `fetch-dataset`: Get a dataset source (Kaggle, HTTPS URL, local path or synthetic), verify it and write its manifest.

import { defineStage } from '../core/stage.ts';

export const fetchDatasetStage = defineStage({
  kind: 'fetch-dataset',
  title: 'Get a dataset source (Kaggle, HTTPS URL, local path or synthetic), verify it and write its manifest',
  params: {},
  outputs: {},
  codePaths: ['data'],
});
