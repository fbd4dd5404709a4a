// Stage kind `train`: Train a model (gbdt, head or command trainer) and write model.onnx with its model card.

import { defineStage } from '../core/stage.ts';

export const trainStage = defineStage({
  kind: 'train',
  title: 'Train a model (gbdt, head or command trainer) and write model.onnx with its model card',
  params: {},
  outputs: {},
  codePaths: ['train'],
});
