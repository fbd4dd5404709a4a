// The pipeline engine's public API: load pipeline.yaml, report status, bring stages up to date.

export { loadPipeline, DEFAULT_PIPELINE_FILE, DEFAULT_SETTINGS } from './load.ts';
export { status, repro, describeReason, describeReasons } from './run.ts';
export { pipelineJsonSchema, renderPipelineJsonSchema } from './schema.ts';
export { hashTree, StatCache } from './hash.ts';
export { lockPathFor } from './lock.ts';
export type * from './types.ts';
