// The `head` trainer's shared shapes: the frozen feature extractor (an ONNX subgraph) and what a
// head fit takes and gives back, for the classification head and the detection head alike.

import type { Logger } from '../../core/logger.ts';
import type { ProviderChoice } from '../../inference/session.ts';
import type { OnnxNode, OnnxTensor } from '../../onnx/index.ts';
import type { ModelCard } from '../card.ts';

/**
 * A frozen feature extractor as ONNX nodes: `input` is the model input, [N, 3, S, S] float32,
 * ImageNet-normalised RGB (the prepared tensors); `output` is a feature map [N, channels, S/stride, S/stride].
 * A head appends its own nodes reading `output`; the merged graph is one model.onnx.
 */
export interface FeatureExtractor {
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
  /** Input tensor name (`images`). */
  input: string;
  /** Feature-map tensor name. */
  output: string;
  channels: number;
  stride: number;
  imageSize: number;
  /** Highest ai.onnx opset the nodes need. */
  opset: number;
  /** Other operator domains the nodes use (a backbone's custom domains), with their versions. */
  domains?: { domain: string; version: number }[];
  /** What the card records about it. */
  record: NonNullable<ModelCard['extractor']>;
}

/** Extractor features of a prepared split, computed once: [n, channels, height, width] float32. */
export interface FeatureMap {
  data: Float32Array;
  n: number;
  channels: number;
  height: number;
  width: number;
}

/** Head params (kebab-case names as in pipeline.yaml and `skintwin train head`). */
export interface HeadParams {
  /** `linear` (softmax regression / 1×1 conv) or `mlp` (one hidden layer). */
  head: 'linear' | 'mlp';
  'hidden-units': number;
  epochs: number;
  'batch-size': number;
  /** Adam step size. */
  'head-learning-rate': number;
  'weight-decay': number;
  /** Epochs without a better validation loss before stopping. */
  patience: number;
  /** Backbone ONNX to cut (absent: the built-in extractor) and the output to cut it at. */
  backbone?: string;
  'backbone-output'?: string;
  seed: number;
}

export interface HeadFitOptions {
  /** Registry name: skin-type (classification) or skin-detection (detection). */
  model: string;
  /** Prepared image folder (prepare-data output), absolute, and as shown in messages. */
  dataDir: string;
  dataDisplay: string;
  /** Output folder (absolute) and as shown. model.onnx and model-card.json go there. */
  outDir: string;
  outDisplay: string;
  params: HeadParams;
  extractor: FeatureExtractor;
  provider: ProviderChoice;
  trainingData: { path: string; sha256: string; files: number };
  commit: string | null;
  now(): Date;
  logger: Logger;
  signal?: AbortSignal;
}

export interface HeadFitResult {
  card: ModelCard;
  cardPath: string;
  onnxSha256: string;
  /** Largest |onnxruntime − trainer| output difference on the validation split. */
  maxAbsDiff: number;
}
