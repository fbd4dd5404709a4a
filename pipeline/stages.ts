// Every stage kind the pipeline knows, by name. pipeline.yaml's `kind:` must be one of these;
// actions/<kind>/ exists for each (a contract test checks both directions).

import type { AnyStageKind } from './core/stage.ts';
import { commandStage } from './command/stage.ts';
import { fetchDatasetStage } from './data/fetch-dataset.ts';
import { buildFusionDataStage } from './data/build-fusion-data.ts';
import { prepareDataStage } from './data/prepare-data.ts';
import { trainStage } from './train/stage.ts';
import { evaluateStage } from './evaluate/stage.ts';
import { registerStage, promoteStage } from './registry/stage.ts';
import { driftStage } from './drift/stage.ts';

export const stageKinds: ReadonlyMap<string, AnyStageKind> = new Map(
  (
    [
      fetchDatasetStage,
      buildFusionDataStage,
      prepareDataStage,
      trainStage,
      evaluateStage,
      registerStage,
      promoteStage,
      driftStage,
      commandStage,
    ] as AnyStageKind[]
  ).map((k) => [k.kind, k]),
);
