// Stage kinds `register` and `promote`: publish model versions as GitHub Releases and move
// them between registry stages.

import { defineStage } from '../core/stage.ts';

export const registerStage = defineStage({
  kind: 'register',
  title: 'Publish a model version as a GitHub Release and record it in models/registry.yaml',
  params: {},
  outputs: {},
  codePaths: ['registry', 'github'],
});

export const promoteStage = defineStage({
  kind: 'promote',
  title: 'Move a model version between registry stages after verifying digests and gates',
  params: {},
  outputs: {},
  codePaths: ['registry', 'github'],
});
