// The shared inference layer: the engine that runs every model, the original chain and their output handling, used by
// build-fusion-data (derived), evaluation and serving.

export * from './session.ts';
export * from './detector.ts';
export * from './skin-type.ts';
export * from './engine.ts';
export * from './chain.ts';
