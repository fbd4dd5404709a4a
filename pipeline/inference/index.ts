// The shared inference layer: model loading and the original chain's output handling, used by
// build-fusion-data (derived), evaluation and serving.

export * from './session.ts';
export * from './detector.ts';
export * from './skin-type.ts';
